"""A fake of LinkedIn's versioned REST API at LinkedIn's own paths, for sandbox accounts and tests.

It follows /work/shared/platforms/linkedin.md: `POST /rest/posts` answering 201 with the post
URN in `x-restli-id`; the author finder `GET /rest/posts?q=author`; the Images API
(`initializeUpload`, a PUT of the bytes to the returned uploadUrl, `GET /rest/images/{urn}`);
the Videos API (`initializeUpload` with fileSizeBytes, one PUT per uploadInstruction answered
with an `ETag`, `finalizeUpload` with the ETags in order, `GET /rest/videos/{urn}` going
PROCESSING → AVAILABLE or PROCESSING_FAILED); `GET /v2/userinfo`; the OAuth token endpoint
`POST /oauth/v2/accessToken` (authorization code and refresh grants; refresh tokens do not
rotate and keep their first expiry); LinkedIn's error bodies. Every `/rest/` call needs
`LinkedIn-Version: YYYYMM` (missing: 400; inactive: 426 NONEXISTENT_VERSION, as implementers
report) and `X-Restli-Protocol-Version: 2.0.0` (refused without it: a knob, since LinkedIn
itself falls back to Rest.li 1.0), and URNs in paths URL-encoded.

Any bearer token is accepted: one the fake did not issue names a new sandbox member (register
members and tokens with `POST /_users`). A member posts as themself or as any organization.
Besides LinkedIn's paths: `/_inspect/posts`, `/_faults`, `/_config` and the permalink page
`/feed/update/{urn}/`. Its memory lives in `linkedin_state.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from soku.sandbox.common import control_routes, public_base
from soku.sandbox.linkedin_state import (
    CALL_KINDS,
    MAX_VIDEO_BYTES,
    CallKind,
    FakeState,
    FaultSpec,
    LinkedInError,
    Media,
    Member,
    Post,
    api_error,
    fault_error,
    now_ms,
    oauth_error,
    read_little_text,
)

EXPIRES_MS = 30 * 86400 * 1000  # upload URLs expire about 30 days after init (linkedin.md)
_AUTHOR = r"^urn:li:(person|organization):[A-Za-z0-9_-]+$"
_MEDIA = r"^urn:li:(image|video):[A-Za-z0-9_-]+$"
Urn = Annotated[str, Field(pattern=_MEDIA)]
T = TypeVar("T", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MediaRef(_Strict):
    id: Urn
    altText: str | None = Field(default=None, max_length=4086)
    title: str | None = None


class MultiImage(_Strict):
    images: list[MediaRef] = Field(min_length=2, max_length=20)


class Content(_Strict):
    media: MediaRef | None = None
    multiImage: MultiImage | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Content:
        if (self.media is None) == (self.multiImage is None):
            raise ValueError("content takes exactly one of media and multiImage")
        if self.multiImage and any(":video:" in i.id for i in self.multiImage.images):
            raise ValueError("multiImage takes images only")
        return self


class Distribution(_Strict):
    feedDistribution: Literal["MAIN_FEED", "NONE"]
    targetEntities: list[Any] = []
    thirdPartyDistributionChannels: list[Any] = []


class NewPost(_Strict):
    author: str = Field(pattern=_AUTHOR)
    commentary: str = ""
    visibility: Literal["PUBLIC", "CONNECTIONS", "LOGGED_IN"]
    distribution: Distribution
    lifecycleState: Literal["PUBLISHED", "DRAFT"]
    isReshareDisabledByAuthor: bool = False
    content: Content | None = None


class InitImage(_Strict):
    owner: str = Field(pattern=_AUTHOR)


class InitVideo(_Strict):
    owner: str = Field(pattern=_AUTHOR)
    fileSizeBytes: int = Field(ge=1, le=MAX_VIDEO_BYTES)
    uploadCaptions: bool = False
    uploadThumbnail: bool = False


class FinalizeVideo(_Strict):
    video: Urn
    uploadToken: str = ""
    uploadedPartIds: list[str]


class NewMember(_Strict):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    name: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None


class LinkedInFake:
    """The fake's behaviour shared by its routes: gatekeeping and answers."""

    def __init__(self, public_url: str) -> None:
        self.state = FakeState()
        self.public_url = public_url.rstrip("/")

    def base_url(self, request: Request) -> str:
        return public_base(self.public_url, request)

    async def gate(
        self, request: Request, kind: CallKind, versioned: bool = True
    ) -> tuple[Member, FaultSpec | None]:
        """Counts the call, checks token, headers and quota, applies the next fault.

        Returns the fault when the route must finish applying it (a publish accepted before
        its answer is delayed, a status read that fails processing); raises any other one.
        """
        self.state.calls[kind] += 1
        await asyncio.sleep(self.state.config.latency_ms / 1000)
        member = self.state.member_for_token(_bearer(request))
        if versioned:
            self.check_headers(request)
        self.state.count_call(member.id, kind)
        return member, await self.apply_fault(kind, member.id)

    def check_headers(self, request: Request) -> None:
        config, version = self.state.config, request.headers.get("linkedin-version")
        if version is None:
            message = "A version must be present. Please specify a version by adding the "
            message += "LinkedIn-Version header."
            raise api_error(400, message, code="VERSION_MISSING")
        newest = dt.datetime.now(dt.UTC).strftime("%Y%m")
        if not (version.isdigit() and len(version) == 6 and config.oldest_version <= version):
            raise api_error(426, f"Requested version {version} is not active",
                            code="NONEXISTENT_VERSION")  # fmt: skip
        if version > newest:
            raise api_error(426, f"Requested version {version} is not active",
                            code="NONEXISTENT_VERSION")  # fmt: skip
        restli = request.headers.get("x-restli-protocol-version")
        if config.require_restli_header and restli != "2.0.0":
            message = "This resource needs X-Restli-Protocol-Version: 2.0.0"
            raise api_error(400, message, code="ILLEGAL_ARGUMENT")

    async def apply_fault(self, kind: CallKind, user_id: str | None) -> FaultSpec | None:
        fault = self.state.faults.take(kind, user_id)
        if fault is None or fault.accept_then_delay is not None:
            return fault
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if kind.endswith("_status") and fault.error_code == "processing_failed":
            return fault
        error = fault.error(kind)
        if error is not None:
            raise error
        return None


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise api_error(401, "Empty oauth2_access_token", 401)
    return token.strip()


