"""What every fake platform shares: its app, fault switches, control routes and its own URL.

Each fake keeps its memory in a state object with `faults` (a `FaultQueue`), `calls` (a
counter per kind of call), `config` (a pydantic model of its settings) and `reset()`;
`control_routes` then gives it the same `/_faults`, `/_config`, `/_inspect/calls` and
`DELETE /_inspect` as every other fake. `/_inspect/posts` stays the fake's own, since only
it knows how its posts look.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from soku.http import NO_TELEMETRY


def fake_app(title: str, **options: Any) -> FastAPI:
    """A fake's FastAPI app: no documentation pages, no OpenTelemetry (`NO_TELEMETRY`)."""
    return FastAPI(title=title, docs_url=None, redoc_url=None, telemetry=NO_TELEMETRY, **options)


class FaultFields(BaseModel):
    """One injected fault, as posted to `/_faults`; each fake adds the calls it can hit (`on`)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = "*"
    status: int | None = Field(default=None, ge=400, le=599)
    error_code: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    delay: float | None = Field(default=None, ge=0)
    accept_then_delay: float | None = Field(default=None, ge=0)
    times: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_effects(self) -> FaultFields:
        if self.accept_then_delay is not None and getattr(self, "on", None) != "publish":
            raise ValueError("accept_then_delay applies to publish only")
        effects = (self.status, self.error_code, self.delay, self.accept_then_delay)
        if all(effect is None for effect in effects):
            raise ValueError("a fault needs a status, an error_code, a delay or accept_then_delay")
        return self

    def matches(self, kind: str, user_id: str | None) -> bool:
        on = getattr(self, "on", "any")
        return on in (kind, "any") and self.user_id in ("*", user_id)


F = TypeVar("F", bound=FaultFields)


class FaultQueue(Generic[F]):
    """Pending faults in the order they were added, each good for `times` matching calls."""

    def __init__(self) -> None:
        self._pending: list[tuple[F, int]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, spec: F) -> None:
        self._pending.append((spec, spec.times))

    def take(self, kind: str, user_id: str | None) -> F | None:
        """The oldest pending fault matching this call, used up once."""
        for index, (spec, left) in enumerate(self._pending):
            if spec.matches(kind, user_id):
                if left <= 1:
                    del self._pending[index]
                else:
                    self._pending[index] = (spec, left - 1)
                return spec
        return None

    def pending(self) -> list[dict[str, Any]]:
        return [{**spec.model_dump(), "times": left} for spec, left in self._pending]

    def clear(self) -> None:
        self._pending.clear()


async def apply_fault(
    faults: FaultQueue[F],
    kind: str,
    user_id: str | None,
    status_kinds: Container[str],
    *,
    error: Callable[[F], Exception | None],
) -> F | None:
    """Takes the next fault matching this call and applies what a fake's gate applies.

    A fault delaying the answer of an accepted publish is returned at once; any other waits
    out its delay first. Then a `processing_failed` on a status read (`status_kinds`) is
    returned too, for the route to finish; any other fault raises its `error`.
    """
    fault = faults.take(kind, user_id)
    if fault is None or fault.accept_then_delay is not None:
        return fault
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if kind in status_kinds and fault.error_code == "processing_failed":
        return fault
    raised = error(fault)
    if raised is not None:
        raise raised
    return None


class Controlled(Protocol):
    """The part of a fake's state the control routes drive."""

    faults: FaultQueue[Any]
    calls: Counter[str]
    config: Any  # the fake's own settings model

    def reset(self) -> None: ...


def _validated(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        error = {"type": "dict_type", "loc": ("body",), "msg": "The body must be a JSON object."}
        raise RequestValidationError([error])
    return data


def control_routes(
    app: FastAPI, state: Controlled, fault_model: type[FaultFields], call_kinds: tuple[str, ...]
) -> None:
    """`/_faults` (add, list, clear), `/_config` (merge, read), `/_inspect/calls`, reset."""

    @app.post("/_faults", status_code=201)
    async def add_fault(request: Request) -> dict[str, Any]:
        spec = _validated(fault_model, await _json_object(request))
        state.faults.add(spec)
        return {"fault": spec.model_dump(), "pending": len(state.faults)}

    @app.get("/_faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": state.faults.pending()}

    @app.delete("/_faults", status_code=204)
    async def clear_faults() -> None:
        state.faults.clear()

    @app.post("/_config")
    async def set_config(request: Request) -> dict[str, Any]:
        update = await _json_object(request)
        config_model = type(state.config)
        state.config = _validated(config_model, {**state.config.model_dump(), **update})
        return dict(state.config.model_dump())

    @app.get("/_config")
    async def get_config() -> dict[str, Any]:
        return dict(state.config.model_dump())

    @app.get("/_inspect/calls")
    async def calls() -> dict[str, int]:
        return {kind: state.calls[kind] for kind in call_kinds}

    @app.delete("/_inspect", status_code=204)
    async def reset() -> None:
        state.reset()


def public_base(public_url: str, request: Request) -> str:
    """The URL the fake is reached at: as configured, or as this request reached it."""
    if public_url:
        return public_url
    base = request.base_url
    return f"{base.scheme}://{base.netloc}{request.scope.get('root_path', '')}".rstrip("/")


@dataclass(frozen=True)
class Fetched:
    """What a fake got from a media URL it was asked to fetch, as Meta's platforms do."""

    ok: bool
    content_type: str = ""
    size: int = 0
    sha256: str = ""
    data: bytes = b""  # the bytes, when asked to keep them
    detail: str = ""  # why not, in a few words


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


async def fetch_media(url: str, *, max_bytes: int, keep: bool, public_url: str) -> Fetched:
    """GETs a media URL (redirects followed), reading at most `max_bytes`.

    With a `public_url` (a fake the service mounts) only URLs of that origin are fetched,
    where our media store serves the copies the connectors hand over: a fake anyone with a
    sandbox token can reach must not fetch arbitrary addresses for them. Without one (a
    fake in a test) any http(s) URL is fetched.
    """
    if _origin(url)[0] not in ("http", "https"):
        return Fetched(False, detail="the URL is not an http(s) URL")
    if public_url and _origin(url) != _origin(public_url):
        return Fetched(False, detail="the sandbox fetches only this service's own media URLs")
    digest, size, data = hashlib.sha256(), 0, bytearray()
    try:
        async with (
            httpx.AsyncClient(timeout=30, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            content_type = response.headers.get("content-type", "")
            if response.status_code != 200:
                return Fetched(False, content_type, detail=f"HTTP {response.status_code}")
            async for part in response.aiter_bytes():
                digest.update(part)
                size += len(part)
                if size > max_bytes:
                    return Fetched(False, content_type, size, detail="the file is too large")
                if keep:
                    data += part
    except httpx.HTTPError as exc:
        return Fetched(False, detail=f"the file could not be fetched ({type(exc).__name__})")
    return Fetched(True, content_type, size, digest.hexdigest(), bytes(data))
