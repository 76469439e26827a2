"""The gate the LinkedIn, YouTube, Snapchat, X and TikTok fakes share, and their injected faults.

Every API call to one of these fakes is counted, waits out the configured latency, shows a
bearer token and then meets the next injected fault that matches it (`FakeGate`). A fault
answers in its platform's words (`FaultAnswers`): a named fault in the platform's error
shape, an OAuth error on the token endpoint (except 429 and 5xx, which come as the API's
own errors), and, with `retry_after`, the platform's rate-limit headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Container, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from fastapi import Request

from soku.sandbox.common import Controlled, FaultFields, FaultQueue, apply_fault, public_base


class FakeError(Exception):
    """An answer in a platform's error shape: its HTTP status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


E = TypeVar("E", bound=FakeError)


def retry_after_header(status: int, retry_after: float) -> dict[str, str]:
    """`Retry-After` in whole seconds: what a fake sends where its platform documents none."""
    return {"retry-after": str(round(retry_after))}


def _no_code(status: int) -> str:
    return ""


@dataclass(frozen=True)
class FaultAnswers(Generic[E]):
    """How one platform answers an injected fault.

    A fault names its answer by `error_code` (one of `statuses`, the platform's named faults
    with their own HTTP status) or by `status` alone (named through `code_of_status`, else
    `default_code`); one with neither is a gateway timeout, unless it only delays an
    accepted publish.
    """

    statuses: Mapping[str, int]
    code_of_status: Mapping[int, str]
    named: Callable[[str, int], E]  # a named fault at a status
    unnamed: Callable[[int, str, str], E]  # any other: status, code (maybe empty), message
    oauth: Callable[[int, str, str], E]  # the token endpoint's error: status, code, description
    oauth_description: str = "Injected fault."
    default_code: Callable[[int], str] = _no_code
    headers: Callable[[int, float], dict[str, str]] = retry_after_header  # status, retry_after

    def answer(self, fault: FaultFields, kind: str) -> E | None:
        """The error `fault` raises on a call of `kind`; None when it only delays a publish."""
        if fault.status is None and fault.error_code is None:
            if fault.accept_then_delay is not None:
                return None
            return self.named("timeout", self.statuses["timeout"])
        asked = fault.status or 0
        code = fault.error_code or self.code_of_status.get(asked) or self.default_code(asked)
        status = fault.status or self.statuses.get(code, 400)
        if kind == "token" and status < 500 and status != 429:
            error = self.oauth(status, code or "invalid_request", self.oauth_description)
        elif code in self.statuses:
            error = self.named(code, status)
        else:
            error = self.unnamed(status, code, f"Injected fault: {code or status}.")
        if fault.retry_after is not None:
            error.headers = self.headers(status, fault.retry_after)
        return error


class InjectedFault(FaultFields):
    """One injected fault, as posted to `/_faults`. Its `on` names a call, `any`, or a group of
    calls (`groups`); it answers in its platform's words (`answers`)."""

    groups: ClassVar[Mapping[str, Collection[str]]] = {}
    answers: ClassVar[FaultAnswers[Any]]

    def matches(self, kind: str, user_id: str | None) -> bool:
        on = getattr(self, "on", "any")
        on_kind = on in (kind, "any") or kind in self.groups.get(on, ())
        return on_kind and self.user_id in ("*", user_id)

    def error(self, kind: str) -> Exception | None:
        """The answer this fault gives; None when it only delays an accepted publish."""
        return self.answers.answer(self, kind)


S = TypeVar("S", bound=Controlled)
F = TypeVar("F", bound=InjectedFault)


class FakeGate(Generic[S, F]):
    """What the routes of a fake share: its state, its own URL and the gate's common steps.

    A fake's `gate` admits the call, finds its caller by the token and applies the next
    fault. That fault is returned when the route must finish applying it (a publish
    accepted before its answer is delayed, a status read in `status_kinds` that fails
    processing); any other one raises its error.
    """

    status_kinds: ClassVar[Container[str]] = ()

    def __init__(self, state: S, public_url: str) -> None:
        self.state = state
        self.public_url = public_url.rstrip("/")

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    async def admit(self, kind: str) -> None:
        """Counts the call and waits out the configured latency."""
        self.state.calls[kind] += 1
        await asyncio.sleep(self.state.config.latency_ms / 1000)

    async def apply_fault(self, kind: str, user_id: str | None) -> F | None:
        faults: FaultQueue[F] = self.state.faults
        return await apply_fault(
            faults, kind, user_id, self.status_kinds, error=lambda fault: fault.error(kind)
        )


def bearer(request: Request, refused: Callable[[], Exception]) -> str:
    """The call's bearer token; `refused` is the platform's answer to a call without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise refused()
    return token.strip()
