"""Connect flows: a user connects an account by signing in at the platform (OAuth 2.0).

`start` stores the flow (`oauth_states`) and answers the platform's consent page URL;
`finish` takes the platform's answer at our callback, uses the flow's state once, exchanges
the code (`oauth_exchange`), asks who signed in (the platform's `identify`) and connects the
account through `service.connect_account`, the CLI's path: a new account, or an existing one
(same platform and account id) connected again with the new tokens, which is how an account
that `needs_reauth` is repaired. Facebook lists the Pages the user manages; with more than
one, `finish` answers a `PageChoice` (its long-lived user token sealed in a new flow row)
and `choose` ends it.

A flow belongs to the user who started it: its callback is refused for anyone else, so
nobody can make a victim's browser finish a flow they started (the victim would connect
the attacker's platform account). The redirect URI is fixed:
`{SOKU_PUBLIC_BASE_URL}/dashboard/integrations/{platform}/callback`. No network call runs
inside a database transaction.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from soku.auth.models import User
from soku.context import AppContext
from soku.errors import ApiError
from soku.integrations import oauth_states, service
from soku.integrations.models import Account, AccountStatus, OAuthStep
from soku.integrations.oauth_answers import capped_hooks
from soku.integrations.oauth_errors import MAX_REASON, ConnectFailed, scrub
from soku.integrations.oauth_exchange import ClientApp, authorize_url, exchange_code
from soku.integrations.oauth_states import PendingFlow
from soku.integrations.repository import find_account
from soku.integrations.vault import TokenVault
from soku.platforms import INTEGRATIONS, RULES
from soku.platforms.base import (
    ConnectorTarget,
    Identities,
    Identity,
    OAuthCall,
    OAuthEndpoints,
    OAuthSpec,
)

# The sandbox fakes' app: they accept any client, and bind each code to the one it was for.
SANDBOX_APP = ClientApp("soku-sandbox", "soku-sandbox-secret")
CANCELLED = ("access_denied", "user_cancelled_authorize", "user_cancelled_login")


def label(platform: str) -> str:
    return str(getattr(RULES.get(platform), "label", platform))


def oauth_spec(platform: str) -> OAuthSpec | None:
    integration = INTEGRATIONS.get(platform)
    return integration.oauth if integration else None


@dataclass(frozen=True)
class PageChoice:
    """The flow goes on: the user picks one of `pages` (id, name) under `state`."""

    platform: str
    account_id: str
    state: str
    pages: tuple[tuple[str, str], ...]


class ConnectFlows:
    """The connect flows of one service (its settings, database and vault)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.vault = TokenVault(ctx.settings.resolved_secret_key)

    def redirect_uri(self, platform: str) -> str:
        return f"{self.settings.public_base_url}/dashboard/integrations/{platform}/callback"

    def real_app(self, platform: str) -> ClientApp | None:
        """The operator's app at the platform, if its client_id is configured."""
        options = self.settings.platform_options.get(platform, {})
        client_id = options.get("client_id")
        return ClientApp(client_id, options.get("client_secret") or None) if client_id else None

    def _target(self, platform: str, sandbox: bool) -> ConnectorTarget:
        root = f"{self.settings.sandbox_root}/{platform}" if sandbox else None
        return ConnectorTarget(root, self.settings.platform_options.get(platform, {}))

    def _app(self, platform: str, sandbox: bool) -> ClientApp:
        app = SANDBOX_APP if sandbox else self.real_app(platform)
        if app is None:
            keys = f'"{platform}": {{"client_id": …, "client_secret": …}}'
            raise ConnectFailed(
                f"Connecting a real {label(platform)} account is not set up on this service: "
                f"the operator sets {keys} in SOKU_PLATFORM_OPTIONS.",
            )
        return app

    async def start(
        self, user_id: uuid.UUID, platform: str, account_id: str, *, sandbox: bool, again: bool
    ) -> str:
        """A new flow; the consent page's URL. `again`: the user asked to reconnect."""
        spec = _spec(platform)
        app = self._app(platform, sandbox)
        account_id = _checked_id(platform, account_id)
        verifier = secrets.token_urlsafe(64) if spec.pkce else None
        async with self.ctx.db.transaction() as session:
            existing = await find_account(session, user_id, platform, account_id)
            if existing is not None and existing.status == AccountStatus.connected and not again:
                raise ConnectFailed(
                    f"Your {label(platform)} account {account_id!r} is connected already; use "
                    "its Reconnect button to sign in again."
                )
            state = await oauth_states.open_flow(
                session,
                user_id=user_id,
                platform=platform,
                account_id=account_id,
                sandbox=sandbox,
                code_verifier=self.vault.seal(verifier),
            )
        endpoints = spec.endpoints(self._target(platform, sandbox))
        redirect_uri = self.redirect_uri(platform)
        return await authorize_url(
            spec, endpoints, app, redirect_uri=redirect_uri, state=state, code_verifier=verifier
        )

    async def finish(
        self, user_id: uuid.UUID, platform: str, answer: Mapping[str, str]
    ) -> Account | PageChoice:
        """The platform's answer at the callback, to its end (or to the Page choice)."""
        spec = _spec(platform)
        flow = await self._take(user_id, platform, answer.get("state"), OAuthStep.authorize)
        error = answer.get("error")
        if error:
            raise _declined(platform, error, answer.get("error_description"))
        code = answer.get("code")
        if not code:
            raise ConnectFailed(f"{label(platform)} sent back no authorization code; start again.")
        found = await self._exchange(spec, flow, code)
        if len(found.found) > 1 and found.interim_token:
            return await self._offer(flow, found)
        return await self._connect(flow, found.found[0])

    async def choose(
        self, user_id: uuid.UUID, platform: str, state: str | None, page_id: str | None
    ) -> Account:
        """The user's pick among the listed accounts (Facebook Pages)."""
        spec = _spec(platform)
        flow = await self._take(user_id, platform, state, OAuthStep.choose)
        if spec.list_again is None or flow.interim_token is None:
            raise ConnectFailed("This connect request has nothing to choose from; start again.")
        user_token = self.vault.open(flow.interim_token) or ""
        async with self._client() as http:
            call = OAuthCall(self._endpoints(flow), *self._creds(flow), http)
            listed = await spec.list_again(call, user_token)
        for identity in listed.found:
            if identity.platform_user_id == page_id:
                return await self._connect(flow, identity)
        raise ConnectFailed(
            f"That {label(platform)} Page is not among those you manage now; start again."
        )

    async def _take(
        self, user_id: uuid.UUID, platform: str, state: str | None, step: OAuthStep
    ) -> PendingFlow:
        """The flow of `state`, used up; refused unless it is this user's, alive, and here."""
        if not state:
            raise ConnectFailed("The answer carried no state: start connecting again.")
        async with self.ctx.db.transaction() as session:
            flow = await oauth_states.take_flow(session, state[:512])
        if flow is None:
            raise ConnectFailed(
                "This connect request is unknown or was used already (each one works once): "
                "start connecting again."
            )
        if flow.user_id != user_id:
            raise ConnectFailed(
                "This connect request was started by another dashboard session, not yours: it "
                "was refused and nothing was connected. Start connecting from your own "
                "Integrations page.",
                403,
            )
        if flow.expired:
            raise ConnectFailed("This connect request expired (after 10 minutes): start again.")
        if flow.platform != platform or flow.step != step:
            raise ConnectFailed("This connect request is for another step or platform.")
        return flow

    def _endpoints(self, flow: PendingFlow) -> OAuthEndpoints:
        return _spec(flow.platform).endpoints(self._target(flow.platform, flow.sandbox))

    def _creds(self, flow: PendingFlow) -> tuple[str, str | None]:
        app = self._app(flow.platform, flow.sandbox)
        return app.client_id, app.client_secret

    def _client(self) -> httpx.AsyncClient:
        timeout = self.settings.http_timeout_seconds
        return httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, event_hooks=capped_hooks()
        )

    async def _exchange(self, spec: OAuthSpec, flow: PendingFlow, code: str) -> Identities:
        app = self._app(flow.platform, flow.sandbox)
        endpoints = self._endpoints(flow)
        answer = await exchange_code(
            spec,
            endpoints,
            app,
            label=label(flow.platform),
            redirect_uri=self.redirect_uri(flow.platform),
            code=code,
            code_verifier=self.vault.open(flow.code_verifier),
            http_timeout=self.settings.http_timeout_seconds,
        )
        async with self._client() as http:
            return await spec.identify(OAuthCall(endpoints, *self._creds(flow), http), answer)

    async def _offer(self, flow: PendingFlow, found: Identities) -> PageChoice:
        async with self.ctx.db.transaction() as session:
            state = await oauth_states.open_flow(
                session,
                user_id=flow.user_id,
                platform=flow.platform,
                account_id=flow.account_id,
                sandbox=flow.sandbox,
                step=OAuthStep.choose,
                interim_token=self.vault.seal(found.interim_token),
            )
        pages = tuple((i.platform_user_id, i.username or i.platform_user_id) for i in found.found)
        return PageChoice(flow.platform, flow.account_id, state, pages)

    async def _connect(self, flow: PendingFlow, identity: Identity) -> Account:
        async with self.ctx.db.transaction() as session:
            user = await session.get(User, flow.user_id)
            if user is None:
                raise ConnectFailed("Your user no longer exists.")
            try:
                return await service.connect_account(
                    session,
                    user,
                    flow.platform,
                    flow.account_id,
                    sandbox=flow.sandbox,
                    vault=self.vault,
                    authorized=identity,
                )
            except ApiError as exc:
                raise ConnectFailed(exc.message) from None


def _spec(platform: str) -> OAuthSpec:
    spec = oauth_spec(platform)
    if spec is None:
        raise ConnectFailed(f"{label(platform)} accounts are not connected by signing in there.")
    return spec


def _checked_id(platform: str, account_id: str) -> str:
    try:
        return service.check_account_id(platform, account_id)
    except ApiError as exc:
        raise ConnectFailed(exc.message) from None


def _declined(platform: str, error: str, description: str | None) -> ConnectFailed:
    """The platform sent the user back with an error instead of a code."""
    if error in CANCELLED:
        return ConnectFailed(
            f"You cancelled connecting {label(platform)} (or did not allow Soku): nothing was "
            "connected."
        )
    words = " ".join(f"{error}: {description or ''}".split())[:MAX_REASON].rstrip(": ")
    return ConnectFailed(f"{label(platform)} did not connect the account: {scrub(words, ())}.")
