"""The LinkedIn fake's gate, which every call passes: token, version headers, quota, faults."""

from __future__ import annotations

import datetime as dt

from fastapi import Request

from soku.sandbox.fault_gate import FakeGate, bearer
from soku.sandbox.linkedin_faults import STATUS_KINDS, CallKind, FaultSpec, LinkedInError, api_error
from soku.sandbox.linkedin_state import FakeState, Member


class LinkedInFake(FakeGate[FakeState, FaultSpec]):
    """The fake's behaviour shared by its routes: the gate with LinkedIn's headers and quota."""

    status_kinds = STATUS_KINDS

    async def gate(
        self, request: Request, kind: CallKind, versioned: bool = True
    ) -> tuple[Member, FaultSpec | None]:
        """Counts the call, checks token, headers and quota, applies the next fault."""
        await self.admit(kind)
        member = self.state.member_for_token(bearer(request, _no_token))
        if versioned:
            self.check_headers(request)
        self.state.count_call(member.id, kind)
        return member, await self.apply_fault(kind, member.id)

    def check_headers(self, request: Request) -> None:
        config, version = self.state.config, request.headers.get("linkedin-version")
        if version is None:
            message = "A version must be present. Please specify a version by adding the "
            message += "LinkedIn-Version header."
            raise api_error(400, message, code="VERSION_MISSING")
        newest = dt.datetime.now(dt.UTC).strftime("%Y%m")
        if not (version.isdigit() and len(version) == 6 and config.oldest_version <= version):
            raise api_error(426, f"Requested version {version} is not active",
                            code="NONEXISTENT_VERSION")  # fmt: skip
        if version > newest:
            raise api_error(426, f"Requested version {version} is not active",
                            code="NONEXISTENT_VERSION")  # fmt: skip
        restli = request.headers.get("x-restli-protocol-version")
        if config.require_restli_header and restli != "2.0.0":
            message = "This resource needs X-Restli-Protocol-Version: 2.0.0"
            raise api_error(400, message, code="ILLEGAL_ARGUMENT")


def _no_token() -> LinkedInError:
    return api_error(401, "Empty oauth2_access_token", 401)


def encoded_urn(request: Request, urn: str, kind: str) -> str:
    """A URN path key, which LinkedIn wants URL-encoded (`:` as `%3A`)."""
    raw = request.scope.get("raw_path", b"").decode("latin-1").upper()
    if not urn.startswith(f"urn:li:{kind}:") or urn.replace(":", "%3A").upper() not in raw:
        raise api_error(400, "Syntax exception in path variables", code="ILLEGAL_ARGUMENT")
    return urn
