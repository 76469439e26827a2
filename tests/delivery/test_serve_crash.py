"""The whole service killed: `soku serve` (the API and its worker in one process, the default
shape) gets SIGKILL while clients are posting and its worker is delivering.

After a restart, every post it answered 201 for is there and is published exactly once; a
client that got no answer sends the same request again with its `Idempotency-Key` and ends
with one post, never two, whether or not the first request had been committed; a request
answered before the crash and sent again gets the same `postSubmissionId`. Runs on SQLite and
PostgreSQL (the `world` of `processes.py`: the generic fake in its own process, so what it
received outlives the server).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from soku.posts.models import Post
from tests.conftest import Caller
from tests.delivery.processes import World, assert_exactly_once, assert_published_once_each

PLATFORMS = ("x", "linkedin", "threads")
POSTS = 60
SENDERS = 8  # requests in flight at once: several are cut off by the kill
KILL_AFTER = 20  # answered posts before the kill
HTTP = httpx.Timeout(20.0)


def _request(key: str) -> dict[str, Any]:
    text = f"crash test {key}"  # unique: the fake's posts are matched on it
    return {"post": {"content": {"text": text, "mediaType": "text", "platform": list(PLATFORMS)}}}


async def _post_all(
    base_url: str, caller: Caller, keys: list[str], on_answer: Callable[[int], None] | None = None
) -> dict[str, str]:
    """Each key's request, `SENDERS` at a time; the id of each one answered 201 (a request
    cut off by the server's death is left out). `on_answer(count)` after each answer."""
    answered: dict[str, str] = {}
    queue = list(keys)

    async def sender(http: httpx.AsyncClient) -> None:
        while queue:
            key = queue.pop(0)
            headers = {**caller.headers, "Idempotency-Key": key}
            try:
                answer = await http.post("/v1/posts", json=_request(key), headers=headers)
            except httpx.TransportError:
                continue  # no answer: the client will send it again
            assert answer.status_code == 201, answer.text
            answered[key] = answer.json()["postSubmissionId"]
            if on_answer is not None:
                on_answer(len(answered))

    limits = httpx.Limits(max_connections=SENDERS)
    async with httpx.AsyncClient(base_url=base_url, timeout=HTTP, limits=limits) as http:
        await asyncio.gather(*(sender(http) for _ in range(SENDERS)))
    return answered


async def test_the_service_killed_while_accepting_and_delivering_loses_and_doubles_nothing(
    world: World,
) -> None:
    caller = await world.caller(PLATFORMS)
    keys = [f"crash-{n}-{secrets.token_hex(4)}" for n in range(POSTS)]
    server, base_url = await world.serve()

    def kill_at_threshold(count: int) -> None:
        if count == KILL_AFTER:
            server.process.kill()  # SIGKILL: no drain, no release, requests in flight cut off

    before = await _post_all(base_url, caller, keys, kill_at_threshold)
    assert await server.exit_code() == -9
    assert KILL_AFTER <= len(before) < POSTS, "the kill should cut some requests off"

    _, base_url = await world.serve()
    unanswered = [key for key in keys if key not in before]
    after = await _post_all(base_url, caller, unanswered)
    assert sorted(after) == sorted(unanswered)  # every one answered now
    again = list(before)[:5]
    replayed = await _post_all(base_url, caller, again)
    assert replayed == {key: before[key] for key in again}  # the same posts, not new ones

    rows = await world.all_final(POSTS * len(PLATFORMS))
    async with world.ctx.db.read() as session:
        stored = set(map(str, (await session.scalars(select(Post.id))).all()))
        count = (await session.execute(select(func.count()).select_from(Post))).scalar_one()
    assert count == POSTS  # one post per key: none lost, none doubled
    assert stored == set(before.values()) | set(after.values())
    await assert_exactly_once(world, rows)
    await assert_published_once_each(world, rows)
