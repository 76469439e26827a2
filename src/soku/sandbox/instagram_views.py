"""How the Instagram fake shows what it holds: containers, media (as the Graph API and
`/_inspect/posts` show them) and the public pages a permalink opens (`/p/{code}/`, `/reel/{code}/`,
a profile `/{username}/`)."""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from soku.sandbox.graph_state import Container, Post
from soku.sandbox.graph_views import media_item, media_list, post_media
from soku.sandbox.graph_views import post_view as graph_post_view
from soku.sandbox.instagram_state import LISTED_TYPES, PRODUCT_TYPES, FakeState


def permalink(state: FakeState, post: Post, base: str) -> str:
    """A reel's is `/reel/{shortcode}/`, any other post's `/p/{shortcode}/`."""
    reel = state.containers[post.container_id].media_type == "REELS"
    return f"{base}/{'reel' if reel else 'p'}/{post.shortcode}/"


def container_view(container: Container, fields: set[str]) -> dict[str, Any]:
    view: dict[str, Any] = {"id": container.id}
    if "status_code" in fields:
        view["status_code"] = container.status
    if "status" in fields:
        view["status"] = container.reason or container.status.title()
    return view


def post_view(state: FakeState, post: Post, fields: set[str], base: str) -> dict[str, Any]:
    """A published media as `GET /{media-id}` and the account's listing show it."""
    kind = state.containers[post.container_id].media_type
    kinds = {
        "media_type": LISTED_TYPES[kind],
        "media_product_type": PRODUCT_TYPES.get(kind, "FEED"),
    }
    return graph_post_view(state, post, fields, kinds, permalink(state, post, base), "caption")


def inspected(state: FakeState, post: Post, base: str) -> dict[str, Any]:
    """A post as `/_inspect/posts` shows it: what was sent, and where it can be seen."""
    container, user = state.containers[post.container_id], state.users[post.user_id]
    items = post_media(state.containers, container)
    return {
        "id": post.id,
        "user": {"id": user.id, "username": user.username},
        "container_id": container.id,
        "media_type": container.media_type,
        "caption": container.text,
        "text": container.text,
        "media": [media_item(item) for item in items if item.url],
        "created_at": post.created_at.isoformat(timespec="seconds"),
        "url": permalink(state, post, base),
    }


def web_routes(app: FastAPI, state: FakeState) -> None:
    """A post's page (`/p/…/` or `/reel/…/`) and a profile (`/{username}/`)."""

    async def page(code: str) -> HTMLResponse:
        post = state.by_shortcode(code)
        if post is None:
            return HTMLResponse("<!doctype html><h1>Sorry, this page isn't available.</h1>", 404)
        container, user = state.containers[post.container_id], state.users[post.user_id]
        items = media_list(post_media(state.containers, container))
        name = html.escape(user.username)
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>{name} on Instagram</title>"
            f"<article><p>{name}</p><p class=caption>{html.escape(container.text)}</p>"
            f"<ul>{items}</ul><time>{post.created_at.isoformat()}</time></article>"
        )

    app.add_api_route("/p/{code}/", page, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/reel/{code}/", page, methods=["GET"], response_class=HTMLResponse)

    @app.get("/{username}/", response_class=HTMLResponse)
    async def profile(username: str) -> HTMLResponse:
        owners = {user.id for user in state.users.values() if user.username == username}
        items = "".join(
            f"<li><a href='../p/{post.shortcode}/'>"
            f"{html.escape(state.containers[post.container_id].text)}</a></li>"
            for post in reversed(state.posts)
            if post.user_id in owners
        )
        name = html.escape(username)
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>@{name} on Instagram</title>"
            f"<h1>@{name}</h1><ul>{items}</ul>"
        )
