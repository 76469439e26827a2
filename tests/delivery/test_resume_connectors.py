"""Exactly-once delivery through the REAL connectors, with media, when workers die.

`test_processes.py` kills `soku worker` processes against the generic fake. Here sandbox
accounts of X, LinkedIn, Threads and Facebook go through their platform's own connector to
its own fake (`python -m soku.sandbox`: every fake in one process), with image and video
posts, the longest step sequences there are. Our media store is served over real HTTP by the
API (in this process): the X and LinkedIn connectors read it, the Threads and Facebook fakes
fetch it.

For one post, a worker started with `SOKU_CRASH_AT=step:<name>` is SIGKILLed right after
that step's result is saved; the next worker resumes from the checkpoint and is killed at
the next step, and so on through every step, then at `publishing` (marked, not called) and
at `published_call` (the platform took the post, the delivery has not recorded it). A clean
worker then finishes. Checked on the fake (`_inspect`): one post per delivery, with the id
the delivery recorded and the media its checkpoint names; between two crashes, the fake got
the calls of the one step (or publish) that was missing and no other (nothing finished was
uploaded again); no saved step result was ever replaced.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from soku.app import create_app
from tests.asgi_server import serving
from tests.delivery.processes import (
    FINAL,
    HTTP_TIMEOUT,
    Row,
    WorkerProcess,
    World,
    eventually,
    open_world,
)
from tests.media_files import MediaServer

PLATFORMS = ("x", "linkedin", "threads", "facebook", "youtube", "instagram", "snapchat")


@dataclass(frozen=True)
class Scenario:
    platform: str
    media: str  # "images" (two), "image" (one) or "video"
    steps: tuple[str, ...]  # the connector's `steps()` for it, in order (read in its module)
    # False where the platform lists no posts (reconcile cannot tell): a crash at or after
    # the publishing mark can only end `unknown` there, so it is cut at its steps only
    reconciles: bool = True

    @property
    def name(self) -> str:
        return f"{self.platform}-{self.media}"

    @property
    def points(self) -> list[str]:
        cuts = [f"step:{s}" for s in self.steps]
        return [*cuts, "publishing", "published_call"] if self.reconciles else cuts

    def content(self, media: MediaServer, text: str) -> dict[str, Any]:
        found: dict[str, Any] = {"text": text, "platform": [self.platform]}
        if self.media == "video":
            return {**found, "mediaType": "video", "videoUrl": media.url("clip.mp4")}
        count = 2 if self.media == "images" else 1
        # JPEGs, which every platform takes (Instagram takes nothing else)
        return {**found, "mediaType": "image", "imageUrls": media.images(count, "jpg")}


SCENARIOS = (
    # x_connector: `user` (a sandbox account's id is not numeric), one upload per image;
    # a video: init, one append per 4 MB chunk, finalize, wait_processing (STATUS)
    Scenario("x", "images", ("user", "upload_0", "upload_1")),
    Scenario("x", "video", ("user", "init", "append_0", "finalize", "wait_processing")),
    # linkedin_media: initialize + PUT per image, then wait_processing (AVAILABLE);
    # a video: init, one PUT per part, finalize (ETags), wait_processing
    Scenario("linkedin", "images", ("upload_0", "upload_1", "wait_processing")),
    Scenario("linkedin", "video", ("init", "part_0", "finalize", "wait_processing")),
    # threads_connector: an item container and its wait per image, then the carousel
    # container and its wait; one video: its container and its wait
    Scenario(
        "threads",
        "images",
        ("item_0", "item_0_ready", "item_1", "item_1_ready", "container", "ready"),
    ),
    Scenario("threads", "video", ("container", "ready")),
    # facebook_connector: several photos are uploaded unpublished first; one photo and a
    # video are published by the publish call itself (no steps)
    Scenario("facebook", "images", ("photo_0", "photo_1")),
    Scenario("facebook", "image", ()),
    Scenario("facebook", "video", ()),
    # tiktok_upload: the creator info, then init; a small video is one chunk, sent by the
    # publish. (A photo post is made by its init, which nothing can reconcile: not here.)
    Scenario("tiktok", "video", ("creator", "init")),
    # youtube_connector: a resumable session, then every chunk but the last (none for a
    # small clip); the publish sends the last chunk
    Scenario("youtube", "video", ("session", "upload")),
    # instagram_connector: as Threads, a child container and its wait per image, then the
    # carousel's; one video (a reel): its container and its wait
    Scenario(
        "instagram",
        "images",
        ("item_0", "item_0_ready", "item_1", "item_1_ready", "container", "ready"),
    ),
    Scenario("instagram", "video", ("container", "ready")),
    # snapchat_upload: the media container, one part (a small clip), finalize
    Scenario("snapchat", "video", ("media", "part_0", "finalize"), reconciles=False),
)

# The fake's call kinds each step makes (by its name's prefix; the waits only read), and
# the kind of each publish call.
STEP_CALLS: dict[str, dict[str, tuple[str, ...]]] = {
    "x": {"upload_": ("media",), "init": ("initialize",), "append_": ("append",),
          "finalize": ("finalize",)},
    "linkedin": {"upload_": ("image_init", "image_upload"), "init": ("video_init",),
                 "part_": ("video_part",), "finalize": ("video_finalize",)},
    "threads": {"item_": ("create",), "container": ("create",)},
    "facebook": {"photo_": ("photo",)},
    "tiktok": {"init": ("video_init",)},
    "youtube": {"session": ("insert",)},  # a small clip: no chunk before the last
    "instagram": {"item_": ("create",), "container": ("create",)},
    "snapchat": {"media": ("create",), "part_": ("add",), "finalize": ("finalize",)},
}  # fmt: skip


def _step_calls(platform: str, step: str) -> tuple[str, ...]:
    for prefix, kinds in STEP_CALLS[platform].items():
        if step.startswith(prefix) and not step.endswith("_ready"):
            return kinds
    return ()


def _publish_call(scenario: Scenario) -> str:
    """A Facebook video is published by its upload (`video`); every other post by `publish`
    (Facebook counts a published photo as one)."""
    return "video" if scenario.name == "facebook-video" else "publish"


def _counted(platform: str) -> set[str]:
    return {k for kinds in STEP_CALLS[platform].values() for k in kinds} | {"publish", "video"}


# --- the world: the platforms' own fakes, our media over HTTP ----------------------------------


@dataclass
class Fakes:
    http: httpx.AsyncClient  # on the sandbox root (…/sandbox)

    async def inspect(self, platform: str, what: str) -> Any:
        answer = await self.http.get(f"/{platform}/_inspect/{what}")
        answer.raise_for_status()
        return answer.json()

    async def posts(self, platform: str, text: str) -> list[dict[str, Any]]:
        found = (await self.inspect(platform, "posts"))["posts"]
        # a post with no text of its own (a Snapchat Story) is known by its media's name
        return [p for p in found if text in (p["text"], p.get("name"))]

    async def calls(self, platform: str) -> Counter[str]:
        return Counter(await self.inspect(platform, "calls"))


@dataclass
class ConnectorWorld:
    world: World
    fakes: Fakes
    backend: str


@pytest.fixture(params=["sqlite", "postgresql"])
async def cworld(
    request: pytest.FixtureRequest, tmp_path: Path, media_server: MediaServer
) -> AsyncIterator[ConnectorWorld]:
    async with (
        open_world(request.param, tmp_path, media_server) as world,
        serving(create_app(ctx=world.ctx)) as api_url,
    ):
        root = world.fake.base_url.removesuffix("/generic")
        world.env.update(
            SOKU_SANDBOX_FAKES="platform",
            SOKU_SANDBOX_URL=root,
            SOKU_PUBLIC_BASE_URL=api_url,  # where the workers and the fakes read our media
            # One worker at a time here: a short lease lets the next one resume at once.
            SOKU_LEASE_SECONDS="1",
            SOKU_HTTP_TIMEOUT_SECONDS="2",  # a cut publish is reconciled 3 s after its start
            SOKU_RETRY_MAX_ATTEMPTS="20",  # each crash costs an attempt
        )
        async with httpx.AsyncClient(base_url=root, timeout=HTTP_TIMEOUT) as http:
            # no processing waits: LinkedIn's connector polls every 5 s, Threads' every 2 s
            for platform in ("x", "linkedin", "threads", "youtube"):
                answer = await http.post(f"/{platform}/_config", json={"video_polls": 0})
                answer.raise_for_status()
            # Instagram polls every 5 s
            config = {"video_polls": 0}
            (await http.post("/instagram/_config", json=config)).raise_for_status()
            yield ConnectorWorld(world, Fakes(http), request.param)


# --- what each crash left --------------------------------------------------------------------


@dataclass
class Snapshot:
    row: Row
    posted: int  # posts of its text on the fake
    calls: Counter[str]  # the fake's counted calls (the kinds `_counted` names)


async def _snapshot(cw: ConnectorWorld, scenario: Scenario, text: str) -> Snapshot:
    """The state once the fake has counted every call the dead worker sent."""
    fakes, platform = cw.fakes, scenario.platform
    last = await fakes.calls(platform)
    while True:
        await asyncio.sleep(0.1)
        now = await fakes.calls(platform)
        if now == last:
            break
        last = now
    [row] = [r for r in await cw.world.rows() if r.text == text]
    kept = Counter({k: last[k] for k in _counted(platform)})
    return Snapshot(row, len(await fakes.posts(platform, text)), kept)


def _stands_at(point: str, snapshot: Snapshot) -> bool:
    row = snapshot.row
    if point.startswith("step:"):
        return point.removeprefix("step:") in row.checkpoint.get("steps", {})
    if point == "publishing":
        return row.status == "publishing" and snapshot.posted == 0
    return row.status == "publishing" and snapshot.posted == 1  # published_call


async def _crash_at(cw: ConnectorWorld, point: str, scenario: Scenario, text: str) -> Snapshot:
    """A worker that resumes the delivery and is killed at `point`."""
    worker = await cw.world.worker(crash_at=point)
    return (await _killed(cw, worker, point, scenario, text))[0]


async def _killed(
    cw: ConnectorWorld,
    worker: WorkerProcess,
    point: str,
    scenario: Scenario,
    text: str,
    then: str | None = None,
) -> tuple[Snapshot, WorkerProcess | None]:
    """What `worker` left once killed at `point`; and the worker to die at `then`, started
    before that is read (its second of imports outlasts the reading)."""
    code = await worker.exit_code(within=30)
    assert code == -signal.SIGKILL, f"exit {code}, expected SIGKILL at {point}\n{worker.tail()}"
    after = await cw.world.worker(crash_at=then) if then else None
    snapshot = await _snapshot(cw, scenario, text)
    assert _stands_at(point, snapshot), (point, snapshot)
    return snapshot, after


def _expected_calls(scenario: Scenario, before: Snapshot, after: Snapshot) -> Counter[str]:
    """The calls of the steps saved, and of the publish made, between two snapshots."""
    done = before.row.checkpoint.get("steps", {})
    wanted: Counter[str] = Counter()
    for step in after.row.checkpoint.get("steps", {}):
        if step not in done:
            wanted.update(_step_calls(scenario.platform, step))
    wanted[_publish_call(scenario)] += after.posted - before.posted
    return wanted


def _assert_nothing_done_again(
    scenario: Scenario, snapshots: list[Snapshot], counted_until: int
) -> None:
    """No saved step result replaced; up to snapshot `counted_until`, the fake got between
    two of them the calls of the steps saved and the publish made, and no other."""
    final = snapshots[-1].row.checkpoint.get("steps", {})
    for index, (before, after) in enumerate(itertools.pairwise(snapshots)):
        for name, result in before.row.checkpoint.get("steps", {}).items():
            assert final.get(name) == result, (scenario.name, name, result, final.get(name))
        if index + 1 >= counted_until:
            continue
        made = after.calls - before.calls
        wanted = _expected_calls(scenario, before, after)
        assert +made == +wanted, (scenario.name, after.row.status, dict(made), dict(wanted))


def _post_media(scenario: Scenario, post: dict[str, Any]) -> list[str]:
    if scenario.platform in ("threads", "instagram"):  # the carousel's items, or the container
        return [m["container_id"] for m in post["media"]] or [post["container_id"]]
    if scenario.platform == "youtube":  # the upload session that made the video
        return [str(m["upload_id"]) for m in post["media"]]
    return [str(m["id"]) for m in post["media"]]


def _checkpoint_media(scenario: Scenario, steps: dict[str, Any]) -> list[str]:
    """The media the checkpoint says the post is made of (none: the publish uploads it)."""
    platform, video = scenario.platform, scenario.media == "video"
    if platform == "x":
        names = ["init"] if video else [s for s in scenario.steps if s.startswith("upload_")]
        return [str(steps[n]["media_id"]) for n in names]
    if platform == "linkedin":
        return [str(steps["init"]["video"])] if video else list(steps["wait_processing"]["images"])
    if platform in ("threads", "instagram"):
        items = [s for s in scenario.steps if s.startswith("item_") and s.endswith("_ready")]
        return [str(steps[n]["container_id"]) for n in items or ["ready"]]
    if platform == "tiktok":  # the upload, known by its publish_id
        return [str(steps["init"]["publish_id"])]
    if platform == "youtube":
        return [parse_qs(urlsplit(steps["upload"]["session"]).query)["upload_id"][0]]
    if platform == "snapchat":
        return [str(steps["finalize"]["media_id"])]
    return [str(steps[s]["photo_id"]) for s in scenario.steps]


# --- the test ----------------------------------------------------------------------------------

# Each crash costs a worker's start (about a second): PostgreSQL runs the longest chain only.
ON_POSTGRESQL = ("x-video",)


async def _cut_everywhere(cw: ConnectorWorld, scenario: Scenario, text: str) -> list[Snapshot]:
    """The post's delivery killed at each of its points in turn, by a new worker each time.
    The worker that cuts it first at `publishing` may also reconcile the previous post of
    the test (left cut at `published_call`): that only reads, which the calls do not count."""
    caller = await cw.world.caller((scenario.platform,))
    await cw.world.post(caller, scenario.content(cw.world.media, text))
    snapshots = [await _snapshot(cw, scenario, text)]
    points = scenario.points
    worker: WorkerProcess | None = await cw.world.worker(crash_at=points[0])
    for point, then in zip(points, [*points[1:], None], strict=True):
        assert worker is not None
        snapshot, worker = await _killed(cw, worker, point, scenario, text, then)
        snapshots.append(snapshot)
    return snapshots


async def _check(cw: ConnectorWorld, scenario: Scenario, text: str, cut: list[Snapshot]) -> None:
    final = await _snapshot(cw, scenario, text)
    row = final.row
    assert row.status == "published", (scenario.name, row.status, row.error)
    # (PostgreSQL's jsonb keeps an object's keys in an order of its own)
    assert sorted(row.checkpoint.get("steps", {})) == sorted(scenario.steps), scenario.name
    [post] = await cw.fakes.posts(scenario.platform, text)
    # a Facebook video's delivery names the video (the Page's post of it has its own id)
    video_post = scenario.name == "facebook-video"
    wanted_id = str(post["media"][0]["id"] if video_post else post["id"])
    assert row.platform_post_id == wanted_id, (scenario.name, row.platform_post_id, post)
    if scenario.steps:
        media = _checkpoint_media(scenario, row.checkpoint["steps"])
        assert _post_media(scenario, post) == media, (scenario.name, post, media)
    # between two crashes, the calls of what was saved; then only reading (reconciliation)
    _assert_nothing_done_again(scenario, [*cut, final], counted_until=len(cut))
    attempts = [a for a in await cw.world.attempts() if a.delivery_id == row.id]
    last = "reconciled" if scenario.reconciles else "published"
    assert [a.outcome for a in attempts] == [last], (scenario.name, attempts)


async def test_every_connector_resumes_exactly_once_after_a_crash_at_every_step(
    cworld: ConnectorWorld,
) -> None:
    cw = cworld
    chosen = [s for s in SCENARIOS if cw.backend == "sqlite" or s.name in ON_POSTGRESQL]
    texts = {s: f"resume {s.name} on {cw.backend}" for s in chosen}
    cut = {s: await _cut_everywhere(cw, s, texts[s]) for s in chosen}

    recovering = await cw.world.worker()

    async def finished() -> list[Row] | None:
        rows = [r for r in await cw.world.rows() if r.text in texts.values()]
        return rows if all(r.status in FINAL for r in rows) else None

    await eventually(finished, 30, "every post to be finished", recovering.tail)
    recovering.process.send_signal(signal.SIGTERM)
    assert await recovering.exit_code() == 0, recovering.tail()
    for scenario in chosen:
        await _check(cw, scenario, texts[scenario], cut[scenario])


# --- a worker killed while a call is in flight, and an upload the platform let expire --------

BY_NAME = {s.name: s for s in SCENARIOS}


async def _finish(cw: ConnectorWorld, text: str) -> Row:
    """A clean worker delivers what is left; the delivery, once finished."""
    worker = await cw.world.worker()

    async def finished() -> Row | None:
        [row] = [r for r in await cw.world.rows() if r.text == text]
        return row if row.status in FINAL else None

    row = await eventually(finished, 30, f"{text!r} to finish", worker.tail)
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.exit_code() == 0, worker.tail()
    return row


@pytest.mark.parametrize("cworld", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("name", "kind", "step"),
    [
        ("x-video", "finalize", "finalize"),
        ("linkedin-video", "video_part", "part_0"),
        ("linkedin-video", "video_finalize", "finalize"),
    ],
)
async def test_an_upload_call_the_platform_finished_after_its_worker_died_is_not_a_problem(
    cworld: ConnectorWorld, name: str, kind: str, step: str
) -> None:
    """The platform holds the call's answer back; the worker is killed meanwhile, then the
    platform does what it was asked: the next worker sends that call again (its result was
    never saved), and the platform's answer to a repeated call must not stop the delivery."""
    cw, scenario = cworld, BY_NAME[name]
    caller = await cw.world.caller((scenario.platform,))
    text = f"killed during {kind}"
    fault = {"on": kind, "delay": 1.0}
    (await cw.fakes.http.post(f"/{scenario.platform}/_faults", json=fault)).raise_for_status()
    await cw.world.post(caller, scenario.content(cw.world.media, text))
    first = await cw.world.worker()

    async def held() -> bool:
        return (await cw.fakes.calls(scenario.platform))[kind] == 1

    await eventually(held, 30, f"the {kind} call", first.tail)
    first.process.kill()
    assert await first.exit_code() == -signal.SIGKILL
    before = await _snapshot(cw, scenario, text)
    assert step not in before.row.checkpoint["steps"], before
    await asyncio.sleep(1.0)  # the platform acts on the call

    row = await _finish(cw, text)
    assert row.status == "published", (row.status, row.error)
    [post] = await cw.fakes.posts(scenario.platform, text)
    assert row.platform_post_id == str(post["id"])
    assert _post_media(scenario, post) == _checkpoint_media(scenario, row.checkpoint["steps"])
    calls = await cw.fakes.calls(scenario.platform)
    uploads = {k for kinds in STEP_CALLS[scenario.platform].values() for k in kinds}
    repeated = {k: calls[k] for k in uploads if calls[k] > 1}
    assert repeated == {kind: 2}, calls  # that call again, nothing else


