"""How a connect flow fails: one error whose message is for the user, and never holds a token.

A platform's answer is reduced to its own error words (OAuth's `error` and
`error_description`, Graph's `error.message`, X's problem `detail`, LinkedIn's `message`),
cut short, with every secret of the flow blanked out in case an answer echoes one back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from soku.integrations.oauth_answers import AnswerRefused
from soku.logs import get_logger

log = get_logger("soku.oauth")
MAX_REASON = 200


class ConnectFailed(Exception):
    """A connect flow that cannot go on. `status` is the dashboard answer's: 400 for what the
    user or the flow's state got wrong, 502 for what the platform did (never 500)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def platform_reason(response: httpx.Response, secrets: Iterable[str | None] = ()) -> str:
    """The platform's own words for a refusal, else its HTTP status."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    reason = _words(body) if isinstance(body, dict) else ""
    reason = " ".join(reason.split())[:MAX_REASON]
    status = f"HTTP {response.status_code}"
    return scrub(f"{reason} ({status})" if reason else status, secrets)


def _words(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):  # Graph: {"error": {"message", "type", "code", …}}
        return str(error.get("message") or "")
    if isinstance(error, str):  # OAuth 2.0 (RFC 6749 §5.2)
        description = body.get("error_description")
        return f"{error}: {description}" if description else error
    for key in ("detail", "title", "message"):  # X's problems, LinkedIn's errors
        if body.get(key):
            return str(body[key])
    return ""


def unreachable(label: str, what: str, exc: httpx.HTTPError) -> ConnectFailed:
    """A call that got no answer; the exception's text is not used (it may hold the URL)."""
    log.warning("oauth.unreachable", platform=label, step=what, error=type(exc).__name__)
    if isinstance(exc, httpx.TimeoutException):
        return ConnectFailed(f"{label} did not answer in time while {what}; try again.", 502)
    return ConnectFailed(
        f"{label} could not be reached while {what} ({type(exc).__name__}); try again later.",
        502,
    )


def not_read(label: str, what: str, exc: AnswerRefused) -> ConnectFailed:
    """An answer refused unread (`oauth_answers`): too large, or compressed."""
    log.warning("oauth.answer_not_read", platform=label, step=what, reason=exc.reason)
    return ConnectFailed(
        f"{label}'s answer while {what} was {exc.reason}, so Soku did not read it; nothing "
        "was connected.",
        502,
    )


def refused(
    label: str, what: str, response: httpx.Response, secrets: Iterable[str | None] = ()
) -> ConnectFailed:
    log.warning("oauth.refused", platform=label, step=what, status=response.status_code)
    reason = platform_reason(response, secrets)
    return ConnectFailed(f"{label} refused {what}: {reason}.", 502)


def unreadable(label: str, what: str, missing: str) -> ConnectFailed:
    log.warning("oauth.unreadable", platform=label, step=what, missing=missing)
    return ConnectFailed(f"{label}'s answer while {what} had no {missing}; try again.", 502)
