"""The LinkedIn fake's gate, which every call passes: token, version headers, quota, faults."""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi import Request

from soku.sandbox.common import apply_fault, public_base
from soku.sandbox.linkedin_faults import STATUS_KINDS, CallKind, FaultSpec, api_error
from soku.sandbox.linkedin_state import FakeState, Member


class LinkedInFake:
    """The fake's behaviour shared by its routes: gatekeeping and answers."""

    def __init__(self, public_url: str) -> None:
        self.state = FakeState()
        self.public_url = public_url.rstrip("/")

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    async def gate(
        self, request: Request, kind: CallKind, versioned: bool = True
    ) -> tuple[Member, FaultSpec | None]:
        """Counts the call, checks token, headers and quota, applies the next fault.

        Returns the fault when the route must finish applying it (a publish accepted before
        its answer is delayed, a status read that fails processing); raises any other one.
        """
        self.state.calls[kind] += 1
        await asyncio.sleep(self.state.config.latency_ms / 1000)
        member = self.state.member_for_token(_bearer(request))
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

    async def apply_fault(self, kind: CallKind, user_id: str | None) -> FaultSpec | None:
        return await apply_fault(
            self.state.faults, kind, user_id, STATUS_KINDS, error=lambda f: f.error(kind)
        )


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise api_error(401, "Empty oauth2_access_token", 401)
    return token.strip()


def encoded_urn(request: Request, urn: str, kind: str) -> str:
    """A URN path key, which LinkedIn wants URL-encoded (`:` as `%3A`)."""
    raw = request.scope.get("raw_path", b"").decode("latin-1").upper()
    if not urn.startswith(f"urn:li:{kind}:") or urn.replace(":", "%3A").upper() not in raw:
        raise api_error(400, "Syntax exception in path variables", code="ILLEGAL_ARGUMENT")
    return urn
