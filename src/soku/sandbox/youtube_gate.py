"""The YouTube fake's gate, which every API call passes: token, faults, latency."""

from __future__ import annotations

import asyncio

from fastapi import Request

from soku.sandbox.common import apply_fault, public_base
from soku.sandbox.youtube_faults import STATUS_KINDS, CallKind, FaultSpec, fault_error
from soku.sandbox.youtube_state import Channel, FakeState


class YouTubeFake:
    """The fake's behaviour shared by its routes: gatekeeping and its own URL."""

    def __init__(self, public_url: str) -> None:
        self.state = FakeState()
        self.public_url = public_url.rstrip("/")

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    async def gate(self, request: Request, kind: CallKind) -> tuple[Channel, FaultSpec | None]:
        """Counts the call, checks the token, applies the next fault.

        Returns the fault when the route must finish applying it (a publish accepted before
        its answer is delayed, a status read that fails processing); raises any other one.
        """
        self.state.calls[kind] += 1
        await asyncio.sleep(self.state.config.latency_ms / 1000)
        channel = self.state.channel_for_token(_bearer(request))
        return channel, await self.apply_fault(kind, channel.id)

    async def apply_fault(self, kind: CallKind, user_id: str | None) -> FaultSpec | None:
        return await apply_fault(
            self.state.faults, kind, user_id, STATUS_KINDS, error=lambda f: f.error(kind)
        )


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise fault_error("token_expired")  # Google: 401 authError "Invalid Credentials"
    return token.strip()
