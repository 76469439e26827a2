"""What the worlds of the Graph container fakes (Threads, Instagram) share: the account's
jobs, the containers the fake made, the media's hashes, a fresh fake that knows the account,
and the profile (`graph_profile`) the connector contract reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from starlette.types import ASGIApp

from soku.platforms.connector import Connector, ErrorKind, Job
from tests.media_files import MediaServer
from tests.platforms import profile
from tests.platforms.connector_world import Sandboxes, Site, World, fresh_fake, make_job, media_site
from tests.platforms.profile import ErrorCase, Profile


class _Default(enum.Enum):
    greeting = "the world's greeting"


@dataclasses.dataclass
class GraphEnv(World):
    """The test's world: the fake and a client like the engine's, the media store, the user."""

    platform: ClassVar[str]
    account: ClassVar[dict[str, Any]]
    greeting: ClassVar[str]  # a job's text unless it names one
    images: ClassVar[tuple[str, ...]] = ()  # a job's media when it names none

    media: MediaServer
    folder: Path
    user_id: str

    def job(
        self,
        text: str | _Default | None = _Default.greeting,
        images: tuple[str, ...] = (),
        video: str | None = None,
        **more: Any,
    ) -> Job:
        """`more`: `publishing_since`, or the account's fields this job changes."""
        if not images and not video:
            images = self.images
        return make_job(
            self.platform,
            {**self.account, "platform_user_id": self.user_id},
            text=self.greeting if isinstance(text, _Default) else text,
            image_urls=[self.media.url(name) for name in images],
            video_urls=[self.media.url(video)] if video else [],
            **more,
        )

    async def containers(self) -> list[dict[str, Any]]:
        return list((await self.inspect("containers"))["containers"])

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.folder / name).read_bytes()).hexdigest()


E = TypeVar("E", bound=GraphEnv)
C = TypeVar("C", bound=Connector)


@contextlib.asynccontextmanager
async def fresh_env(
    site: Site[MediaServer], env: type[E], username: str, token: str
) -> AsyncIterator[E]:
    """A fresh fake that knows the account and its token."""
    async with fresh_fake(site.fake) as fake:
        user = await fake.add_user(username=username, access_token=token)
        yield env(fake.http, site.fake, site.media, site.folder, user["id"])


# The faults both fakes answer alike on publish, besides `profile.COMMON_PUBLISH_ERRORS`.
_PUBLISH_ERRORS: tuple[ErrorCase, ...] = (
    ({"status": 503}, ErrorKind.server_error, "server_error"),
    ({"error_code": "token_invalid"}, ErrorKind.reauth_required, "reauth_required"),
    ({"error_code": "permission_denied"}, ErrorKind.permanent, "permission_denied"),
    ({"error_code": "user_rate_limited"}, ErrorKind.rate_limited, "rate_limited"),
)


def graph_profile(
    env: type[E],
    fake: Callable[[], ASGIApp],
    connector: Callable[..., Connector],
    label: str,
    reconcile: profile.Reconcile,
    processing: profile.Processing,
    resume_more: Mapping[str, Any],
    own_errors: tuple[ErrorCase, ...] = (),
) -> Profile[MediaServer, E]:
    """A Graph container platform's profile: what differs is given, the rest is alike
    (`fresh_env` on `env.account`, a slow `create`, no duplicate refused, a carousel of three
    resumed, a refresh of the access token that lives about 60 days)."""
    username, token = env.account["username"], env.account["access_token"]
    return Profile(
        platform=env.platform,
        serve=lambda folder: media_site(fake(), folder),
        fresh=lambda site: fresh_env(site, env, username, token),
        connector=connector,
        reconcile=reconcile,
        errors=profile.Errors(
            label=label,
            publish=_PUBLISH_ERRORS + own_errors,
            says_why=profile.graph_error_says_why,
            slow=("create", {}),
            duplicate=None,  # the fakes take the same text twice
            processing=(processing,),
        ),
        resume=profile.Resume(
            more=resume_more,
            stop_after="item_1_ready",
            fails_on="create",
            calls={"create": 4},  # three items and the carousel
        ),
        refresh=profile.Refresh(
            sends="access_token",
            call="refresh",
            lifetime=dt.timedelta(seconds=5_183_944),  # about 60 days
            owner="user",
        ),
    )


def connector_of(kind: Callable[..., C]) -> Callable[..., C]:
    """How the tests make a platform's connector to its fake (`fake`, its URL): statuses polled
    at once, and the fake's pages for the permalinks."""

    def connector(fake: str, **options: Any) -> C:
        return kind(fake, web_url=fake, poll_interval=0.01, **options)

    return connector


def step_names(connector: Connector, job: Job) -> list[str]:
    return [step.name for step in connector.steps(job)]


def world_fixtures(platform: Profile[MediaServer, E], make: Callable[[str], C]) -> tuple[Any, Any]:
    """The `env` (the platform's world, fresh) and `connector` (to its fake) fixtures of a
    platform's own tests."""

    @pytest.fixture(name="env")
    async def env(sandboxes: Sandboxes) -> AsyncIterator[E]:
        async with platform.world(sandboxes) as world:
            yield world

    @pytest.fixture(name="connector")
    def connector(env: GraphEnv) -> C:
        return make(env.fake)

    return env, connector
