"""`Prefer: wait=N`: hold the answer of an immediate post until its deliveries finish."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

from fastapi import Response

from soku.context import AppContext
from soku.delivery.models import TERMINAL
from soku.errors import DispatchFailed
from soku.posts import service
from soku.posts.idempotency import StoredResponse

MAX_WAIT_SECONDS = 30
POLL_SECONDS = 0.1
_WAIT = re.compile(r'(?:^|[,;\s])wait\s*=\s*("?)(\d+)\1', re.IGNORECASE)
_FINISHED = {s.value for s in TERMINAL}


def wait_seconds(prefer: str | None) -> int:
    """The `wait` preference (RFC 7240: a token or a quoted string), capped at 30; 0 when
    absent or unreadable."""
    if not prefer:
        return 0
    match = _WAIT.search(prefer)
    return min(int(match.group(2)), MAX_WAIT_SECONDS) if match else 0


async def wait_for_outcome(
    ctx: AppContext, user_id: uuid.UUID, stored: StoredResponse, wait: int
) -> Response:
    post_id = uuid.UUID(json.loads(stored.body)["postSubmissionId"])
    deadline = time.monotonic() + wait
    while True:
        view = await ctx.db.run_read(lambda c: service.read_post(c, user_id, post_id))
        done = all(d.status in _FINISHED for d in view.deliveries)
        if done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    body = view.model_dump(mode="json")
    failed = [d for d in body["deliveries"] if d["status"] in ("failed", "unknown")]
    if done and failed:
        names = ", ".join(f"{d['platform']} ({d['accountId']})" for d in failed)
        raise DispatchFailed(
            f"The post was created but delivery failed on: {names}.",
            {
                "postSubmissionId": str(post_id),
                "status": body["status"],
                "deliveries": body["deliveries"],
            },
            headers={"Preference-Applied": f"wait={wait}"},  # it was waited on, as a 201 is
        )
    content = {
        "postSubmissionId": str(post_id),
        "status": body["status"],
        "deliveries": body["deliveries"],
    }
    return Response(
        json.dumps(content),
        status_code=201,
        media_type="application/json",
        headers={"Preference-Applied": f"wait={wait}"},
    )