@pytest.mark.parametrize("cworld", ["sqlite"], indirect=True)
@pytest.mark.parametrize("name", ["threads-images"])  # one container: test_threads_connector
async def test_a_threads_container_that_expired_while_no_worker_ran_is_made_again(
    cworld: ConnectorWorld, name: str
) -> None:
    """Killed once the post's container is made; it expires before a worker resumes: the
    `ready` step makes it again, and the new one is published, once."""
    cw, scenario = cworld, BY_NAME[name]
    caller = await cw.world.caller(("threads",))
    text = f"expired {name}"
    await cw.world.post(caller, scenario.content(cw.world.media, text))
    cut = await _crash_at(cw, "step:container", scenario, text)
    lifetime = 2
    config = {"container_lifetime_secs": lifetime}
    (await cw.fakes.http.post("/threads/_config", json=config)).raise_for_status()
    made = cut.row.checkpoint["steps"]["container"]
    await asyncio.sleep(max(made["created_at"] + lifetime + 0.2 - time.time(), 0))

    row = await _finish(cw, text)
    assert row.status == "published", (row.status, row.error)
    [post] = await cw.fakes.posts("threads", text)
    ready = row.checkpoint["steps"]["ready"]
    assert ready["container_id"] != made["container_id"], ready
    assert (row.platform_post_id, post["container_id"]) == (str(post["id"]), ready["container_id"])
    # a carousel's items are made again with it: they expired before it did
    items = [s for s in scenario.steps if s.startswith("item_") and s.endswith("_ready")]
    old_items = {row.checkpoint["steps"][s]["container_id"] for s in items}
    assert not old_items & set(_post_media(scenario, post)), (old_items, post)
    made_again = (await cw.fakes.calls("threads"))["create"] - cut.calls["create"]
    assert made_again == 1 + len(items)
