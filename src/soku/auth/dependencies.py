"""Request authentication (`soku-api-key`), subscription check and rate limiting."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass

import structlog
from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from limits.errors import StorageError

from soku.auth import repository
from soku.auth.cache import KeyFacts
from soku.auth.keys import hash_key
from soku.auth.models import POSTING_STATUSES, SubscriptionStatus
from soku.context import AppContext, get_context
from soku.db import utcnow
from soku.errors import Forbidden, RateLimitExceeded, ServiceUnavailable, Unauthorized

log = structlog.get_logger("soku.auth")
API_KEY_HEADER = "soku-api-key"
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Your Soku API key (`sk_live_…`).",
)
_TOUCH_EVERY_SECONDS = 60.0
_ADMITTED = "soku.principal"  # the scope key `Authenticator.admit` leaves its principal under
_last_touch: dict[uuid.UUID, float] = {}


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    email: str
    key_id: uuid.UUID
    plan: str


async def _limit(
    request: Request, ctx: AppContext, identity: str, plan: str, endpoint: str | None
) -> None:
    try:
        result = await ctx.limiter.hit(identity, plan, endpoint)
    except StorageError as exc:  # Redis down or unreachable: say so, not "internal error"
        log.warning("rate_limit_store_unreachable", error=str(exc))
        raise ServiceUnavailable(
            "The rate-limit store (Redis) cannot be reached; retry shortly.",
            {"reason": "rate_limit_store_unreachable"},
        ) from None
    headers = result.headers()
    request.state.ratelimit_headers = headers
    if not result.allowed:
        raise RateLimitExceeded(
            f"Too many requests. Retry in {result.retry_after} s.",
            {"limit": result.limit, "retryAfterSeconds": result.retry_after},
        )


_warned_plans: set[str] = set()


def _unknown_plan(plan: str, fallback: str) -> None:
    """A user's plan that the configured plans no longer name: once per plan and process."""
    if plan not in _warned_plans:
        _warned_plans.add(plan)
        log.warning("unknown_plan", plan=plan, counted_as=fallback)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _touch(ctx: AppContext, key_id: uuid.UUID) -> None:
    now = time.monotonic()
    if now - _last_touch.get(key_id, -_TOUCH_EVERY_SECONDS) < _TOUCH_EVERY_SECONDS:
        return
    _last_touch[key_id] = now
    async with ctx.db.transaction() as session:
        await repository.touch_key(session, key_id, utcnow())


async def _key_facts(ctx: AppContext, key_hash: str) -> KeyFacts | None:
    cache = ctx.key_cache
    facts = cache.get(key_hash)
    if facts is None:
        async with ctx.db.read() as session:
            found = await repository.key_with_user(session, key_hash)
        if found is None:
            return None
        facts = KeyFacts.of(*found)
        cache.put(key_hash, facts)
    return facts


class Authenticator:
    """A dependency that resolves the caller, counts the request, and checks the subscription.

    `soku.api.GatedRoute` calls `admit` before FastAPI reads the request's body; the
    dependency then hands over the principal admitted for this request."""

    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint

    async def __call__(
        self, request: Request, api_key: str | None = Security(api_key_header)
    ) -> Principal:
        admitted = request.scope.get(_ADMITTED)
        if isinstance(admitted, Principal):
            return admitted
        return await self._resolve(request, api_key)

    async def admit(self, request: Request) -> None:
        principal = await self._resolve(request, request.headers.get(API_KEY_HEADER))
        request.scope[_ADMITTED] = principal

    async def _resolve(self, request: Request, api_key: str | None) -> Principal:
        ctx = get_context(request)
        # A field value has no surrounding whitespace (RFC 9110 5.5); uvicorn's httptools
        # parser leaves trailing spaces in, so `soku-api-key: sk_live_… ` would be unknown.
        api_key = api_key.strip(" \t") if api_key else api_key
        if len({value.strip(" \t") for value in request.headers.getlist(API_KEY_HEADER)}) > 1:
            await _limit(request, ctx, f"ip:{_client_ip(request)}", "anonymous", None)
            raise Unauthorized("Several soku-api-key headers with different keys; send one")
        if not api_key:
            await _limit(request, ctx, f"ip:{_client_ip(request)}", "anonymous", None)
            raise Unauthorized("Missing or invalid soku-api-key")
        key_hash = hash_key(api_key)
        facts = await _key_facts(ctx, key_hash)
        if facts is None or not hmac.compare_digest(facts.key_hash, key_hash):
            await _limit(request, ctx, f"ip:{_client_ip(request)}", "anonymous", None)
            raise Unauthorized("Invalid API key")
        if facts.revoked:
            await _limit(request, ctx, f"ip:{_client_ip(request)}", "anonymous", None)
            raise Unauthorized("API key revoked")
        known = Principal(facts.user_id, facts.email, facts.key_id, facts.plan)
        return await admit_key(request, ctx, known, facts.subscription_status, self.endpoint)


async def admit_key(
    request: Request, ctx: AppContext, known: Principal, subscription: str, endpoint: str | None
) -> Principal:
    """A valid, unrevoked key's request counted under its plan (and `endpoint`'s own limit);
    Forbidden unless the subscription may post. The dashboard's forms that act as an API call
    (a new post) are admitted here too, with the key their session was opened with."""
    may_post = subscription in POSTING_STATUSES
    plan = known.plan if may_post else "inactive"
    if not ctx.limiter.knows(plan):  # SOKU_RATE_LIMIT_PLANS changed under the user
        _unknown_plan(plan, ctx.settings.default_plan)
        plan = ctx.settings.default_plan
    await _limit(request, ctx, f"key:{known.key_id}", plan, endpoint if may_post else None)
    await _touch(ctx, known.key_id)
    if not may_post:
        if subscription == SubscriptionStatus.none:
            raise Forbidden("Subscription required")
        raise Forbidden("Subscription inactive or expired")
    return Principal(user_id=known.user_id, email=known.email, key_id=known.key_id, plan=plan)


def authenticated(endpoint: str | None = None) -> Authenticator:
    """The caller of an endpoint, counted under `endpoint`'s own limit when it has one."""
    return Authenticator(endpoint)
