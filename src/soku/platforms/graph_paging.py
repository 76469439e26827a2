"""Graph API cursor paging (Facebook, Threads): where a listing's next answer starts.

A listing answers `{"data": [...], "paging": {"cursors": {"before", "after"}, "next": <url>}}`,
with `next` only when more follows. The next answer is asked for by making the same call
again with `after=<cursor>`, at the base URL the caller is configured with: the `next` URL
itself is never followed, since it names a host of the answer's choosing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_CURSOR = 2000  # characters; Graph's cursors are short base64 strings


def next_cursor(listing: Mapping[str, Any]) -> str | None:
    """The `after` cursor of the listing's next answer; None when this answer is the last.

    The cursor is `paging.cursors.after`, else the `after` parameter of `paging.next`.
    """
    paging = listing.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    if not isinstance(after, str) or not after:
        after = _after_in(paging["next"])
    return after if after and len(after) <= MAX_CURSOR else None


def _after_in(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    found = parse_qs(urlsplit(url).query).get("after")
    return found[0] if found else None
