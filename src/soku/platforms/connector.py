"""The connector interface: how the delivery engine drives one platform.

A connector is a resumable step machine. `steps()` lists the preparatory steps (upload
media, create a container, wait for processing, …); the engine runs each step whose name is
not yet in the delivery's checkpoint and saves the step's result there before running the
next, so a crash resumes without doing a step twice. `publish()` is the point of no return:
the engine marks the delivery `publishing` before calling it. When a worker finds a delivery
left in `publishing` (its lease expired, or the call timed out), the engine calls
`reconcile()` first, which asks the platform whether the post exists.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar, overload

import httpx


class ErrorKind(StrEnum):
    """What an error means for the delivery; the retry policy decides per kind."""

    rate_limited = "rate_limited"  # 429 or quota: retry at reset / Retry-After
    server_error = "server_error"  # 5xx
    timeout = "timeout"  # no answer in time (the call may have gone through)
    connection = "connection"  # could not connect (the call did not go through)
    token_expired = "token_expired"  # noqa: S105 (a kind, not a secret): refresh, retry once
    reauth_required = "reauth_required"  # the user must connect the account again
    permanent = "permanent"  # the platform refused this post: no retry helps
    processing_failed = "processing_failed"  # the platform could not process the media


# Keys of a platform's answer that carry credentials (OAuth answers, Facebook's `/me/accounts`
# listing every Page token of a login): kept out of what is stored and shown (`without_secrets`).
SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "id_token", "client_secret", "oauth_token_secret"}
)
REDACTED = "[redacted]"
SHORTEST_SECRET = 8  # a known token shorter than this is not searched for (it could be a word)
# In text (a plain-text answer, an error message): `key=value` as in a query or a form (or
# URL-encoded in one; `page_access_token=` too), `"key": "value"` as in JSON cut short; and
# `Bearer <token>` (16 or more token characters, so that "Bearer token" in a sentence stays).
_SECRET_IN_TEXT = re.compile(
    r"(?P<key>(?:" + "|".join(sorted(SECRET_KEYS)) + r")(?:=|%3D|\"?\s*:\s*\"))"
    r"[^\s\"'&,;<>()\[\]{}]+"
    r"|(?P<scheme>\bBearer\s+)[A-Za-z0-9._~+/-]{16,}=*",
    re.IGNORECASE,
)


def without_secrets(value: Any, known: Iterable[str | None] = ()) -> Any:
    """A platform's answer with every credential blanked, at any depth: the value of each
    credential key, and in every text what `redact_text` blanks (`known` tokens too)."""
    secrets = _searchable(known)
    return _without(value, secrets)


def _without(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _redacted(value, secrets)
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() in SECRET_KEYS else _without(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without(item, secrets) for item in value]
    return value


def redact_text(text: str, known: Iterable[str | None] = ()) -> str:
    """`text` with credentials blanked: each of the `known` tokens wherever it appears, and
    any `access_token=…`, `"refresh_token": "…"`, `client_secret=…` or `Bearer …`."""
    return _redacted(text, _searchable(known))


def _searchable(known: Iterable[str | None]) -> tuple[str, ...]:
    found = {secret for secret in known if secret and len(secret) >= SHORTEST_SECRET}
    return tuple(sorted(found, key=len, reverse=True))  # a token inside a longer one: after


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    lowered = text.lower()  # every key above holds one of these words: most texts skip the scan
    if "token" not in lowered and "secret" not in lowered and "bearer" not in lowered:
        return text
    return _SECRET_IN_TEXT.sub(lambda m: (m["key"] or m["scheme"]) + REDACTED, text)


class PlatformError(Exception):
    """An error from a platform call, mapped to our terms by the connector."""

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        raw: Any = None,
        origin: str | None = None,
    ) -> None:
        message = redact_text(message)  # it may quote a plain-text answer
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after
        self.raw = without_secrets(raw)  # stored, shown to the caller as `platformResponse`
        # where a call that got no answer went (scheme://host:port): stored and logged for the
        # operator, not shown to API callers (it may name an internal proxy or host)
        self.origin = origin

    def hide(self, known: Iterable[str | None]) -> None:
        """Blanks these tokens (the account's own, which only the delivery knows) wherever
        the message or the answer repeats them, before either is stored or shown."""
        self.message = redact_text(self.message, known)
        self.args = (self.message,)
        self.raw = without_secrets(self.raw, known)


@dataclass(frozen=True)
class AccountAccess:
    """The target account as a connector sees it (tokens already decrypted)."""

    platform: str
    account_id: str
    platform_user_id: str | None
    username: str | None
    access_token: str | None
    refresh_token: str | None
    expires_at: dt.datetime | None
    sandbox: bool


@dataclass(frozen=True)
class Job:
    """One delivery's work: what to post, where, and what is already done."""

    delivery_id: str
    post_id: str
    platform: str
    account: AccountAccess
    text: str | None
    media_type: str
    image_urls: tuple[str, ...]
    video_urls: tuple[str, ...]
    checkpoint: dict[str, Any] = field(default_factory=dict)
    publishing_since: dt.datetime | None = None


@dataclass(frozen=True)
class Published:
    platform_post_id: str
    url: str | None
    raw: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", without_secrets(self.raw))  # the attempt stores it


@dataclass(frozen=True)
class NotPublished:
    """The platform says the post does not exist: publishing again is safe."""


@dataclass(frozen=True)
class CannotTell:
    """The platform cannot say; retrying could post twice."""

    reason: str


ReconcileResult = Published | NotPublished | CannotTell
StepFunction = Callable[[Job, httpx.AsyncClient], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction


@dataclass(frozen=True)
class RefreshedTokens:
    access_token: str
    refresh_token: str | None
    expires_at: dt.datetime | None


class Connector(Protocol):
    platform: str

    def steps(self, job: Job) -> Sequence[Step]: ...

    async def publish(self, job: Job, client: httpx.AsyncClient) -> Published: ...

    async def reconcile(self, job: Job, client: httpx.AsyncClient) -> ReconcileResult: ...

    async def refresh(
        self, account: AccountAccess, client: httpx.AsyncClient
    ) -> RefreshedTokens: ...


def transport_error(exc: httpx.HTTPError, label: str) -> PlatformError:
    """A call that got no answer: it could not connect (nothing sent) or the answer never came."""
    origin = origin_of(exc)
    reason = str(exc).rstrip(".") or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        message = f"Could not connect to {label} ({reason})."
        return PlatformError(ErrorKind.connection, "connection_failed", message, origin=origin)
    if isinstance(exc, httpx.TimeoutException):
        message = f"{label} did not answer in time ({reason})."
    else:
        message = f"The connection to {label} broke before its answer was complete ({reason})."
    return PlatformError(ErrorKind.timeout, "timeout", message, origin=origin)


def foreign_answer(response: httpx.Response, recognized: bool) -> tuple[str, str | None]:
    """A 404 or 405 in none of the platform's error shapes came from something else at that
    address, most likely through a wrong base URL: a hint for the message, and the call's
    origin (scheme://host:port, kept for the log). ("", None) for any other answer."""
    if recognized or response.status_code not in (404, 405):
        return "", None
    hint = (
        " The answer is not one of the platform's own errors: check this connector's base "
        "URL (SOKU_PLATFORM_OPTIONS)."
    )
    return hint, _origin(response.request.url)


def origin_of(exc: httpx.HTTPError) -> str | None:
    """Where the failed call went, as scheme://host:port (no path: it may hold ids), so that a
    wrong base URL shows in the log; None when the error carries no request."""
    try:
        url = exc.request.url
    except RuntimeError:
        return None
    return _origin(url)


def _origin(url: httpx.URL) -> str:
    """scheme://host:port, without the path (it may hold ids)."""
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def retry_after_header(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds (sent as seconds or as an HTTP date); None if absent or unread."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def response_json(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def response_body(response: httpx.Response) -> Any:
    """The answer's JSON, else its text: what an error keeps as `raw`."""
    body = response_json(response)
    return response.text if body is None else body


def retry_wait(
    kind: ErrorKind, headers: httpx.Headers, reset: Callable[[], float | None] | None = None
) -> float | None:
    """How long a retryable error (a rate limit, a server error) asks us to wait.

    Retry-After, when sent; else, for a rate limit, what `reset` reads of when the platform's
    spent window ends. None for the other kinds, whose retry (if any) waits for nothing.
    """
    if kind not in (ErrorKind.rate_limited, ErrorKind.server_error):
        return None
    waited = retry_after_header(headers)
    if waited is None and kind is ErrorKind.rate_limited and reset is not None:
        return reset()
    return waited


_Made = TypeVar("_Made")


def from_options(platform: str, make: Callable[[], _Made]) -> _Made:
    """What `make` builds from the operator's options; a wrong setting (the ValueError it
    raises) fails the delivery with the platform's options named, as a permanent error."""
    try:
        return make()
    except ValueError as exc:
        message = f"SOKU_PLATFORM_OPTIONS['{platform}'] is not usable: {exc}."
        raise PlatformError(ErrorKind.permanent, "invalid_options", message) from None


def refused_refresh(error: PlatformError, label: str, *reason_fields: str) -> PlatformError:
    """A refresh the platform refused, from its error mapped as any other answer.

    A rate limit or a server error stays as it is (retryable); any other refusal needs the
    user to connect the account again. The code is the OAuth `error` (`invalid_grant` when
    absent); the reason the first of `error_description` and `reason_fields` that is set.
    """
    if error.kind in (ErrorKind.rate_limited, ErrorKind.server_error):
        return error
    raw = error.raw if isinstance(error.raw, dict) else {}
    code = str(raw.get("error") or "invalid_grant")
    reasons = (raw.get(name) for name in ("error_description", *reason_fields))
    reason = next((value for value in reasons if value), code)
    message = f"{label} refused the refresh token ({reason}): connect the account again."
    return PlatformError(
        ErrorKind.reauth_required, code, message, http_status=error.http_status, raw=error.raw
    )


class GrowingSteps(Sequence[Step]):
    """A step list that grows as the engine walks it (chunked uploads).

    How many chunk steps there are is known only once an earlier step (the upload's
    initialization) has answered. The engine saves each step's result in `job.checkpoint`
    before it asks for the next step, and this sequence calls `current()` again at every
    index, so the chunk steps appear as soon as that result is saved. Had a caller taken the
    list before then, the step after the chunks must refuse an incomplete upload (a
    retryable error), and the next attempt lists every chunk.
    """

    def __init__(self, current: Callable[[], list[Step]]) -> None:
        self._current = current

    @overload
    def __getitem__(self, index: int) -> Step: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Step]: ...
    def __getitem__(self, index: int | slice) -> Step | Sequence[Step]:
        return self._current()[index]

    def __len__(self) -> int:
        return len(self._current())


# --- rounds: steps made again when what they made has expired on the platform ---------------
# A delivery held back for a day (a rate limit's reset, a retry asked for later) may find that
# what its steps made (a container, an uploaded media id) has expired. The connector then lists
# a new round of the same steps, named with an `r<n>_` prefix (`r2_upload_0`), and publishes
# with the latest round whose steps are done. Round 1 has no prefix.
_ROUND = re.compile(r"r([0-9]+)_")


def round_of(name: str) -> int:
    """The round a step's name belongs to."""
    match = _ROUND.match(name)
    return int(match.group(1)) if match else 1


def round_prefix(number: int) -> str:
    return "" if number == 1 else f"r{number}_"


def latest_round(done: Mapping[str, Any]) -> int:
    """The highest round with a saved step result (1 when none has a prefix)."""
    return max((round_of(name) for name in done), default=1)


def current_round(done: Mapping[str, Any], stale: Callable[[dict[str, Any]], bool]) -> int:
    """The round to use: the latest, or a new one once one of its results is `stale` (what
    that step made has expired on the platform, or is about to)."""
    number = latest_round(done)
    ours = (r for name, r in done.items() if round_of(name) == number and isinstance(r, dict))
    return number + 1 if any(stale(result) for result in ours) else number
