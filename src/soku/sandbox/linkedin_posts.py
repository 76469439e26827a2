"""The LinkedIn fake's posts: `POST /rest/posts`, the author finder, and the permalink page."""

from __future__ import annotations

import asyncio
import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from soku.sandbox.linkedin_bodies import NewPost, json_body, parse
from soku.sandbox.linkedin_faults import api_error, fault_error
from soku.sandbox.linkedin_gate import LinkedInFake
from soku.sandbox.linkedin_state import Post, read_little_text


def post_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/rest/posts")
    async def create(request: Request) -> Response:
        member, fault = await fake.gate(request, "publish")
        body = parse(NewPost, await json_body(request))
        content = body.content
        urns = [content.media.id] if content and content.media else []
        urns += [i.id for i in content.multiImage.images] if content and content.multiImage else []
        if not body.commentary and not urns:
            raise api_error(422, "A post needs commentary or content")
        post = state.add_post(member, body.model_dump(exclude_none=True), body.commentary, urns)
        if fault is not None and fault.accept_then_delay is not None:
            await asyncio.sleep(fault.accept_then_delay)
            error = fault.error("publish")
            if error is not None:
                raise error
        return Response(status_code=201, headers={"x-restli-id": post.urn})

    @app.get("/rest/posts")
    async def by_author(request: Request) -> JSONResponse:
        member, _ = await fake.gate(request, "list")
        query = request.query_params
        author, count, start = (
            query.get("author", ""),
            query.get("count", "10"),
            query.get("start", "0"),
        )
        if query.get("q") != "author" or not author:
            raise api_error(400, "Send q=author and an author URN", code="ILLEGAL_ARGUMENT")
        if not (count.isdigit() and 0 < int(count) <= 100 and start.isdigit()):
            raise api_error(400, "count must be 1-100 and start 0 or more", code="ILLEGAL_ARGUMENT")
        member = state.may_act_as(member, author)
        if author == member.urn and not state.config.finder_allowed:
            raise fault_error("no_permission")
        posts = state.by_author(author)
        page = posts[int(start) : int(start) + int(count)]
        paging = {"start": int(start), "count": int(count), "links": [], "total": len(posts)}
        return JSONResponse({"paging": paging, "elements": [_post_view(p) for p in page]})


def _post_view(post: Post) -> dict[str, Any]:
    view = {"id": post.urn, **post.body, "createdAt": post.created_ms}
    view.update(publishedAt=post.created_ms, lastModifiedAt=post.created_ms)
    return view


def page_route(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.get("/feed/update/{urn}", response_class=HTMLResponse)
    @app.get("/feed/update/{urn}/", response_class=HTMLResponse)
    async def page(urn: str) -> HTMLResponse:
        post = state.find_post(urn)
        if post is None or not post.visible:
            return HTMLResponse("<!doctype html><h1>This post cannot be displayed</h1>", 404)
        text = read_little_text(post.commentary, state.config.truncate_unescaped)
        items = "".join(f"<li>{state.media[u].kind} {html.escape(u)}</li>" for u in post.media_urns)
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>{html.escape(post.author)} on LinkedIn"
            f"</title><article><p>{html.escape(post.author)}</p>"
            f"<p class=text>{html.escape(text)}</p><ul>{items}</ul></article>"
        )
