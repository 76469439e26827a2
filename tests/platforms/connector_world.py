"""What a connector test works with: a fake's control routes, jobs as the engine builds them,
and the engine's way of driving a connector's steps.

Every fake has the same control routes (`soku.sandbox.common.control_routes`) and
`/_inspect/posts`, so `FakeControls` drives any of them; a platform's `World` adds what only
it has (its account, its media, its own inspection routes). `Sandboxes` serves each fake once
a session, with the media server it fetches from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import pytest
from starlette.types import ASGIApp

from soku.platforms.connector import AccountAccess, Connector, Job, PlatformError, Published
from soku.platforms.transport import platform_client
from tests.asgi_server import serving
from tests.media_files import MediaServer

M = TypeVar("M")

_NO_ACCOUNT: dict[str, Any] = {
    "platform_user_id": None,
    "username": None,
    "access_token": None,
    "refresh_token": None,
    "expires_at": None,
    "sandbox": True,
}


@dataclasses.dataclass
class FakeControls:
    """A fake at `fake` (its URL), reached with `http`, a client like the engine's."""

    http: httpx.AsyncClient
    fake: str

    async def inspect(self, what: str) -> Any:
        """What the fake's `/_inspect/<what>` shows."""
        response = await self.http.get(f"{self.fake}/_inspect/{what}")
        assert response.status_code == 200, response.text
        return response.json()

    async def posts(self) -> list[dict[str, Any]]:
        return list((await self.inspect("posts"))["posts"])

    async def calls(self) -> dict[str, int]:
        return dict(await self.inspect("calls"))

    async def config(self, **values: Any) -> None:
        response = await self.http.post(f"{self.fake}/_config", json=values)
        assert response.status_code == 200, response.text

    async def fault(self, **fault: Any) -> None:
        response = await self.http.post(f"{self.fake}/_faults", json=fault)
        assert response.status_code == 201, response.text

    async def add_user(self, **body: Any) -> dict[str, Any]:
        """Registers a user (and the tokens it is known by) with the fake."""
        response = await self.http.post(f"{self.fake}/_users", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


@dataclasses.dataclass
class World(FakeControls):
    """A platform's fake, emptied for one test, and jobs for the account it knows."""

    def job(self, text: str | None = "Hello", **more: Any) -> Job:
        """A job of this account: `more` gives its media, `publishing_since`, account fields."""
        raise NotImplementedError

    async def refreshable(self) -> AccountAccess:
        """An account whose tokens the fake refreshes."""
        return self.job().account


@dataclasses.dataclass(frozen=True)
class Site(Generic[M]):
    """A fake served for the session, and the server of the media in `folder` it fetches."""

    fake: str
    media: M
    folder: Path


Serve = Callable[[Path], AbstractAsyncContextManager[Site[M]]]


class Sandboxes:
    """The session's fakes, each served (with its media, written to a fresh folder) from its
    first use to the end of the session."""

    def __init__(self, stack: contextlib.AsyncExitStack, folders: pytest.TempPathFactory) -> None:
        self._stack, self._folders = stack, folders
        self._sites: dict[str, Any] = {}

    async def site(self, platform: str, serve: Serve[M]) -> Site[M]:
        if platform not in self._sites:
            folder = self._folders.mktemp(f"{platform}_media")
            self._sites[platform] = await self._stack.enter_async_context(serve(folder))
        site: Site[M] = self._sites[platform]
        return site


@contextlib.asynccontextmanager
async def media_site(fake: ASGIApp, folder: Path) -> AsyncIterator[Site[MediaServer]]:
    """The fake served, with a `MediaServer` of `folder` (it writes the usual files there)."""
    media = MediaServer(folder)
    try:
        async with serving(fake) as url:
            yield Site(url, media, folder)
    finally:
        media.close()


@contextlib.asynccontextmanager
async def fresh_fake(fake_url: str) -> AsyncIterator[FakeControls]:
    """The fake at `fake_url` with its memory emptied, and a client like the engine's."""
    async with platform_client(16, 10) as http:
        response = await http.delete(f"{fake_url}/_inspect")
        assert response.status_code == 204, response.text
        yield FakeControls(http, fake_url)


def make_job(
    platform: str,
    account: Mapping[str, Any],
    *,
    text: str | None,
    image_urls: Iterable[str] = (),
    video_urls: Iterable[str] = (),
    publishing_since: dt.datetime | None = None,
    **overrides: Any,
) -> Job:
    """A delivery's job as the engine builds it, for a sandbox account of `platform`.

    `account` gives the account's fields (`account_id`, `platform_user_id`, `username`, the
    tokens; the ones left out are None), `overrides` the ones a test changes.
    """
    access = AccountAccess(platform=platform, **{**_NO_ACCOUNT, **account, **overrides})
    images, videos = tuple(image_urls), tuple(video_urls)
    return Job(
        delivery_id="dlv_1",
        post_id="post_1",
        platform=platform,
        account=access,
        text=text,
        media_type="video" if videos else "image" if images else "text",
        image_urls=images,
        video_urls=videos,
        publishing_since=publishing_since,
    )


async def run_steps(
    connector: Connector, job: Job, http: httpx.AsyncClient, stop_after: str | None = None
) -> dict[str, Any]:
    """As the engine does: each step not yet done runs, and the checkpoint is saved after it.

    Returns the saved checkpoint (a JSON copy, as the database keeps it); `stop_after` makes
    the worker die right after that step was saved.
    """
    done = job.checkpoint.setdefault("steps", {})
    saved: dict[str, Any] = json.loads(json.dumps(job.checkpoint))
    for step in connector.steps(job):
        if step.name not in done:
            done[step.name] = await step.run(job, http)
            saved = json.loads(json.dumps(job.checkpoint))
        if step.name == stop_after:
            break
    return saved


async def deliver(connector: Connector, job: Job, http: httpx.AsyncClient) -> Published:
    """The steps, then the publish: a whole delivery that nothing interrupts."""
    await run_steps(connector, job, http)
    return await connector.publish(job, http)


async def failure(call: Any) -> PlatformError:
    """The `PlatformError` that awaiting `call` raises (the test fails if it raises none)."""
    with pytest.raises(PlatformError) as caught:
        await call
    return caught.value
