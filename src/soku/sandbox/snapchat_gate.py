"""The Snapchat fake's gate, which every API call passes: the token, the faults."""

from __future__ import annotations

from fastapi import Request

from soku.sandbox.fault_gate import FakeGate
from soku.sandbox.snapchat_faults import CallKind, FaultSpec, api_error
from soku.sandbox.snapchat_state import FakeState, Profile


class SnapchatFake(FakeGate[FakeState, FaultSpec]):
    """The fake's behaviour shared by its routes: the gate and its own URL."""

    async def gate(self, request: Request, kind: CallKind) -> tuple[Profile, FaultSpec | None]:
        """Counts the call, checks the token, applies the next fault."""
        await self.admit(kind)
        profile = self.state.profile_for_token(self._token(request))
        return profile, await self.apply_fault(kind, profile.id)

    def _token(self, request: Request) -> str:
        header = request.headers.get("authorization", "").strip()
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if header and " " not in header and self.state.config.accept_bare_token:
            return header
        raise api_error(401, "UNAUTHORIZED", "Missing or malformed access token")
