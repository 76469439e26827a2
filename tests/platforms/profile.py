"""What the shared connector contract (`test_connector_contract.py`) knows of a platform.

Each platform's world module (`x_world.py`, …) describes its platform in a `PROFILE`: how to
serve its fake and open a fresh world on it, how to make its connector, and, for each contract,
the data where the platforms differ (the call a fault goes to, a job that has steps, the error
a fault maps to). A contract a platform does not have is None or empty there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

from soku.platforms.connector import Connector, ErrorKind, Job, PlatformError, Published
from tests.platforms.connector_world import Sandboxes, Serve, Site, World

M = TypeVar("M")
E = TypeVar("E", bound=World)
ErrorCase = tuple[Mapping[str, Any], ErrorKind, str]  # a fault on publish: its kind and code
# The faults every fake answers and every connector maps alike; a profile lists its others.
COMMON_PUBLISH_ERRORS: tuple[ErrorCase, ...] = (
    ({"status": 500}, ErrorKind.server_error, "server_error"),
    ({"error_code": "token_expired"}, ErrorKind.token_expired, "token_expired"),
    ({"error_code": "duplicate_content"}, ErrorKind.permanent, "duplicate_content"),
)


@dataclasses.dataclass(frozen=True)
class Sample:
    """A post reconcile must find: `name` for the test id, its text, the job's other arguments
    (media, author), and whether the job knows when its publishing began."""

    name: str
    text: str | None
    more: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    timed: bool = True

    def job(self, world: World, since: dt.datetime) -> Job:
        return world.job(self.text, publishing_since=since if self.timed else None, **self.more)


@dataclasses.dataclass(frozen=True)
class Reconcile:
    found: tuple[Sample, ...]
    staged: Mapping[str, Any]  # a job's media whose steps make something on the platform


@dataclasses.dataclass(frozen=True)
class Processing:
    """Media the platform fails to process: the fault (`on` its status call) and the job's
    media; what the error's message and raw answer hold."""

    fault: Mapping[str, Any]
    more: Mapping[str, Any]
    says: str
    raw: Mapping[str, Any]


def graph_error_says_why(error: PlatformError) -> bool:
    """Meta's Graph APIs (Threads, Facebook): the raw answer keeps Graph's error code."""
    return bool(error.raw["error"]["code"])


@dataclasses.dataclass(frozen=True)
class Errors:
    label: str  # its errors' messages begin "<label> answered"
    publish: tuple[ErrorCase, ...]  # besides COMMON_PUBLISH_ERRORS
    says_why: Callable[[PlatformError], bool]  # the error keeps the platform's own account of it
    slow: tuple[str, Mapping[str, Any]]  # the call a delivery's first one is, and the job's media
    # A real duplicate's HTTP status, and what its raw answer holds (given the first post).
    duplicate: tuple[int, Callable[[Published], Mapping[str, Any]]] | None
    processing: tuple[Processing, ...]


@dataclasses.dataclass(frozen=True)
class Resume:
    """A delivery of several steps cut short after `stop_after`, and the step after it failing
    in a call `fails_on`; `calls`: the fake's count of each call the whole delivery makes."""

    more: Mapping[str, Any]
    stop_after: str
    fails_on: str
    calls: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class Refresh:
    sends: str  # the account's token a refresh sends: "refresh_token" or "access_token"
    call: str  # the fake's call a refresh makes
    lifetime: dt.timedelta | None  # of the access token a refresh gives; None: not said
    owner: str  # the field of the fake's posts that says who posted
    # The app's credentials a fake may ask for (its config and the connector's options), and
    # the code of a refresh without them.
    credentials: tuple[Mapping[str, str], str] | None = None


@dataclasses.dataclass(frozen=True)
class Profile(Generic[M, E]):
    platform: str
    serve: Serve[M]
    fresh: Callable[[Site[M]], AbstractAsyncContextManager[E]]
    connector: Callable[..., Connector]  # for the fake at this URL, with these options
    reconcile: Reconcile
    errors: Errors
    resume: Resume
    refresh: Refresh

    @contextlib.asynccontextmanager
    async def world(self, sandboxes: Sandboxes) -> AsyncIterator[E]:
        """The platform's fake, emptied for this test, served for the session."""
        async with self.fresh(await sandboxes.site(self.platform, self.serve)) as world:
            yield world
