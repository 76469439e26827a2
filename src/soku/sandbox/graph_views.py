"""How the Graph container fakes (Threads, Instagram) show an account or a post (as `GET
/{id}` and the listing do) and a post's media (in `/_inspect` and on its permalink's page)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from soku.sandbox.common import Fetched
from soku.sandbox.graph_state import GraphState, Post


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


def asked_fields(shown: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """What Graph answers of an object: its id, and the `fields` asked for."""
    return {key: value for key, value in shown.items() if key == "id" or key in fields}


def post_view(
    state: GraphState[Any, Any, Any],
    post: Post,
    fields: set[str],
    kinds: dict[str, str],
    permalink: str,
    text_key: str,
    more: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A published post: `kinds` its media (and product) type, `text_key` the field its text
    is shown as, `more` the platform's fixed fields."""
    container, user = state.containers[post.container_id], state.users[post.user_id]
    shown: dict[str, Any] = {
        "id": post.id,
        **kinds,
        "permalink": permalink,
        "owner": {"id": user.id},
        "username": user.username,
        "timestamp": post.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "shortcode": post.shortcode,
        **(more or {}),
    }
    if container.text:
        shown[text_key] = container.text
    if container.url:
        shown["media_url"] = container.url
    if container.children:
        shown["children"] = {"data": [{"id": child} for child in container.children]}
    return asked_fields(shown, fields)
