"""The Media API: fetch or upload, probe, idempotency, public serving with ranges, and how
posts take their media (stored URLs reused, every failure an `upload_failed`)."""

from __future__ import annotations

import hashlib
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from soku import migrate
from soku.app import create_app
from soku.context import AppContext
from soku.media.models import Media
from soku.posts.models import Post
from tests.api.helpers import assert_error, in_future, raw_exchange
from tests.conftest import Caller, make_caller, make_settings
from tests.media_files import MediaServer, write_image, write_video

pytestmark = pytest.mark.asyncio
VIEW_KEYS = {
    *("url", "id", "kind", "contentType", "bytes", "sha256", "width", "height"),
    *("durationSeconds", "sourceUrl", "details", "createdAt"),
}
AppFactory = Callable[..., AbstractAsyncContextManager[tuple[AppContext, httpx.AsyncClient]]]


class _Counted(SimpleHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    """The same files as `media_server`, counting every GET (see `fetches`)."""
    folder = tmp_path_factory.mktemp("counted-media")
    server = MediaServer(folder)
    server.server.RequestHandlerClass = partial(_Counted, directory=str(folder))
    yield server
    server.close()


def shape(view: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(view[k] for k in ("kind", "contentType", "width", "height"))


def fetches(tag: str) -> int:
    return sum(tag in path for path in _Counted.hits)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("upload-files")
    write_image(folder / "a.jpg", (10, 20, 30))
    write_video(folder / "clip.mp4")
    return {name: (folder / name).read_bytes() for name in ("a.jpg", "clip.mp4")}


@pytest.fixture
def settings_app(tmp_path: Path) -> AppFactory:
    """An app with its own settings on a fresh SQLite database."""

    @asynccontextmanager
    async def build(**extra: Any) -> AsyncIterator[tuple[AppContext, httpx.AsyncClient]]:
        ctx = AppContext.build(make_settings(tmp_path / secrets.token_hex(4), **extra))
        await migrate.upgrade(ctx.db.engine)
        transport = httpx.ASGITransport(app=create_app(ctx=ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield ctx, client
        await ctx.aclose()

    return build


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/img.jpg"


def unique_jpeg(folder: Path) -> bytes:
    """An image no other test stores (content addressing shares equal files)."""
    path = folder / f"{secrets.token_hex(4)}.jpg"
    red, green, blue = secrets.token_bytes(3)
    write_image(path, (red, green, blue))
    return path.read_bytes()


async def from_url(
    client: httpx.AsyncClient, caller: Caller, url: str, key: str | None = None
) -> httpx.Response:
    headers = {**caller.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post("/v1/media", json={"url": url}, headers=headers)


async def upload(
    client: httpx.AsyncClient, caller: Caller, data: bytes, name: str = "f.jpg"
) -> httpx.Response:
    files = {"file": (name, data, "application/octet-stream")}
    return await client.post("/v1/media/upload", files=files, headers=caller.headers)


def image_post(urls: list[str], **extra: Any) -> dict[str, Any]:
    content = {"text": "pics", "mediaType": "image", "imageUrls": urls, "platform": ["x"]}
    return {"post": {"content": content}, **extra}


async def post_count(ctx: AppContext, user_id: uuid.UUID) -> int:
    async with ctx.db.read() as session:
        stmt = select(func.count()).select_from(Post).where(Post.user_id == user_id)
        return int((await session.execute(stmt)).scalar_one())


async def media_rows(ctx: AppContext, user_id: uuid.UUID) -> list[Media]:
    async with ctx.db.read() as session:
        stmt = select(Media).where(Media.user_id == user_id)
        return list((await session.execute(stmt)).scalars())


# --- POST /v1/media and GET /v1/media/{id} ----------------------------------------------


async def test_create_from_url_describes_the_image(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, media_server: MediaServer
) -> None:
    url = media_server.url("img1.jpg")
    async with httpx.AsyncClient() as plain:
        original = (await plain.get(url)).content
    response = await from_url(client, caller, url)
    assert response.status_code == 201, response.text
    view = response.json()
    assert set(view) == VIEW_KEYS
    assert shape(view) == ("image", "image/jpeg", 64, 48)
    assert view["bytes"] == len(original)
    assert view["sha256"] == hashlib.sha256(original).hexdigest()
    assert view["durationSeconds"] is None and view["sourceUrl"] == url
    assert view["details"]["image_format"] == "JPEG"
    prefix = f"{backend.settings.public_base_url}/media/"
    assert view["url"].startswith(prefix) and view["url"].endswith(".jpg")
    shown = await client.get(f"/v1/media/{view['id']}", headers=caller.headers)
    assert shown.status_code == 200 and shown.json() == view


async def test_video_is_probed(
    client: httpx.AsyncClient, caller: Caller, media_server: MediaServer
) -> None:
    response = await from_url(client, caller, media_server.url("clip.mp4"))
    assert response.status_code == 201, response.text
    view = response.json()
    assert shape(view) == ("video", "video/mp4", 540, 960)
    assert view["durationSeconds"] == pytest.approx(6.0, abs=0.15)


async def test_idempotency_replays_without_fetching_again(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, counted: MediaServer
) -> None:
    tag = secrets.token_hex(6)
    url, other = counted.url(f"img2.png?t={tag}"), counted.url(f"img3.webp?t={tag}")
    first = await from_url(client, caller, url, key=f"k-{tag}")
    assert first.status_code == 201, first.text
    again = await from_url(client, caller, url, key=f"k-{tag}")
    assert again.status_code == 201 and again.content == first.content
    assert fetches(tag) == 1
    conflict = await from_url(client, caller, other, key=f"k-{tag}")
    assert_error(conflict, 409, "idempotency_conflict")
    # No key: the key is derived from the user and the body.
    derived = await from_url(client, caller, url)
    assert derived.status_code == 201 and derived.json()["id"] != first.json()["id"]
    repeat = await from_url(client, caller, url)
    assert repeat.content == derived.content
    assert fetches(tag) == 2
    someone = await make_caller(backend)
    theirs = await from_url(client, someone, url)
    assert theirs.status_code == 201 and theirs.json()["id"] != derived.json()["id"]
    assert fetches(tag) == 3 and len(await media_rows(backend, caller.user_id)) == 2


# --- POST /v1/media/upload --------------------------------------------------------------


async def test_upload_image_and_video(
    client: httpx.AsyncClient, caller: Caller, files: dict[str, bytes]
) -> None:
    image = await upload(client, caller, files["a.jpg"])
    assert image.status_code == 201, image.text
    view = image.json()
    assert set(view) == VIEW_KEYS and view["sourceUrl"] is None
    assert (view["kind"], view["width"], view["height"]) == ("image", 64, 48)
    assert view["sha256"] == hashlib.sha256(files["a.jpg"]).hexdigest()
    video = await upload(client, caller, files["clip.mp4"], "clip.mp4")
    assert video.status_code == 201, video.text
    shown = video.json()
    assert shape(shown) == ("video", "video/mp4", 32, 32)
    assert shown["durationSeconds"] == pytest.approx(1.0, abs=0.15)
    assert shown["bytes"] == len(files["clip.mp4"])


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"file": "x"}'),
        ("application/x-www-form-urlencoded", b"file=x"),
        ("text/plain", b"x"),
        (None, b"x"),
    ],
)
async def test_upload_takes_only_multipart(
    client: httpx.AsyncClient, caller: Caller, content_type: str | None, body: bytes
) -> None:
    headers = {**caller.headers, **({"content-type": content_type} if content_type else {})}
    response = await client.post("/v1/media/upload", content=body, headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["details"]["contentType"] == content_type
    assert "multipart/form-data" in error["message"]


async def test_upload_of_html_is_unsupported(client: httpx.AsyncClient, caller: Caller) -> None:
    page = b"<html><body>not media</body></html>"
    error = assert_error(await upload(client, caller, page, "page.html"), 400, "upload_failed")
    assert error["details"]["reason"] == "unsupported_format"


async def test_same_file_twice_is_one_stored_object(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, tmp_path: Path
) -> None:
    data = unique_jpeg(tmp_path)
    one, two = (await upload(client, caller, data)).json(), (await upload(client, caller, data))
    assert two.status_code == 201 and one["id"] != two.json()["id"]
    assert one["sha256"] == two.json()["sha256"] and one["url"] != two.json()["url"]
    rows = await media_rows(backend, caller.user_id)
    assert len({row.storage_key for row in rows}) == 1 and len(rows) == 2
    key = rows[0].storage_key
    assert await backend.media_store.size(key) == len(data)
    deleted = await client.delete(f"/v1/media/{one['id']}", headers=caller.headers)
    assert deleted.status_code == 204
    assert await backend.media_store.size(key) == len(data)  # the other row still uses it
    served = await client.get(urlsplit(two.json()["url"]).path)
    assert served.status_code == 200 and served.content == data
    assert (await client.delete(f"/v1/media/{two.json()['id']}", headers=caller.headers)).is_success
    assert await backend.media_store.size(key) is None


# --- public serving ---------------------------------------------------------------------


async def test_stored_url_is_served_publicly_with_ranges(
    client: httpx.AsyncClient, caller: Caller, files: dict[str, bytes]
) -> None:
    data = files["a.jpg"]
    path = urlsplit((await upload(client, caller, data)).json()["url"]).path
    whole = await client.get(path)  # no soku-api-key
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "image/jpeg"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["x-content-type-options"] == "nosniff"
    head = await client.get(path, headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.content == data[:10]
    assert head.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert head.headers["content-type"] == "image/jpeg"
    tail = await client.get(path, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 5}-{len(data) - 1}/{len(data)}"
    for past_the_end in (f"bytes={len(data)}-", "bytes=99999999-"):
        beyond = await client.get(path, headers={"Range": past_the_end})
        error = assert_error(beyond, 416, "range_not_satisfiable")
        assert beyond.headers["content-range"] == f"bytes */{len(data)}"
        assert error["details"] == {"range": past_the_end, "size": len(data)}
    assert_error(await client.get("/media/no-such-token.jpg"), 404, "not_found")


async def test_head_on_a_stored_url_describes_it_without_reading_it(
    backend: AppContext,
    client: httpx.AsyncClient,
    caller: Caller,
    files: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = files["a.jpg"]
    path = urlsplit((await upload(client, caller, data)).json()["url"]).path
    got = await client.get(path)

    def unread(*_args: object) -> None:
        raise AssertionError("HEAD opened the stored file")

    monkeypatch.setattr(backend.media_store, "stream", unread)
    app = create_app(ctx=backend)
    status, headers, body = await raw_exchange(app, "HEAD", path)
    assert (status, body) == (200, b"")
    for name in ("content-type", "content-length", "accept-ranges", "cache-control"):
        assert headers[name] == got.headers[name], name
    assert headers["content-length"] == str(len(data))
    status, headers, body = await raw_exchange(app, "HEAD", path, {"Range": "bytes=0-9"})
    assert (status, body) == (206, b"")
    assert headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert headers["content-length"] == "10"
    status, _, body = await raw_exchange(app, "HEAD", "/media/no-such-token.jpg")
    assert (status, body) == (404, b"")


# --- ownership and deletion -------------------------------------------------------------


async def test_another_users_media_is_not_found(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, files: dict[str, bytes]
) -> None:
    media_id = (await upload(client, caller, files["a.jpg"])).json()["id"]
    other = await make_caller(backend)
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"/v1/media/{media_id}", headers=other.headers)
        assert_error(response, 404, "not_found")
    assert (await client.get(f"/v1/media/{media_id}", headers=caller.headers)).status_code == 200
    assert_error(
        await client.get(f"/v1/media/{uuid.uuid4()}", headers=caller.headers), 404, "not_found"
    )
    assert_error(await client.get("/v1/media/not-a-uuid", headers=caller.headers), 404, "not_found")


async def test_delete_waits_for_the_scheduled_post_that_uses_it(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, counted: MediaServer
) -> None:
    tag = secrets.token_hex(6)
    view = (await from_url(client, caller, counted.url(f"img4.gif?t={tag}"))).json()
    body = image_post([view["url"]], scheduledTime=in_future(3600))
    created = await client.post("/v1/posts", json=body, headers=caller.headers)
    assert created.status_code == 201, created.text
    post_id = created.json()["postSubmissionId"]
    assert fetches(tag) == 1  # our own URL is not fetched again
    assert [str(m.id) for m in await media_rows(backend, caller.user_id)] == [view["id"]]
    async with backend.db.read() as session:
        post = await session.get(Post, uuid.UUID(post_id))
        assert post is not None and post.media_ids == [view["id"]]
    refused = await client.delete(f"/v1/media/{view['id']}", headers=caller.headers)
    assert_error(refused, 409, "conflict")
    cancelled = await client.delete(f"/v1/posts/{post_id}", headers=caller.headers)
    assert cancelled.status_code == 200, cancelled.text
    deleted = await client.delete(f"/v1/media/{view['id']}", headers=caller.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await client.get(f"/v1/media/{view['id']}", headers=caller.headers)
    assert_error(gone, 404, "not_found")


# --- posts take their media -------------------------------------------------------------


async def test_post_with_image_urls_stores_its_media(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, media_server: MediaServer
) -> None:
    urls = [media_server.url("img1.jpg?p=1"), media_server.url("img2.png?p=1")]
    created = await client.post("/v1/posts", json=image_post(urls), headers=caller.headers)
    assert created.status_code == 201, created.text
    async with backend.db.read() as session:
        post = await session.get(Post, uuid.UUID(created.json()["postSubmissionId"]))
        assert post is not None
        media_ids = list(post.media_ids)
    rows = {str(m.id): m for m in await media_rows(backend, caller.user_id)}
    assert len(media_ids) == 2 and set(media_ids) == set(rows)
    ordered = [rows[i] for i in media_ids]
    assert [m.source_url for m in ordered] == urls
    assert [(m.content_type, m.width, m.height) for m in ordered] == [
        ("image/jpeg", 64, 48),
        ("image/png", 64, 48),
    ]


FAILURES = [
    ("posts", "missing.jpg", "bad_status"),
    ("posts", "page.html", "unsupported_format"),
    ("posts", "clip.mp4", "unsupported_format"),  # a video in an image post
    ("posts", None, "unreachable"),
    ("media", "missing.jpg", "bad_status"),
    ("media", "page.html", "unsupported_format"),
    ("media", None, "unreachable"),
]


@pytest.mark.parametrize(("endpoint", "name", "reason"), FAILURES)
async def test_upload_failed(
    client: httpx.AsyncClient,
    backend: AppContext,
    caller: Caller,
    media_server: MediaServer,
    endpoint: str,
    name: str | None,
    reason: str,
) -> None:
    url = media_server.url(name) if name else closed_port_url()
    if endpoint == "posts":
        response = await client.post("/v1/posts", json=image_post([url]), headers=caller.headers)
    else:
        response = await from_url(client, caller, url)
    error = assert_error(response, 400, "upload_failed")
    assert (error["details"]["url"], error["details"]["reason"]) == (url, reason)
    assert await post_count(backend, caller.user_id) == 0
    assert await media_rows(backend, caller.user_id) == []


async def test_every_failing_url_is_listed(
    client: httpx.AsyncClient, backend: AppContext, caller: Caller, media_server: MediaServer
) -> None:
    bad = [media_server.url("missing.png"), media_server.url("page.html"), closed_port_url()]
    urls = [media_server.url("img1.jpg?f=1"), *bad]
    response = await client.post("/v1/posts", json=image_post(urls), headers=caller.headers)
    error = assert_error(response, 400, "upload_failed")
    failures = error["details"]["failures"]
    assert [(f["url"], f["reason"]) for f in failures] == [
        (bad[0], "bad_status"),
        (bad[1], "unsupported_format"),
        (bad[2], "unreachable"),
    ]
    assert (error["details"]["url"], error["details"]["reason"]) == (bad[0], "bad_status")
    assert await post_count(backend, caller.user_id) == 0
    assert await media_rows(backend, caller.user_id) == []


# --- settings ---------------------------------------------------------------------------


async def test_private_addresses_are_blocked(
    settings_app: AppFactory, media_server: MediaServer
) -> None:
    async with settings_app(media_allow_private=False) as (ctx, client):
        caller = await make_caller(ctx)
        url = media_server.url("img1.jpg")
        posted = await client.post("/v1/posts", json=image_post([url]), headers=caller.headers)
        error = assert_error(posted, 400, "upload_failed")
        assert (error["details"]["url"], error["details"]["reason"]) == (url, "blocked_address")
        assert await post_count(ctx, caller.user_id) == 0
        direct = assert_error(await from_url(client, caller, url), 400, "upload_failed")
        assert direct["details"]["reason"] == "blocked_address"
        assert await media_rows(ctx, caller.user_id) == []


async def test_files_over_the_cap_are_too_large(
    settings_app: AppFactory, media_server: MediaServer, files: dict[str, bytes]
) -> None:
    async with settings_app(media_image_max_bytes=200) as (ctx, client):
        caller = await make_caller(ctx)
        assert len(files["a.jpg"]) > 200
        uploaded = assert_error(await upload(client, caller, files["a.jpg"]), 400, "upload_failed")
        assert uploaded["details"]["reason"] == "too_large"
        fetched = await from_url(client, caller, media_server.url("img1.jpg"))
        assert assert_error(fetched, 400, "upload_failed")["details"]["reason"] == "too_large"
        video = await upload(client, caller, files["clip.mp4"], "clip.mp4")
        assert video.status_code == 201, video.text  # the video cap is its own
        assert len(await media_rows(ctx, caller.user_id)) == 1
