"""The public web pages of the Facebook fake: what a post's or a video's URL opens."""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from soku.sandbox.facebook_state import FakeState, Post


def page_html(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<article>{body}</article>"
    )


def missing_page() -> HTMLResponse:
    return HTMLResponse("<!doctype html><h1>This content isn't available</h1>", 404)


def web_routes(app: FastAPI, state: FakeState) -> None:
    """The public pages a post's or a video's URL opens on www.facebook.com."""

    def show_post(post: Post | None) -> HTMLResponse:
        if post is None:
            return missing_page()
        name = state.page_names.get(post.page_id, post.page_id)
        media = "".join(f"<li>photo {p}</li>" for p in post.photo_ids)
        media += f"<li>video {post.video_id}</li>" if post.video_id else ""
        body = f"<p>{html.escape(name)}</p><p class=text>{html.escape(post.message)}</p>"
        return page_html(f"{name} | Facebook", body + f"<ul>{media}</ul>")

    def show_video(video_id: str) -> HTMLResponse:
        video = state.videos.get(video_id)
        return show_post(state.find_post(video.post_id) if video and video.post_id else None)

    @app.get("/reel/{video_id}", response_class=HTMLResponse)
    async def reel(video_id: str) -> HTMLResponse:
        return show_video(video_id)

    @app.get("/{page_id}/videos/{video_id}", response_class=HTMLResponse)
    @app.get("/{page_id}/videos/{video_id}/", response_class=HTMLResponse)
    async def video(page_id: str, video_id: str) -> HTMLResponse:
        return show_video(video_id)

    @app.get("/{page_id}/posts/{local_id}", response_class=HTMLResponse)
    async def post(page_id: str, local_id: str) -> HTMLResponse:
        return show_post(state.find_post(f"{page_id}_{local_id}"))

    @app.get("/{object_id}", response_class=HTMLResponse)
    async def by_id(object_id: str) -> HTMLResponse:
        """`https://www.facebook.com/{post-id}` (or a video id) opens the post too."""
        if object_id in state.videos:
            return show_video(object_id)
        return show_post(state.find_post(object_id))
