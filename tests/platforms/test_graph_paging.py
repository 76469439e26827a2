"""Where a Graph listing's next answer starts, whatever shape its `paging` has."""

from __future__ import annotations

from typing import Any

import pytest

from soku.platforms.graph_paging import next_cursor

NEXT = "https://graph.example/v25.0/me/accounts?limit=100&after=QVFI"


@pytest.mark.parametrize(
    ("listing", "cursor"),
    [
        ({"data": [], "paging": {"cursors": {"after": "QVFH"}, "next": NEXT}}, "QVFH"),
        ({"paging": {"next": NEXT}}, "QVFI"),  # no cursors: the `after` of `next`
        ({"paging": {"cursors": {"after": "QVFH"}}}, None),  # no `next`: the last answer
        ({"paging": {"cursors": {"after": "QVFH"}, "next": ""}}, None),
        ({"paging": "next"}, None),
        ({"paging": {"cursors": [], "next": "https://graph.example/no-cursor"}}, None),
        ({"paging": {"cursors": {"after": 7}, "next": 7}}, None),
        ({"paging": {"cursors": {"after": "A" * 2001}, "next": NEXT}}, None),
        ({}, None),
    ],
)
def test_next_cursor(listing: dict[str, Any], cursor: str | None) -> None:
    assert next_cursor(listing) == cursor
