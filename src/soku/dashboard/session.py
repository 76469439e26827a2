"""Who is signed in to the dashboard, and whether a form really comes from its pages.

A user signs in with one of their API keys (the service has no passwords). Each sign-in is a
row (`dashboard_sessions`, see `sign_ins`) good for `SESSION_SECONDS`; the cookie carries its
random token, signed with the service's secret key (itsdangerous). Every page looks the row up
with its key, so signing out (which deletes the row) or revoking the key ends the session at
once, on every process. Forms carry a CSRF token derived from the sign-in's token, and a POST
whose `Origin` names another site is refused (the cookie is also SameSite=Lax).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from soku.context import get_context
from soku.dashboard import sign_ins
from soku.db import utcnow
from soku.errors import PayloadTooLarge

COOKIE = "soku_session"
LOGIN_COOKIE = "soku_signin"  # the sign-in form's own CSRF token (there is no session yet)
SESSION_SECONDS = int(sign_ins.LIFETIME.total_seconds())
PATH = "/dashboard"
NEW_KEY_COOKIE = "soku_new_key"  # a new API key, sealed, on its way to the page that shows it
NEW_KEY_PATH = f"{PATH}/keys/new"
NEW_KEY_SECONDS = 120
# Why the sign-in page is shown, named by `?reason=` (a code, so a link cannot put its own
# words on the page where a key is pasted).
SIGN_IN_REASONS = {
    "ended": "Your session has ended; sign in again.",
    "revoked": "The key this session was opened with was revoked; sign in again.",
    "signed_out": "Signed out.",
    "own_key_revoked": "You revoked the key this session was opened with; sign in with "
    "another key.",
}


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, their sign-in (`session_id`, a row of `dashboard_sessions`), and
    the token this session's forms must send back as `csrf`."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    key_id: uuid.UUID
    key_prefix: str
    subscription: str
    plan: str
    csrf: str


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in page, which shows
    the message of `reason` (a key of `SIGN_IN_REASONS`)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(SIGN_IN_REASONS.get(reason or "", "Sign in to continue."))
        self.reason = reason


class Refused(Exception):
    """A request the dashboard refuses, shown as a page with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Sessions:
    """Signs and reads session cookies and derives CSRF tokens, with one secret. A cookie
    carries a sign-in's random token; the token alone opens nothing without its row."""

    def __init__(self, secret: str, public_base_url: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="soku.dashboard.session")
        self._csrf_key = hashlib.sha256(b"soku.dashboard.csrf\0" + secret.encode()).digest()
        sealing = hashlib.sha256(b"soku.dashboard.new-key\0" + secret.encode()).digest()
        self._sealer = Fernet(base64.urlsafe_b64encode(sealing))
        parts = urlsplit(public_base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}".lower()
        self.secure = parts.scheme == "https"

    def issue(self, token: str) -> str:
        return self._serializer.dumps({"s": token})

    def token_of(self, cookie: str) -> str | None:
        """The sign-in token a cookie carries; None for a forged, altered, too old or
        older-format cookie (one that carried a key's id)."""
        try:
            token = self._serializer.loads(cookie, max_age=SESSION_SECONDS)["s"]
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        return token if isinstance(token, str) and token else None

    def csrf_for(self, token: str) -> str:
        """The CSRF token of a sign-in: bound to its token, so to this sign-in only."""
        return hmac.new(self._csrf_key, token.encode(), hashlib.sha256).hexdigest()

    def seal_new_key(self, session_id: uuid.UUID, key: str) -> str:
        """A new key for the redirect to the page that shows it: encrypted (the browser
        holds it for one redirect only) and bound to the sign-in that made it."""
        return self._sealer.encrypt(f"{session_id}:{key}".encode()).decode()

    def open_new_key(self, sealed: str, session_id: uuid.UUID) -> str | None:
        """The key `seal_new_key` sealed for this sign-in at most NEW_KEY_SECONDS ago."""
        try:
            opened = self._sealer.decrypt(sealed.encode(), ttl=NEW_KEY_SECONDS).decode()
        except (InvalidToken, UnicodeError):
            return None
        owner, _, key = opened.partition(":")
        return key if owner == str(session_id) and key else None

    def cookie_name(self, base: str) -> str:
        """Over HTTPS, `__Host-<base>`: a browser takes a cookie so named only from this host
        itself, over HTTPS, with `Path=/` and no `Domain`, so a sibling host cannot plant one
        for the dashboard (cookie tossing). Over plain HTTP (a laptop) the prefix cannot be
        used and the name is bare."""
        return f"__Host-{base}" if self.secure else base

    def cookie_path(self, path: str) -> str:
        return "/" if self.secure else path  # `__Host-` requires Path=/

    def cookie(self, request: Request, base: str) -> str:
        return request.cookies.get(self.cookie_name(base), "")

    def drop_cookie(self, response: Response, base: str, path: str = PATH) -> None:
        response.delete_cookie(
            self.cookie_name(base), path=self.cookie_path(path), secure=self.secure
        )

    def set_cookie(
        self, response: Response, base: str, value: str, max_age: int, path: str = PATH
    ) -> None:
        response.set_cookie(
            self.cookie_name(base),
            value,
            max_age=max_age,
            path=self.cookie_path(path),
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )


