"""The Snapchat fake's Public Profile API routes (snapchat.md, "Auth" and "Publish flow").

- `GET /v1/public_profiles/my_profile` → `public_profile` (id, display_name,
  snap_user_name, organization_id, logo_urls);
- `POST /v1/public_profiles/{profile}/media` (JSON `type`, `name`, `key`, `iv`) → `media_id`,
  `add_path`, `finalize_path` (paths under this fake's root, as Snapchat's are under its
  host);
- `POST {add_path}` multipart `action=ADD`, `part_number`, `file`; `POST {finalize_path}`
  multipart `action=FINALIZE`, when the file is decrypted and checked (`snapchat_checks`);
- `POST /v1/public_profiles/{profile}/stories` (`media_id`) → `story_id`;
  `POST /v1/public_profiles/{profile}/spotlights` (`media_id`, `description` ≤ 160,
  `locale` required, video only) → `spotlight_id`. Right after FINALIZE the first
  `processing_answers` of them answer MEDIA_PROCESSING.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from soku.sandbox.snapchat_checks import check_part, finalized, invalid, key_bytes
from soku.sandbox.snapchat_faults import CallKind, api_error, request_id
from soku.sandbox.snapchat_gate import SnapchatFake
from soku.sandbox.snapchat_state import FakeState, Media, Profile

PROFILES = "/v1/public_profiles"
MAX_DESCRIPTION, MAX_NAME = 160, 200  # (U) the name's limit is not documented


def success(**fields: Any) -> JSONResponse:
    return JSONResponse({"request_status": "SUCCESS", "request_id": request_id(), **fields})


def media_routes(app: FastAPI, fake: SnapchatFake) -> None:
    state = fake.state

    @app.get(f"{PROFILES}/my_profile")
    async def my_profile(request: Request) -> JSONResponse:
        profile, _ = await fake.gate(request, "profile")
        return success(public_profile=profile.view())

    @app.post(PROFILES + "/{profile_id}/media")
    async def create(profile_id: str, request: Request) -> JSONResponse:
        token_profile, _ = await fake.gate(request, "create")
        profile = state.acting(token_profile, profile_id)
        body = await _body(request)
        kind, name = body.get("type"), body.get("name")
        if kind not in ("IMAGE", "VIDEO"):
            raise invalid("type must be IMAGE or VIDEO")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise invalid(f"name is required (at most {MAX_NAME} characters)")
        key, iv = key_bytes(body.get("key"), 32, "key"), key_bytes(body.get("iv"), 16, "iv")
        media = state.new_media(profile, kind, name, key, iv)
        base = f"{PROFILES}/{profile.id}/media/{media.id}"
        return success(media_id=media.id, add_path=f"{base}/multipart-upload?action=ADD",
                       finalize_path=f"{base}/multipart-upload?action=FINALIZE")  # fmt: skip

    @app.post(PROFILES + "/{profile_id}/media/{media_id}/multipart-upload")
    async def upload(profile_id: str, media_id: str, request: Request) -> JSONResponse:
        return await _multipart(fake, request, profile_id, media_id)

    @app.post(PROFILES + "/{profile_id}/stories")
    async def story(profile_id: str, request: Request) -> JSONResponse:
        return await _post(fake, request, profile_id, "story")

    @app.post(PROFILES + "/{profile_id}/spotlights")
    async def spotlight(profile_id: str, request: Request) -> JSONResponse:
        return await _post(fake, request, profile_id, "spotlight")


async def _multipart(
    fake: SnapchatFake, request: Request, profile_id: str, media_id: str
) -> JSONResponse:
    """A part added (`action=ADD`), or the upload finalized (`action=FINALIZE`)."""
    state, form = fake.state, await request.form()
    action = str(form.get("action") or request.query_params.get("action") or "")
    kind: CallKind = "add" if action == "ADD" else "finalize"
    profile, _ = await fake.gate(request, kind)
    media = state.owned(state.acting(profile, profile_id), media_id)
    if action == "FINALIZE":
        return success(media_id=media.id, **_finalize(state, media))
    if action != "ADD":
        raise invalid("action must be ADD or FINALIZE")
    file, number = form.get("file"), str(form.get("part_number") or "")
    data = await file.read() if isinstance(file, UploadFile) else b""
    if not number.isdigit():
        raise invalid("part_number is required")
    check_part(state.config, media, int(number), data)
    media.parts[int(number)] = data
    media.adds.append(int(number))
    return success(media_id=media.id, part_number=int(number))


def _finalize(state: FakeState, media: Media) -> dict[str, Any]:
    """Decrypts and checks the file once; a FINALIZE repeated after it answers alike (U)."""
    if media.status == "PENDING_UPLOAD":
        media.found = finalized(state.config, media)
        media.parts.clear()
        media.status, media.finalized_at = "READY", time.time()
        media.processing_left = state.config.processing_answers
    return {"status": media.status}


async def _post(fake: SnapchatFake, request: Request, profile_id: str, kind: str) -> JSONResponse:
    state = fake.state
    token_profile, fault = await fake.gate(request, "publish")
    profile = state.acting(token_profile, profile_id)
    body = await _body(request)
    media = _postable(state, profile, body)
    if kind == "spotlight":
        _check_spotlight(media, body)
    post = state.add_post(profile, "spotlight" if kind == "spotlight" else "story", media, body)
    if fault is not None and fault.accept_then_delay:
        await asyncio.sleep(fault.accept_then_delay)  # made, then the answer is late
    if not state.config.story_id_in_answer:
        return success()
    return success(**{f"{kind}_id": post.id})


def _postable(state: FakeState, profile: Profile, body: dict[str, Any]) -> Media:
    media_id = body.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise invalid("media_id is required")
    media = state.owned(profile, media_id)
    if media.status != "READY":
        raise invalid("The media is not finalized", "MEDIA_NOT_READY")
    if media.processing_left > 0:
        media.processing_left -= 1
        raise api_error(400, "MEDIA_PROCESSING", "The media is still processing")
    if media.posted and state.config.one_post_per_media:
        message = "A post of this media is already in progress"
        raise api_error(400, "MEDIA_POSTING_ALREADY_IN_PROGRESS", message)
    return media


def _check_spotlight(media: Media, body: dict[str, Any]) -> None:
    if media.type != "VIDEO":
        raise invalid("Spotlight takes a video only")
    if not isinstance(body.get("locale"), str) or not body["locale"]:
        raise invalid("locale is required")
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise invalid(f"description must be at most {MAX_DESCRIPTION} characters")


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise invalid("The body must be a JSON object")
    return data
