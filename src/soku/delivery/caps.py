"""Publishing caps: which of a group's publishing marks would exceed one, in a few queries.

A cap allows `count` posts per account in any `window_seconds`. What counts against it: the
account's deliveries published inside the window or being published now. The caller holds
what keeps the counts true until it commits: the accounts' row locks on PostgreSQL (every
publishing mark takes its account's lock first), the single writer on SQLite.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, func, select

from soku.db import UTCDateTime
from soku.delivery.models import DeliveryStatus
from soku.delivery.repository import DELIVERIES, ids_in
from soku.platforms.base import PublishCap

# Over a cap whose counted posts are all still being published: look again this much later.
CAP_RECHECK_SECONDS = 30

# (delivery, its account, the caps of its platform)
Mark = tuple[uuid.UUID, uuid.UUID, tuple[PublishCap, ...]]
# the index of the cap that is used up, and when it frees
Full = tuple[int, dt.datetime]

_D = DELIVERIES.c
_RECENT = {
    pg: select(_D.account_ref, func.count(), func.min(_D.published_at))
    .where(
        ids_in(_D.account_ref, "accounts", pg),
        ~ids_in(_D.id, "marking", pg),
        (_D.published_at >= bindparam("since", type_=UTCDateTime()))
        | (_D.status == DeliveryStatus.publishing.value),
    )
    .group_by(_D.account_ref)
    for pg in (False, True)
}


def over_caps(
    connection: Connection, marks: Sequence[Mark], now: dt.datetime
) -> dict[uuid.UUID, Full]:
    """The marks (in their order) that would exceed a cap, each with the cap and when it frees.

    One query per distinct window counts every account's other posts (the marks' own
    deliveries left out); then each mark that passes counts against the marks after it, as
    if they had been made one after the other.
    """
    postgres = connection.dialect.name == "postgresql"
    marking = sorted({delivery for delivery, _, caps in marks if caps})
    windows: dict[int, set[uuid.UUID]] = {}
    for _, account, caps in marks:
        for cap in caps:
            windows.setdefault(cap.window_seconds, set()).add(account)
    used: dict[tuple[int, uuid.UUID], int] = {}
    oldest: dict[tuple[int, uuid.UUID], dt.datetime] = {}
    for window, accounts in windows.items():
        since = now - dt.timedelta(seconds=window)
        params = {"accounts": sorted(accounts), "marking": marking, "since": since}
        for account, count, first in connection.execute(_RECENT[postgres], params):
            used[window, account] = count
            if first is not None:
                oldest[window, account] = first
    full: dict[uuid.UUID, Full] = {}
    for delivery, account, caps in marks:
        counts = [used.get((cap.window_seconds, account), 0) for cap in caps]
        over = [n for n, cap in enumerate(caps) if counts[n] >= cap.count]
        if over:
            window = caps[over[0]].window_seconds
            first = oldest.get((window, account))
            frees = first + dt.timedelta(seconds=window) if first else None
            full[delivery] = (over[0], frees or now + dt.timedelta(seconds=CAP_RECHECK_SECONDS))
            continue
        for window in {cap.window_seconds for cap in caps}:
            used[window, account] = used.get((window, account), 0) + 1
    return full
