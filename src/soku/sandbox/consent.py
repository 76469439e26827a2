"""What the fakes' sign-in pages share: the authorization request, the consent page, the codes.

A platform's authorize URL opens a consent page; its form (a POST to the same path) sends
the browser back to the `redirect_uri` with a `code` and the `state`, or with
`error=access_denied` when the user cancels. The sandbox user who consents is named on the
page (a field the user may change, so a test or a person picks who signs in). A code is good
once, for the client and redirect URI it was issued to, for a platform's lifetime (X: 30 s),
and with PKCE only for the verifier of its challenge (RFC 7636: S256 or plain).

Each fake mounts `consent_routes` at its platform's path and answers its own token endpoint,
with its own error shapes, through `CodeBook.redeem`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

MAX_STATE = 500  # x.md: state ≤ 500 characters


@dataclass(frozen=True)
class AuthRequest:
    """The query of an authorize URL (or the consent form that carries it on)."""

    response_type: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    code_challenge_method: str

    @classmethod
    def read(cls, params: Mapping[str, str], client_id_name: str = "client_id") -> AuthRequest:
        names = cls.__dataclass_fields__
        values = {name: str(params.get(name, "")) for name in names}
        values["client_id"] = str(params.get(client_id_name, ""))  # TikTok: client_key
        return cls(**values)

    def problem(self, pkce: bool, client_id_name: str = "client_id") -> str | None:
        """Why this request cannot be answered at all (shown on the page, never redirected)."""
        if not self.client_id:
            return f"{client_id_name} is missing."
        parts = urlsplit(self.redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return "redirect_uri must be an absolute http(s) URL without a fragment."
        if self.response_type != "code":
            return "response_type must be code."
        if len(self.state) > MAX_STATE:
            return f"state must be at most {MAX_STATE} characters."
        method_ok = self.code_challenge_method in ("S256", "plain")
        if pkce and not (self.code_challenge and method_ok):
            return "code_challenge and code_challenge_method (S256 or plain) are required."
        return None

    def fields(self, client_id_name: str = "client_id") -> dict[str, str]:
        found = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {client_id_name if name == "client_id" else name: v for name, v in found.items()}


@dataclass
class Grant:
    """One authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    subject: str  # the fake's id of the user who consented
    scope: str
    challenge: str
    method: str
    expires_at: float


@dataclass
class CodeBook:
    """The codes a fake issued, each good once."""

    codes: dict[str, Grant] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def issue(self, request: AuthRequest, subject: str, lifetime: float) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(
            request.client_id,
            request.redirect_uri,
            subject,
            request.scope,
            request.code_challenge,
            request.code_challenge_method,
            time.time() + lifetime,
        )
        return code

    def redeem(
        self, code: str, client_id: str, redirect_uri: str, verifier: str | None
    ) -> Grant | str:
        """The code's grant, used up; else why it is refused (a few words)."""
        grant = self.codes.pop(code, None)
        if grant is None:
            return "used" if code in self.used else "unknown"
        self.used.add(code)
        if time.time() >= grant.expires_at:
            return "expired"
        if client_id != grant.client_id:
            return "client"
        if redirect_uri != grant.redirect_uri:
            return "redirect_uri"
        if grant.challenge and not pkce_matches(verifier or "", grant.challenge, grant.method):
            return "verifier"
        return grant

    def clear(self) -> None:
        self.codes.clear()
        self.used.clear()


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """As bytes: `compare_digest` refuses a str holding anything but ASCII (a forged form)."""
    if method == "plain":
        return hmac.compare_digest(verifier.encode(), challenge.encode())
    digest = hashlib.sha256(verifier.encode()).digest()
    derived = base64.urlsafe_b64encode(digest).rstrip(b"=")
    return bool(verifier) and hmac.compare_digest(derived, challenge.encode())


def back_to_client(redirect_uri: str, params: Mapping[str, str]) -> RedirectResponse:
    """A 303 to the client's redirect URI with `params` added to its query."""
    parts = urlsplit(redirect_uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=303)


@dataclass(frozen=True)
class ConsentSite:
    """One fake's sign-in page: its platform, its path, and how it finds its users."""

    label: str  # e.g. "X"
    path: str  # the authorize path, relative to the fake's root
    pkce: bool  # the platform requires PKCE
    default_login: str
    login_pattern: str  # what a sandbox user name may be (an HTML pattern, a regex too)
    sign_in: Callable[[str], str]  # login → the fake's user id (made on first use)
    code_lifetime: Callable[[], float]
    codes: Callable[[], CodeBook]
    client_id_name: str = "client_id"  # what the authorize URL calls the app's id


def consent_routes(app: FastAPI, site: ConsentSite) -> None:
    """GET the consent page; POST its answer (allow or cancel) back to the client."""

    @app.get(site.path, response_class=HTMLResponse)
    async def consent(request: Request) -> Response:
        asked = AuthRequest.read(request.query_params, site.client_id_name)
        problem = asked.problem(site.pkce, site.client_id_name)
        if problem:
            return _page(f"Sandbox {site.label}: this sign-in link is broken", problem, 400)
        return _consent_page(site, request.url.path, asked)

    @app.post(site.path)
    async def decide(request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        asked = AuthRequest.read(form, site.client_id_name)
        problem = asked.problem(site.pkce, site.client_id_name)
        if problem:
            return _page(f"Sandbox {site.label}: this sign-in link is broken", problem, 400)
        answer = {"state": asked.state} if asked.state else {}
        if form.get("decision") != "allow":
            description = "The user denied the request."
            return back_to_client(
                asked.redirect_uri,
                {"error": "access_denied", "error_description": description, **answer},
            )
        login = form.get("login", "").strip() or site.default_login
        if not _matches(site.login_pattern, login):
            return _page(f"Sandbox {site.label}", f"{login!r} is not a usable user name.", 400)
        code = site.codes().issue(asked, site.sign_in(login), site.code_lifetime())
        return back_to_client(asked.redirect_uri, {"code": code, **answer})


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _page(title: str, message: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>",
        status_code=status,
    )


def _consent_page(site: ConsentSite, action: str, asked: AuthRequest) -> HTMLResponse:
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">'
        for name, value in asked.fields(site.client_id_name).items()
    )
    scopes = "".join(f"<li><code>{e(s)}</code></li>" for s in asked.scope.replace(",", " ").split())
    title = f"Sandbox {site.label}: allow Soku to post as {site.default_login}?"
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{e(title)}</title>"
        f"<main><h1>Sandbox {e(site.label)}: allow Soku to post as "
        f'<span class="login">{e(site.default_login)}</span>?</h1>'
        f"<p>The app <code>{e(asked.client_id)}</code> asks to act for the sandbox user below "
        f"(a made-up {e(site.label)} user of this sandbox; change the name to sign in as "
        f"another). It asks for:</p><ul>{scopes}</ul>"
        f'<form method="post" action="{e(action)}">{hidden}'
        f'<label>Sandbox user <input name="login" value="{e(site.default_login)}" '
        f'pattern="{e(site.login_pattern)}" required></label> '
        '<button type="submit" name="decision" value="allow">Allow</button> '
        '<button type="submit" name="decision" value="cancel" formnovalidate>Cancel</button>'
        f"</form><p>Nothing leaves this machine: this is Soku's sandbox, not {e(site.label)}."
        "</p></main></html>"
    )
