"""How the Graph container fakes (Threads, Instagram) show a post's media: in `/_inspect`
and on the page its permalink opens."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from soku.sandbox.common import Fetched


class MediaContainer(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def children(self) -> list[str]: ...
    @property
    def fetched(self) -> Fetched | None: ...


C = TypeVar("C", bound=MediaContainer)


def post_media(containers: Mapping[str, C], container: C) -> list[C]:
    """A carousel's items, or the container itself."""
    return [containers[child] for child in container.children] or [container]


def media_item(container: MediaContainer) -> dict[str, Any]:
    """One medium as `/_inspect/posts` shows it."""
    fetched = container.fetched
    return {
        "container_id": container.id,
        "kind": container.media_type,
        "url": container.url,
        "content_type": fetched.content_type if fetched else None,
        "sha256": fetched.sha256 if fetched else None,
    }


def media_list(media: Sequence[MediaContainer]) -> str:
    """A post page's list of its media (those with a URL), as HTML items."""
    return "".join(
        f"<li>{m.media_type} <a href='{html.escape(m.url)}'>{html.escape(m.url)}</a></li>"
        for m in media
        if m.url
    )
