"""The Snapchat fake's gate, which every API call passes: the token, the faults."""

from __future__ import annotations

import asyncio

from fastapi import Request

from soku.sandbox.common import apply_fault, public_base
from soku.sandbox.snapchat_faults import CallKind, FaultSpec, api_error
from soku.sandbox.snapchat_state import FakeState, Profile


class SnapchatFake:
    """The fake's behaviour shared by its routes: gatekeeping and its own URL."""

    def __init__(self, public_url: str) -> None:
        self.state = FakeState()
        self.public_url = public_url.rstrip("/")

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    async def gate(self, request: Request, kind: CallKind) -> tuple[Profile, FaultSpec | None]:
        """Counts the call, checks the token, applies the next fault.

        Returns the fault when the route must finish applying it (a publish accepted before
        its answer is delayed); raises any other one.
        """
        self.state.calls[kind] += 1
        await asyncio.sleep(self.state.config.latency_ms / 1000)
        profile = self.state.profile_for_token(self._token(request))
        return profile, await self.apply_fault(kind, profile.id)

    async def apply_fault(self, kind: CallKind, user_id: str | None) -> FaultSpec | None:
        return await apply_fault(
            self.state.faults, kind, user_id, (), error=lambda f: f.error(kind)
        )

    def _token(self, request: Request) -> str:
        header = request.headers.get("authorization", "").strip()
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if header and " " not in header and self.state.config.accept_bare_token:
            return header
        raise api_error(401, "UNAUTHORIZED", "Missing or malformed access token")