def _parse(model: type[T], data: Any) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise api_error(400, "Unable to parse the request body as JSON") from None


def _encoded_urn(request: Request, urn: str, kind: str) -> str:
    """A URN path key, which LinkedIn wants URL-encoded (`:` as `%3A`)."""
    raw = request.scope.get("raw_path", b"").decode("latin-1").upper()
    if not urn.startswith(f"urn:li:{kind}:") or urn.replace(":", "%3A").upper() not in raw:
        raise api_error(400, "Syntax exception in path variables", code="ILLEGAL_ARGUMENT")
    return urn


def create_linkedin_fake(public_url: str = "") -> FastAPI:
    """The fake as an ASGI app; `public_url` is where it is reachable (else from the request)."""
    app = FastAPI(title="Soku sandbox: LinkedIn REST API", docs_url=None, redoc_url=None)
    fake = LinkedInFake(public_url)
    app.state.fake = fake.state
    _error_handlers(app)
    _oauth_routes(app, fake)
    _post_routes(app, fake)
    _image_routes(app, fake)
    _video_routes(app, fake)
    _upload_route(app, fake)
    _control_routes(app, fake)
    control_routes(app, fake.state, FaultSpec, CALL_KINDS)
    _page_route(app, fake)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LinkedInError)
    async def linkedin_error(request: Request, exc: LinkedInError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # (U) LinkedIn's validation answers: 422 with errorDetails.inputErrors.
        inputs = [
            {"description": e["msg"], "input": {"inputPath": {"fieldPath": ".".join(
                str(p) for p in e["loc"] if p != "body")}}, "code": "INVALID_VALUE"}
            for e in exc.errors()
        ]  # fmt: skip
        error = api_error(422, inputs[0]["description"] if inputs else "Invalid request",
                          errorDetailType="com.linkedin.common.error.BadRequest",
                          errorDetails={"inputErrors": inputs})  # fmt: skip
        return await linkedin_error(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"status": exc.status_code, "code": "RESOURCE_NOT_FOUND"}
        body["message"] = "No virtual resource found"
        return JSONResponse(body, status_code=exc.status_code)


def _oauth_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/oauth/v2/accessToken")
    async def token(request: Request) -> JSONResponse:
        state.calls["token"] += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        await fake.apply_fault("token", None)
        config = state.config
        if config.client_id is not None and (
            form.get("client_id") != config.client_id
            or form.get("client_secret") != config.client_secret
        ):
            raise oauth_error(401, "invalid_client", "Client authentication failed")
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return JSONResponse(state.refresh(form.get("refresh_token", "")))
        if grant == "authorization_code" and form.get("code"):
            return JSONResponse(state.issue(state.add_member().id))
        raise oauth_error(400, "invalid_request", f"Unsupported grant_type {grant!r}")

    @app.get("/v2/userinfo")
    async def userinfo(request: Request) -> JSONResponse:
        member, _ = await fake.gate(request, "userinfo", versioned=False)
        member.provisional = False  # the client now knows this member's id
        given, _, family = member.name.partition(" ")
        body = {"sub": member.id, "name": member.name, "given_name": given,
                "family_name": family, "locale": {"country": "US", "language": "en"}}  # fmt: skip
        return JSONResponse(body)


def _post_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/rest/posts")
    async def create(request: Request) -> Response:
        member, fault = await fake.gate(request, "publish")
        body = _parse(NewPost, await _json(request))
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


def _image_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/rest/images")
    async def initialize(request: Request, action: str = "") -> JSONResponse:
        member, _ = await fake.gate(request, "image_init")
        if action != "initializeUpload":
            raise api_error(400, f"Unknown action {action!r}", code="ILLEGAL_ARGUMENT")
        body = await _json(request)
        init = _parse(
            InitImage, body.get("initializeUploadRequest") if isinstance(body, dict) else None
        )
        item = state.new_media(member, init.owner, "image")
        url = f"{fake.base_url(request)}/dms-uploads/{state.upload_key(item, 0)}"
        value = {"uploadUrlExpiresAt": now_ms() + EXPIRES_MS, "uploadUrl": url, "image": item.urn}
        return JSONResponse({"value": value})

    @app.get("/rest/images/{urn}")
    async def image(request: Request, urn: str) -> JSONResponse:
        member, fault = await fake.gate(request, "image_status")
        item = state.owned(member, _encoded_urn(request, urn, "image"), "image")
        state.poll(item, fail=fault is not None)
        return JSONResponse(_media_view(item, fake.base_url(request)))


def _video_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/rest/videos")
    async def action(request: Request, action: str = "") -> Response:
        body = await _json(request) if action else None
        if action == "initializeUpload":
            member, _ = await fake.gate(request, "video_init")
            init = _parse(InitVideo, _field(body, "initializeUploadRequest"))
            item = state.new_media(member, init.owner, "video")
            state.plan_parts(item, init.fileSizeBytes)
            base = fake.base_url(request)
            instructions = [
                {"uploadUrl": f"{base}/dms-uploads/{state.upload_key(item, n)}",
                 "firstByte": first, "lastByte": last}
                for n, (first, last) in enumerate(item.parts)
            ]  # fmt: skip
            value = {"uploadUrlsExpireAt": now_ms() + EXPIRES_MS, "video": item.urn,
                     "uploadInstructions": instructions,
                     "uploadToken": item.token if state.config.upload_token else ""}  # fmt: skip
            return JSONResponse({"value": value})
        if action == "finalizeUpload":
            member, _ = await fake.gate(request, "video_finalize")
            final = _parse(FinalizeVideo, _field(body, "finalizeUploadRequest"))
            item = state.owned(member, final.video, "video")
            state.finalize(item, final.uploadToken, final.uploadedPartIds)
            return Response(status_code=200)
        raise api_error(400, f"Unknown action {action!r}", code="ILLEGAL_ARGUMENT")

    @app.get("/rest/videos/{urn}")
    async def video(request: Request, urn: str) -> JSONResponse:
        member, fault = await fake.gate(request, "video_status")
        item = state.owned(member, _encoded_urn(request, urn, "video"), "video")
        state.poll(item, fail=fault is not None)
        return JSONResponse(_media_view(item, fake.base_url(request)))


def _field(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None


def _media_view(item: Media, base: str) -> dict[str, Any]:
    view: dict[str, Any] = {"owner": item.owner, "id": item.urn, "status": item.status}
    if item.status == "AVAILABLE":
        view["downloadUrl"] = f"{base}/dms/{item.kind}/{item.urn}"
        view["downloadUrlExpiresAt"] = now_ms() + 3600 * 1000
    if item.status == "PROCESSING_FAILED":
        view["processingFailureReason"] = item.failure  # (U) the field's name
    return view


def _upload_route(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.put("/dms-uploads/{key}")
    async def upload(request: Request, key: str) -> Response:
        """The upload URL is the capability: it names the media and the part."""
        urn, part = state.uploads.get(key, ("", 0))
        item = state.media.get(urn)
        if item is None:
            raise api_error(404, "The upload URL is unknown or expired")
        kind: CallKind = "image_upload" if item.kind == "image" else "video_part"
        state.calls[kind] += 1
        await fake.apply_fault(kind, item.user_id)
        data = await request.body()
        if item.kind == "image":
            if item.status != "WAITING_UPLOAD":
                raise api_error(400, f"Image {item.urn} is already uploaded")
            state.receive_image(item, data)
            return Response(status_code=201)
        etag = state.receive_part(item, part, data)
        return Response(status_code=200, headers={"etag": etag})


def _control_routes(app: FastAPI, fake: LinkedInFake) -> None:
    state = fake.state

    @app.post("/_users", status_code=201)
    async def add_member(body: NewMember) -> dict[str, Any]:
        member = state.add_member(body.id, body.name)
        if body.access_token:
            state.tokens[body.access_token] = (member.id, None)
        if body.refresh_token:
            lifetime = state.config.refresh_lifetime_secs
            expires = dt.datetime.now(dt.UTC).timestamp() + lifetime
            state.refresh_tokens[body.refresh_token] = (member.id, expires)
        return {"id": member.id, "urn": member.urn, "name": member.name}

    @app.get("/_inspect/posts")
    async def posts(request: Request) -> dict[str, Any]:
        base = fake.base_url(request)
        return {"posts": [_inspected(state, post, base) for post in state.posts]}


def _inspected(state: FakeState, post: Post, base: str) -> dict[str, Any]:
    """A post as `/_inspect/posts` shows it: what was sent, what a reader sees, where."""
    return {
        "id": post.urn,
        "author": post.author,
        "member_id": post.user_id,
        "text": read_little_text(post.commentary, state.config.truncate_unescaped),
        "commentary": post.commentary,
        "content": post.body.get("content"),
        "media": [state.media[urn].describe() for urn in post.media_urns],
        "visible": post.visible,
        "created_at": dt.datetime.fromtimestamp(post.created_ms / 1000, dt.UTC).isoformat(),
        "url": f"{base}/feed/update/{post.urn}/",
    }


def _page_route(app: FastAPI, fake: LinkedInFake) -> None:
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
