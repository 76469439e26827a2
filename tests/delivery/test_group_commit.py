"""Group commit: deliveries finishing together share a transaction, each still fenced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, event, text, update

import soku.platforms
from soku.db import utcnow
from soku.delivery import repository as repo
from soku.delivery.engine import Engine
from soku.delivery.group_commit import SIDE_GROUP
from soku.delivery.models import Delivery, DeliveryStatus
from soku.delivery.repository import LeaseLost
from soku.delivery.runner import DeliveryRun
from soku.platforms.base import DeliveryLimits, PublishCap
from tests.delivery.claimed import (
    claim_runs,
    count_transactions,
    published,
    take_over,
)
from tests.delivery.harness import Harness, text_post

T = TypeVar("T")
TWO_X = ({"platform": "x", "accountId": "x_main"}, {"platform": "x", "accountId": "x_other"})


async def one_post_two_accounts(
    env: Harness, engine: Engine, text: str
) -> tuple[str, list[DeliveryRun]]:
    """A post to two X accounts, both deliveries claimed."""
    caller = await env.caller([("x", "x_main"), ("x", "x_other")])
    post_id = await env.create(caller, text_post(*TWO_X, text=text))
    return post_id, await claim_runs(env, engine, "x")


async def test_grouped_finish_refuses_a_delivery_whose_lease_was_taken_over(
    env: Harness, engine: Engine
) -> None:
    post_id, runs = await one_post_two_accounts(env, engine, "two accounts, one post")
    assert len(runs) == 2
    kept, lost = runs
    await take_over(env, lost.claimed.id)
    opened = count_transactions(env)

    results = await asyncio.gather(published(kept), published(lost), return_exceptions=True)

    assert results[0] == "published"
    assert isinstance(results[1], LeaseLost)
    assert opened[0] == 1  # both in one group
    done = await env.delivery(str(kept.claimed.id))
    assert (done.status, done.lease_owner) == ("published", None)
    assert [a.outcome for a in await env.attempts(str(kept.claimed.id))] == ["published"]
    taken = await env.delivery(str(lost.claimed.id))
    assert (taken.status, taken.lease_owner) == ("processing", "other:1:abc")
    assert taken.platform_post_id is None
    assert await env.attempts(str(lost.claimed.id)) == []
    # the post's status was refreshed with the group: one published, one still in flight
    assert await env.stored_status(post_id) == "processing"


async def test_changes_of_different_columns_in_one_group_are_each_made(
    env: Harness, engine: Engine
) -> None:
    post_id, (done, broken) = await one_post_two_accounts(env, engine, "one published, one failed")
    opened = count_transactions(env)
    error = {"code": "rejected", "message": "The platform refused it.", "retryable": False}

    results = await asyncio.gather(
        published(done), broken.finish("failed", status=DeliveryStatus.failed, error=error)
    )

    assert results == ["published", "failed"]
    assert opened[0] == 1
    stored = await env.delivery(str(done.claimed.id))
    assert (stored.status, stored.platform_post_id) == ("published", f"p-{done.claimed.id}")
    stored = await env.delivery(str(broken.claimed.id))
    assert (stored.status, stored.error, stored.lease_owner) == ("failed", error, None)
    assert await env.stored_status(post_id) == "partially_published"


async def test_a_failing_write_does_not_take_the_rest_of_its_group_with_it(
    env: Harness, engine: Engine
) -> None:
    post_id, (first, second) = await one_post_two_accounts(env, engine, "one write fails")
    opened = count_transactions(env)

    def broken(connection: Connection) -> None:
        connection.execute(update(Delivery).values(status=DeliveryStatus.failed.value))
        raise RuntimeError("a write that fails after writing")

    results = await asyncio.gather(
        published(first), engine.writes.run(broken), published(second), return_exceptions=True
    )

    assert results[0] == results[2] == "published"
    assert isinstance(results[1], RuntimeError)
    assert opened[0] == 1 + 3  # the group, rolled back; then each write on its own
    for run in (first, second):
        assert (await env.delivery(str(run.claimed.id))).status == "published"
    assert await env.stored_status(post_id) == "published"


@pytest.fixture
def x_cap_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = DeliveryLimits(publish_caps=(PublishCap(1, 60),))
    monkeypatch.setitem(soku.platforms.LIMITS, "x", limits)


async def two_posts_of_one_account(env: Harness, engine: Engine, text: str) -> list[DeliveryRun]:
    """Two posts to one X account, both claimed."""
    caller = await env.caller([("x", "x_main")])
    for n in range(2):
        await env.create(caller, text_post("x", text=f"{text} {n}"))
    runs = await claim_runs(env, engine, "x")
    assert len(runs) == 2
    return runs


@pytest.mark.usefixtures("x_cap_of_one")
async def test_publishing_marks_in_one_group_count_against_the_cap(
    env: Harness, engine: Engine
) -> None:
    runs = await two_posts_of_one_account(env, engine, "same account")
    opened = count_transactions(env)

    results = await asyncio.gather(*(run._reserve_publish() for run in runs))

    assert opened[0] == 1
    assert results[0] is None  # marked publishing
    assert results[1] is not None  # the mark just made in the same transaction counts
    statuses = [(await env.delivery(str(run.claimed.id))).status for run in runs]
    assert statuses == ["publishing", "processing"]


@pytest.mark.usefixtures("x_cap_of_one")
async def test_a_publishing_mark_under_a_cap_still_refuses_a_lease_taken_over(
    env: Harness, engine: Engine
) -> None:
    caller = await env.caller([("x", "x_main")])
    await env.create(caller, text_post("x", text="under the cap, lease gone"))
    (run,) = await claim_runs(env, engine, "x")
    await take_over(env, run.claimed.id)

    with pytest.raises(LeaseLost):  # not taken for a cap (nothing else is publishing)
        await run._reserve_publish()

    taken = await env.delivery(str(run.claimed.id))
    assert (taken.status, taken.lease_owner) == ("processing", "other:1:abc")


async def test_publishing_marks_without_a_cap_are_fenced_changes_with_a_fresh_lease(
    env: Harness, engine: Engine
) -> None:
    accounts = (
        {"platform": "linkedin", "accountId": "li_a"},
        {"platform": "linkedin", "accountId": "li_b"},
    )
    caller = await env.caller([("linkedin", "li_a"), ("linkedin", "li_b")])
    await env.create(caller, text_post(*accounts, text="two marks, one lease gone"))
    kept, lost = await claim_runs(env, engine, "linkedin")
    before = (await env.delivery(str(kept.claimed.id))).lease_expires_at
    await take_over(env, lost.claimed.id)
    opened = count_transactions(env)

    results = await asyncio.gather(
        kept._reserve_publish(), lost._reserve_publish(), return_exceptions=True
    )

    assert results[0] is None and isinstance(results[1], LeaseLost)
    assert opened[0] == 1
    marked = await env.delivery(str(kept.claimed.id))
    assert marked.status == "publishing" and "publish_started" in (marked.checkpoint or {})
    assert marked.lease_expires_at is not None and before is not None
    assert marked.lease_expires_at > before  # a fresh lease for the call
    taken = await env.delivery(str(lost.claimed.id))
    assert (taken.status, taken.lease_owner) == ("processing", "other:1:abc")


async def test_many_changes_of_one_shape_in_a_group_each_keep_their_own_values(
    env: Harness, engine: Engine
) -> None:
    """On PostgreSQL a group's changes of one shape go in one statement, from one array per
    column, and its attempt rows in one INSERT from arrays: each row still gets its own."""
    names = ("li_a", "li_b", "li_c")
    caller = await env.caller([("linkedin", name) for name in names])
    targets = ({"platform": "linkedin", "accountId": name} for name in names)
    await env.create(caller, text_post(*targets, text="three at once"))
    runs = await claim_runs(env, engine, "linkedin")
    assert len(runs) == 3
    leases = {
        run.claimed.id: (await env.delivery(str(run.claimed.id))).lease_expires_at for run in runs
    }
    opened = count_transactions(env)

    assert await asyncio.gather(*(run._reserve_publish() for run in runs)) == [None] * 3
    for run in runs:
        marked = await env.delivery(str(run.claimed.id))
        assert (marked.status, marked.checkpoint) == ("publishing", run.checkpoint)
        lease, before = marked.lease_expires_at, leases[run.claimed.id]
        assert lease is not None and before is not None and lease > before
    finished = await asyncio.gather(
        *(
            run.finish(
                "published",
                status=DeliveryStatus.published,
                platform_post_id=f"p-{run.claimed.id}",
                published_at=utcnow(),
                response={"id": f"p-{run.claimed.id}"},
            )
            for run in runs
        )
    )

    assert finished == ["published"] * 3
    assert opened[0] == 2  # the three marks in one group, the three finishes in another
    for run in runs:
        stored = await env.delivery(str(run.claimed.id))
        assert (stored.status, stored.lease_owner, stored.lease_expires_at) == (
            "published",
            None,
            None,
        )
        assert (stored.platform_post_id, stored.checkpoint) == (
            f"p-{run.claimed.id}",
            run.checkpoint,
        )
        [attempt] = await env.attempts(str(run.claimed.id))
        assert (attempt.outcome, attempt.worker, attempt.response) == (
            "published",
            engine.owner,
            {"id": f"p-{run.claimed.id}"},
        )
        assert attempt.scheduled_for == run.claimed.run_at


async def test_the_heartbeat_renews_before_the_finishes_of_its_group(
    env: Harness, engine: Engine
) -> None:
    _, runs = await one_post_two_accounts(env, engine, "heartbeat and finish together")
    held = [run.claimed.id for run in runs]

    def renew(connection: Connection) -> set[uuid.UUID]:
        return repo.renew_leases(connection, held, engine.owner, engine.lease, utcnow())

    done, kept = await asyncio.gather(published(runs[0]), engine.writes.run(renew, first=True))

    assert done == "published"
    assert kept == set(held)  # the finished one was not taken for a lost lease


# --- several groups in flight (PostgreSQL's default; forced here on both databases) ---------


async def in_two_groups(
    env: Harness, first: Awaitable[T], second: Awaitable[T], stall_after: str
) -> list[T]:
    """`second` made once `first`'s group has started: two groups in flight together. On
    PostgreSQL the group that first runs an `UPDATE <stall_after>` stalls there 0.3 s in the
    database, so the other runs its statements before that one commits (SQLite's single
    writer runs one group after the other whatever the order)."""
    stalled: list[str] = []

    def stall(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not stalled and statement.lstrip().startswith(f"UPDATE {stall_after}"):
            stalled.append(statement)
            conn.exec_driver_sql("SELECT pg_sleep(0.3)")

    engine = env.ctx.db.engine.sync_engine
    if not env.ctx.db.is_sqlite:
        event.listen(engine, "after_cursor_execute", stall)
    try:
        started = asyncio.ensure_future(first)
        await asyncio.sleep(0)
        return list(await asyncio.gather(started, second))
    finally:
        if not env.ctx.db.is_sqlite:
            event.remove(engine, "after_cursor_execute", stall)
            assert stalled, "the first group did not stall"


async def test_groups_in_flight_together_each_see_the_others_finishes(
    env: Harness, engine: Engine
) -> None:
    post_id, runs = await one_post_two_accounts(env, engine, "two groups, one post")
    engine.writes.parallel, engine.writes.side_group = 2, 1  # a group per write
    opened = count_transactions(env)

    results = await in_two_groups(env, published(runs[0]), published(runs[1]), "posts")

    assert results == ["published", "published"]
    assert opened[0] == 2  # one group each, in flight together
    # each group locks the post before reading its deliveries: the later one waited for the
    # other's commit and saw its finish
    assert await env.stored_status(post_id) == "published"


@pytest.mark.usefixtures("x_cap_of_one")
async def test_publishing_marks_in_groups_in_flight_together_count_against_the_cap(
    env: Harness, engine: Engine
) -> None:
    runs = await two_posts_of_one_account(env, engine, "same account, two groups")
    engine.writes.parallel, engine.writes.side_group = 2, 1  # a group per write
    opened = count_transactions(env)

    first, second = (run._reserve_publish() for run in runs)
    results = await in_two_groups(env, first, second, "deliveries")

    assert opened[0] == 2
    assert sorted(result is None for result in results) == [False, True]  # one marked, one over
    statuses = sorted([(await env.delivery(str(run.claimed.id))).status for run in runs])
    assert statuses == ["processing", "publishing"]


async def test_a_lease_renewal_waits_for_the_groups_in_flight_and_runs_alone(
    env: Harness, engine: Engine
) -> None:
    _, runs = await one_post_two_accounts(env, engine, "renewal between two finishes")
    engine.writes.parallel, engine.writes.side_group = 4, 1
    opened = count_transactions(env)
    order: list[str] = []

    def renew(connection: Connection) -> set[uuid.UUID]:
        order.append("renew")
        held = [runs[1].claimed.id]
        return repo.renew_leases(connection, held, engine.owner, engine.lease, utcnow())

    def noted(name: str, write: Callable[[Connection], T]) -> Callable[[Connection], T]:
        def apply(connection: Connection) -> T:
            order.append(name)
            return write(connection)

        return apply

    def slow(connection: Connection) -> None:  # PostgreSQL: in flight 0.3 s, loop free
        if not env.ctx.db.is_sqlite:
            connection.execute(text("SELECT pg_sleep(0.3)"))

    first = asyncio.ensure_future(engine.writes.run(noted("first", slow)))
    first.add_done_callback(lambda _: order.append("first committed"))
    await asyncio.sleep(0)  # its group is in flight
    renewal = asyncio.ensure_future(engine.writes.run(renew, first=True))
    after = asyncio.ensure_future(engine.writes.run(noted("after", lambda c: None)))
    kept = await renewal
    await asyncio.gather(first, after)

    assert kept == {runs[1].claimed.id}
    assert opened[0] == 2  # the first group, then the renewal's with the write made after it
    assert order == ["first", "first committed", "renew", "after"]


async def _beside_a_slow_group(env: Harness, engine: Engine, writes: int) -> list[str]:
    """A write whose group is in flight (0.3 s in the database on PostgreSQL), then `writes`
    more queued one by one; the order in which they ran and the first one committed."""
    engine.writes.parallel = 4
    order: list[str] = []

    def slow(connection: Connection) -> None:
        order.append("first")
        if not env.ctx.db.is_sqlite:
            connection.execute(text("SELECT pg_sleep(0.3)"))

    def noted(name: str) -> Callable[[Connection], None]:
        return lambda connection: order.append(name)

    first = asyncio.ensure_future(engine.writes.run(slow))
    first.add_done_callback(lambda _: order.append("first committed"))
    await asyncio.sleep(0)  # its group is in flight
    await asyncio.gather(first, *(engine.writes.run(noted(f"w{i}")) for i in range(writes)))
    return order


async def test_a_few_writes_wait_for_the_group_in_flight_and_go_in_one_group(
    env: Harness, engine: Engine
) -> None:
    opened = count_transactions(env)
    order = await _beside_a_slow_group(env, engine, SIDE_GROUP - 1)
    assert opened[0] == 2
    assert order[:2] == ["first", "first committed"]
    assert order[2:] == [f"w{i}" for i in range(SIDE_GROUP - 1)]


async def test_enough_writes_waiting_start_a_group_beside_the_one_in_flight(
    env: Harness, engine: Engine
) -> None:
    opened = count_transactions(env)
    order = await _beside_a_slow_group(env, engine, SIDE_GROUP)
    assert opened[0] == 2
    assert sorted(order) == sorted(
        ["first", "first committed", *(f"w{i}" for i in range(SIDE_GROUP))]
    )
    if not env.ctx.db.is_sqlite:  # SQLite's one writer runs the groups one after the other
        assert order.index("w0") < order.index("first committed")
