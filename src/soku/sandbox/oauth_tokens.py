"""The OAuth 2.0 token endpoint the LinkedIn, YouTube, Snapchat, X and TikTok fakes share.

`POST {path}`, form-encoded (RFC 6749): `grant_type=authorization_code` redeems a code of the
fake's consent page (`consent.py`) once, for its client, redirect URI and PKCE verifier;
`grant_type=refresh_token` answers what the fake's state answers for a refresh token. Each
platform gives a `TokenEndpoint`: its path, its OAuth error shape, its words for every
refusal, the answer to a redeemed code, and how its client authenticates (by default the
client's id and secret in the form, checked against the fake's config when it has them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from soku.sandbox.consent import CodeBook, Grant

Form = dict[str, str]
Refusal = tuple[str, str]  # the OAuth error code and its description
Credentials = tuple[str | None, str | None]  # a client id and secret


def _configured(config: Any) -> Credentials:
    return config.client_id, config.client_secret


class Refusals(TypedDict):
    """A platform's words for each request its token endpoint turns down."""

    client: Refusal  # 401: client credentials other than the configured ones
    no_client: NotRequired[Refusal]  # 401: a code without client credentials (else `client`)
    grant_type: Refusal  # 400: a grant type other than the two; may name the `{grant}`
    no_code: NotRequired[Refusal]  # 400: no code (else refused as an unknown one is)
    code: Refusal  # 400: a code not redeemed; may name the `{reason}` the code book gave


class TokenState(Protocol):
    """The part of a fake's state the endpoint uses."""

    @property
    def calls(self) -> Counter[str]: ...
    @property
    def codes(self) -> CodeBook: ...
    @property
    def config(self) -> Any: ...  # the fake's settings: a form client's id and secret
    def refresh(self, refresh_token: str) -> dict[str, Any]: ...


class TokenFake(Protocol):
    """The fake the endpoint belongs to (a `fault_gate.FakeGate`)."""

    @property
    def state(self) -> TokenState: ...
    async def apply_fault(self, kind: str, user_id: str | None) -> object: ...


@dataclass(frozen=True)
class TokenEndpoint:
    """One platform's token endpoint."""

    path: str
    error: Callable[[int, str, str], Exception]  # the OAuth error: status, code, description
    refusals: Refusals
    issue: Callable[[Grant], dict[str, Any]]  # the answer to a redeemed code
    # the client's id, from a request; raises for a bad client. None: a form client
    client: Callable[[Request, Form], str | None] | None = None
    id_field: str = "client_id"  # the form field of a form client's id
    configured: Callable[[Any], Credentials] = _configured  # a form client's, from the config
    secret_needed: bool = True  # a code needs a form client's secret, not only its id
    reads_verifier: bool = True  # False: a code_verifier sent is not read (TikTok)
    code_reasons: Mapping[str, str] = field(default_factory=dict)  # descriptions by reason

    def refuse(self, status: int, refusal: Refusal, **values: str | None) -> Exception:
        code, description = refusal
        return self.error(status, code, description.format(**values))


def token_route(app: FastAPI, fake: TokenFake, endpoint: TokenEndpoint) -> None:
    @app.post(endpoint.path)
    async def token(request: Request) -> JSONResponse:
        state = fake.state
        state.calls["token"] += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        await fake.apply_fault("token", None)
        if endpoint.client is not None:
            client_id = endpoint.client(request, form)
        else:
            client_id = _form_client(endpoint, state.config, form)
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return JSONResponse(state.refresh(form.get("refresh_token", "")))
        if grant_type != "authorization_code":
            raise endpoint.refuse(400, endpoint.refusals["grant_type"], grant=grant_type)
        grant = _redeem(endpoint, state.codes, form, client_id or "")
        return JSONResponse(endpoint.issue(grant))


def _form_client(endpoint: TokenEndpoint, config: Any, form: Form) -> str | None:
    """The client's id and secret in the form: the configured ones when the fake has them,
    and some for a code."""
    refusals = endpoint.refusals
    client_id, secret = form.get(endpoint.id_field), form.get("client_secret")
    wanted = endpoint.configured(config)
    if wanted[0] is not None and (client_id, secret) != wanted:
        raise endpoint.refuse(401, refusals["client"])
    known = client_id and (secret or not endpoint.secret_needed)
    if form.get("grant_type") == "authorization_code" and not known:
        raise endpoint.refuse(401, refusals.get("no_client", refusals["client"]))
    return client_id


def _redeem(endpoint: TokenEndpoint, codes: CodeBook, form: Form, client_id: str) -> Grant:
    refusals, code = endpoint.refusals, form.get("code", "")
    if not code and "no_code" in refusals:
        raise endpoint.refuse(400, refusals["no_code"])
    verifier = form.get("code_verifier") if endpoint.reads_verifier else None
    found = codes.redeem(code, client_id, form.get("redirect_uri", ""), verifier)
    if isinstance(found, str):
        error, description = refusals["code"]
        refusal = (error, endpoint.code_reasons.get(found, description))
        raise endpoint.refuse(400, refusal, reason=found)
    return found