def signed_out(request: Request, reason: str) -> Response:
    """The answer once this browser's own sign-in has ended: the sign-in page, saying why
    (a key of `SIGN_IN_REASONS`), and the cookie dropped."""
    response = RedirectResponse(f"{PATH}/login?reason={reason}", status_code=303)
    sessions(request).drop_cookie(response, COOKIE)
    return response


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.dashboard_sessions
    return found


async def current_viewer(request: Request) -> Viewer:
    """The signed-in user (a FastAPI dependency); without a session, `SignInRequired`."""
    cached = getattr(request.state, "viewer", None)
    if isinstance(cached, Viewer):
        return cached
    jar = sessions(request)
    cookie = jar.cookie(request, COOKIE)
    if not cookie:
        raise SignInRequired()
    token = jar.token_of(cookie)
    if token is None:
        raise SignInRequired("ended")
    db = get_context(request).db
    async with db.read() as session:
        found = await sign_ins.sign_in_of(session, token)
    if found is None:
        raise SignInRequired("ended")
    sign_in, key, user = found
    if key.revoked_at is not None:  # its sign-ins were ended too: say why
        raise SignInRequired("revoked")
    now = utcnow()
    if sign_in.expires_at <= now:
        raise SignInRequired("ended")
    if now - sign_in.last_seen_at >= sign_ins.SEEN_EVERY:
        async with db.transaction() as session:
            await sign_ins.seen(session, sign_in.id, now)
    viewer = Viewer(
        session_id=sign_in.id,
        user_id=user.id,
        email=user.email,
        key_id=key.id,
        key_prefix=key.prefix,
        subscription=user.subscription_status,
        plan=user.plan,
        csrf=jar.csrf_for(token),
    )
    request.state.viewer = viewer
    return viewer


def same_token(sent: object, expected: str | None) -> bool:
    """Whether a form sent the token `expected`, compared in constant time. As bytes: on a str
    holding anything but ASCII (a forged form, a cookie's raw bytes) `compare_digest` raises
    TypeError, which was a 500 instead of a refusal."""
    if not isinstance(sent, str) or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def check_origin(request: Request) -> None:
    """A browser names the page a form came from in `Origin`: another site's is refused."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or an old one: the CSRF token still has to match
        return
    own = {sessions(request).origin, f"{request.url.scheme}://{request.url.netloc}".lower()}
    if origin.lower() not in own:
        raise Refused(403, "This form was sent from another site; it was not acted on.")


async def read_form(request: Request) -> FormData:
    """The posted form; a body that is not a form is refused plainly."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Refused(415, "The dashboard's forms are sent as application/x-www-form-urlencoded.")
    try:
        return await request.form(max_files=0, max_fields=100)
    except PayloadTooLarge as exc:
        raise Refused(413, "This form is larger than the dashboard takes.") from exc
    except Exception as exc:  # a malformed body: the parser's error, never a 500
        raise Refused(400, "The form could not be read.") from exc


async def checked_form(request: Request) -> tuple[Viewer, FormData]:
    """A POST's viewer and form, once its CSRF token and origin are checked (a dependency)."""
    viewer = await current_viewer(request)
    check_origin(request)
    form = await read_form(request)
    if not same_token(form.get("csrf"), viewer.csrf):
        raise Refused(403, "This form is stale or was not sent from the dashboard; reload it.")
    return viewer, form
