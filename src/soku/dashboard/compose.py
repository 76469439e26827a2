"""A new post: the compose form becomes the body `POST /v1/posts` takes and goes through the
same service, admission (subscription, rate limit) and idempotency. The form carries its own
idempotency key, so sending it twice creates one post."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from soku.auth.dependencies import Principal, admit_key
from soku.context import get_context
from soku.dashboard import forms
from soku.dashboard.forms import Checked, SignedIn
from soku.dashboard.pages import render
from soku.dashboard.session import Viewer
from soku.errors import ApiError, IdempotencyConflict, ValidationFailed
from soku.integrations import repository as accounts_repo
from soku.integrations.models import AccountStatus
from soku.posts import service
from soku.posts.schemas import CreatePostRequest

router = APIRouter(prefix="/dashboard/posts", include_in_schema=False, route_class=forms.PageRoute)
MEDIA_TYPES = ("image", "video", "text")


@dataclass(frozen=True)
class Compose:
    """The form as typed; `key` is its idempotency key, made when the form was shown."""

    text: str = ""
    targets: list[str] = field(default_factory=list)  # "platform:accountId"
    media_urls: str = ""  # one URL a line
    media_type: str = ""  # "" lets the service infer it
    at: str = ""  # datetime-local
    offset: str = "Z"
    key: str = ""

    @classmethod
    def of(cls, form: FormData) -> Compose:
        text, urls, kind, at, offset, key = (
            forms.field(form, name)
            for name in ("text", "media_urls", "media_type", "at", "offset", "key")
        )
        return cls(text, forms.fields(form, "target"), urls, kind, at, offset, key)

    def body(self) -> dict[str, Any]:
        """The JSON body of `POST /v1/posts` this form stands for."""
        content: dict[str, Any] = {"platform": [_target(t) for t in self.targets]}
        if self.text.strip():
            content["text"] = self.text.replace("\r\n", "\n")
        urls = [line.strip() for line in self.media_urls.splitlines() if line.strip()]
        if urls:
            content["mediaUrls"] = urls
        if self.media_type in MEDIA_TYPES:
            content["mediaType"] = self.media_type
        body: dict[str, Any] = {"post": {"content": content}}
        when = forms.scheduled_value(self.at, self.offset)
        if when is not None:
            body["scheduledTime"] = when
        return body


def _target(value: str) -> dict[str, str]:
    platform, _, account_id = value.partition(":")
    return {"platform": platform, "accountId": account_id}


def slot_of(problem: Mapping[str, Any]) -> str:
    """The part of the form a problem of the API's is about."""
    name = str(problem.get("field") or "")
    if name == "post.content.text":
        return "text"
    if name.startswith("post.content.platform") or "missingPlatforms" in problem:
        return "targets"
    if name == "scheduledTime":
        return "schedule"
    if name.startswith("post.content"):  # the media, or content a platform needs (media)
        return "media"
    return "targets" if "availableAccountIds" in problem else "general"


@router.get("/new")
async def new_post(request: Request, viewer: SignedIn) -> Response:
    return await _form(request, viewer, Compose(key=secrets.token_urlsafe(18)))


@router.post("/new")
async def create_post(request: Request, checked: Checked) -> Response:
    viewer, typed = checked[0], Compose.of(checked[1])
    ctx, raw = get_context(request), typed.body()
    known = Principal(viewer.user_id, viewer.email, viewer.key_id, viewer.plan)
    try:
        await admit_key(request, ctx, known, viewer.subscription, "posts:create")
        body = _parsed(raw)
        stored = await service.create_post(ctx, viewer.user_id, body, raw, typed.key or None)
    except IdempotencyConflict:
        again = replace(typed, key=secrets.token_urlsafe(18))
        message = "This form was already sent with other content; send it again for a new post."
        return await _form(request, viewer, again, 409, {"general": [message]}, message)
    except ApiError as exc:
        slots = forms.problems_by_slot(exc, slot_of)
        return await _form(request, viewer, typed, exc.status, slots, exc.message)
    post_id = json.loads(stored.body)["postSubmissionId"]
    return RedirectResponse(f"/dashboard/posts/{post_id}?done=created", status_code=303)


def _parsed(raw: dict[str, Any]) -> CreatePostRequest:
    try:
        return CreatePostRequest.model_validate(raw)
    except ValidationError:  # the form builds the body's shape: only odd text gets here
        message = "The form's fields could not be read as a post."
        raise ValidationFailed.from_problems(
            [{"field": "post", "reason": "invalid", "message": message}]
        ) from None


async def _form(
    request: Request,
    viewer: Viewer,
    typed: Compose,
    status: int = 200,
    slots: dict[str, list[str]] | None = None,
    problem: str | None = None,
) -> Response:
    async with get_context(request).db.read() as session:
        accounts = await accounts_repo.accounts_of(session, viewer.user_id)
    usable = [a for a in accounts if a.status != AccountStatus.disconnected]
    return render(
        request,
        viewer,
        "compose.html",
        status=status,
        form=typed,
        accounts=usable,
        slots=slots or {},
        problem=problem,
        media_types=MEDIA_TYPES,
    )
