"""Publishing caps: which of a group's publishing marks would exceed one, in a few queries.

A cap allows `count` posts per account in any `window_seconds`. What counts against it: the
account's deliveries published inside the window or being published now. The caller holds
what keeps the counts true until it commits: the accounts' row locks on PostgreSQL (every
publishing mark takes its account's lock first), the single writer on SQLite.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)

from soku.db import UTCDateTime, ids_in, is_postgres
from soku.delivery.repository import DELIVERIES, PUBLISHING_NOW
from soku.platforms.base import PublishCap

# Over a cap whose counted posts are all still being published: look again this much later.
CAP_RECHECK_SECONDS = 30

# (delivery, its account, the caps of its platform)
Mark = tuple[uuid.UUID, uuid.UUID, tuple[PublishCap, ...]]
# the index of the cap that is used up, and when it frees
Full = tuple[int, dt.datetime]

_D = DELIVERIES.c


def _recent(postgres: bool) -> Select[Any]:
    """Per account: the posts counted against a cap of the window from `since`, the oldest
    published one. Two parts that each read only what they count: those published inside
    the window (a range of `ix_deliveries_account_published`, however many posts the account
    made before), and those being published now (the few rows of the partial index
    `ix_deliveries_account_publishing`, matched by `PUBLISHING_NOW`'s literal status), which
    have no `published_at` yet, so no post is in both. The deliveries being marked are left out of
    the second part; they cannot be in the first (a published delivery is never marked
    again)."""
    accounts = ids_in(_D.account_ref, "accounts", postgres)
    since = bindparam("since", type_=UTCDateTime())
    published = (
        select(
            _D.account_ref.label("account"),
            func.count().label("n"),
            func.min(_D.published_at).label("oldest"),
        )
        .where(accounts, _D.published_at >= since)
        .group_by(_D.account_ref)
    )
    publishing = select(
        _D.account_ref, literal_column("1"), type_coerce(null(), UTCDateTime())
    ).where(
        accounts,
        PUBLISHING_NOW,
        ~ids_in(_D.id, "marking", postgres),
    )
    both = union_all(published, publishing).subquery()
    return select(both.c.account, func.sum(both.c.n), func.min(both.c.oldest)).group_by(
        both.c.account
    )


_RECENT = {pg: _recent(pg) for pg in (False, True)}


def recent_query(
    connection: Connection,
    accounts: Collection[uuid.UUID],
    marking: Collection[uuid.UUID],
    since: dt.datetime,
) -> Select[Any]:
    """Per account, its posts counted against a cap of the window from `since` and the
    oldest published one; the deliveries `marking` left out. (Its values bound: to look at
    its plan.)"""
    return _RECENT[is_postgres(connection)].params(_values(accounts, marking, since))


def _values(
    accounts: Collection[uuid.UUID], marking: Collection[uuid.UUID], since: dt.datetime
) -> dict[str, Any]:
    return {"accounts": sorted(accounts), "marking": sorted(marking), "since": since}


def over_caps(
    connection: Connection, marks: Sequence[Mark], now: dt.datetime
) -> dict[uuid.UUID, Full]:
    """The marks (in their order) that would exceed a cap, each with the cap and when it frees.

    One query per distinct window counts every account's other posts (the marks' own
    deliveries left out); then each mark that passes counts against the marks after it, as
    if they had been made one after the other.
    """
    marking = {delivery for delivery, _, caps in marks if caps}
    windows: dict[int, set[uuid.UUID]] = {}
    for _, account, caps in marks:
        for cap in caps:
            windows.setdefault(cap.window_seconds, set()).add(account)
    used: dict[tuple[int, uuid.UUID], int] = {}
    oldest: dict[tuple[int, uuid.UUID], dt.datetime] = {}
    statement = _RECENT[is_postgres(connection)]
    for window, accounts in windows.items():
        since = now - dt.timedelta(seconds=window)
        for account, count, first in connection.execute(
            statement, _values(accounts, marking, since)
        ):
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
