"""Deliveries claimed and run step by step, for the tests of what a group commit writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, update

from soku.db import utcnow
from soku.delivery.claims import Claimed, Target, claim_due, load_targets
from soku.delivery.engine import Engine
from soku.delivery.models import Delivery, DeliveryStatus
from soku.delivery.runner import DeliveryRun
from tests.delivery.harness import Harness

T = TypeVar("T")


def count_transactions(env: Harness) -> list[int]:
    """Counts the write transactions (`Database.run_write`) on the harness database from now."""
    opened = [0]
    run_write = env.ctx.db.run_write

    async def counted(work: Callable[[Connection], T]) -> T:
        opened[0] += 1
        return await run_write(work)

    env.ctx.db.run_write = counted  # type: ignore[method-assign]
    return opened


async def claim_runs(env: Harness, engine: Engine, platform: str) -> list[DeliveryRun]:
    """The platform's due deliveries, claimed by `engine` as its worker would."""

    def claim(connection: Connection) -> tuple[list[Claimed], dict[uuid.UUID, Target]]:
        claimed = claim_due(connection, platform, engine.owner, engine.lease, 10, utcnow())
        return claimed, load_targets(connection, [c.id for c in claimed])

    claimed, targets = await env.ctx.db.run_write(claim)
    return [DeliveryRun(engine, c, targets[c.id]) for c in claimed]


async def take_over(env: Harness, delivery_id: uuid.UUID) -> None:
    """Another worker takes the lease (this one's has expired)."""
    async with env.ctx.db.transaction() as session:
        await session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(lease_owner="other:1:abc")
        )


async def published(run: DeliveryRun) -> str:
    return await run.finish(
        "published",
        status=DeliveryStatus.published,
        platform_post_id=f"p-{run.claimed.id}",
        url=None,
        published_at=utcnow(),
        error=None,
    )
