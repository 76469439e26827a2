"""The YouTube fake's gate, which every API call passes: token, faults, latency."""

from __future__ import annotations

from fastapi import Request

from soku.sandbox.fault_gate import FakeGate, bearer
from soku.sandbox.youtube_faults import (
    STATUS_KINDS,
    CallKind,
    FaultSpec,
    YouTubeError,
    fault_error,
)
from soku.sandbox.youtube_state import Channel, FakeState


class YouTubeFake(FakeGate[FakeState, FaultSpec]):
    """The fake's behaviour shared by its routes: the gate and its own URL."""

    status_kinds = STATUS_KINDS

    async def gate(self, request: Request, kind: CallKind) -> tuple[Channel, FaultSpec | None]:
        """Counts the call, checks the token, applies the next fault."""
        await self.admit(kind)
        channel = self.state.channel_for_token(bearer(request, _no_token))
        return channel, await self.apply_fault(kind, channel.id)


def _no_token() -> YouTubeError:
    return fault_error("token_expired")  # Google: 401 authError "Invalid Credentials"
