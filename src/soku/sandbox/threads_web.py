"""The public web pages of the Threads fake: a profile and a post's permalink."""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from soku.sandbox.graph_views import media_list, post_media
from soku.sandbox.threads_state import FakeState


def web_routes(app: FastAPI, state: FakeState) -> None:
    """`/@{username}`: a profile; `/@{username}/post/{shortcode}`: a post's permalink."""

    @app.get("/@{username}", response_class=HTMLResponse)
    async def profile(username: str) -> HTMLResponse:
        """A profile: the user's threads, or none yet for a name the fake does not know."""
        users = [user.id for user in state.users.values() if user.username == username]
        items = "".join(
            f"<li><a href='/@{username}/post/{post.shortcode}'>"
            f"{html.escape(state.containers[post.container_id].text)}</a></li>"
            for post in reversed(state.posts)
            if post.user_id in users
        )
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>@{html.escape(username)} on Threads"
            f"</title><h1>@{html.escape(username)}</h1><ul>{items}</ul>"
        )

    @app.get("/@{username}/post/{code}", response_class=HTMLResponse)
    async def page(username: str, code: str) -> HTMLResponse:
        post = state.by_shortcode(code)
        if post is None:
            return HTMLResponse("<!doctype html><h1>Sorry, this page isn't available</h1>", 404)
        container, user = state.containers[post.container_id], state.users[post.user_id]
        items = media_list(post_media(state.containers, container))
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>@{user.username} on Threads</title>"
            f"<article><p>@{user.username}</p><p class=text>{html.escape(container.text)}</p>"
            f"<ul>{items}</ul><time>{post.created_at.isoformat()}</time></article>"
        )
