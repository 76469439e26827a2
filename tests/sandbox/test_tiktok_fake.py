"""The TikTok fake on its own: TikTok's envelope, what it refuses (tiktok.md), its chunked
upload, its publish status, its sign-in, its limits and its faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from soku.sandbox.tiktok import create_tiktok_fake
from tests.media_files import MediaServer

MB = 1024 * 1024
AUTH = {"Authorization": "Bearer act.known"}
REDIRECT = "https://soku.test/dashboard/integrations/tiktok/callback"
INFO = {"title": "A clip", "privacy_level": "PUBLIC_TO_EVERYONE"}


@pytest.fixture
async def fake() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_tiktok_fake())
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as http:
        answer = await http.post("/_users", json={"username": "maker", "access_token": "act.known"})
        assert answer.status_code == 201, answer.text
        yield http


async def call(fake: httpx.AsyncClient, path: str, body: Any = None) -> httpx.Response:
    return await fake.post(f"/v2/post/publish/{path}/", json=body, headers=AUTH)


def error_of(answer: httpx.Response) -> str:
    body = answer.json()
    assert set(body) == {"data", "error"} and body["error"]["log_id"]
    return str(body["error"]["code"])


def video(size: int, chunk: int, count: int, **info: Any) -> dict[str, Any]:
    source = {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk,
              "total_chunk_count": count}  # fmt: skip
    return {"post_info": {**INFO, **info}, "source_info": source}


def photos(urls: list[str], **more: Any) -> dict[str, Any]:
    body = {"media_type": "PHOTO", "post_mode": "DIRECT_POST",
            "post_info": {"description": "Hi", "privacy_level": "SELF_ONLY"},
            "source_info": {"source": "PULL_FROM_URL", "photo_images": urls}}  # fmt: skip
    return {**body, **more}


async def put(fake: httpx.AsyncClient, url: str, data: bytes, first: int, total: int,
              kind: str = "video/mp4") -> httpx.Response:  # fmt: skip
    last = first + len(data) - 1
    headers = {"Content-Type": kind, "Content-Range": f"bytes {first}-{last}/{total}"}
    return await fake.put(url, content=data, headers=headers)


async def test_creator_info_and_the_private_account(fake: httpx.AsyncClient) -> None:
    answer = await call(fake, "creator_info/query")
    assert answer.status_code == 200 and error_of(answer) == "ok"
    data = answer.json()["data"]
    assert data["creator_username"] == "maker"
    assert data["privacy_level_options"][0] == "PUBLIC_TO_EVERYONE"
    await fake.post("/_config", json={"private_account": True})
    data = (await call(fake, "creator_info/query")).json()["data"]
    assert "PUBLIC_TO_EVERYONE" not in data["privacy_level_options"]
    refused = await call(fake, "video/init", video(100, 100, 1))
    assert (refused.status_code, error_of(refused)) == (403, "privacy_level_option_mismatch")


BAD_VIDEOS = [
    pytest.param(video(100, 100, 1, title="x" * 2201), id="title-over-2200"),
    pytest.param(video(100, 50, 2), id="small-file-in-chunks"),
    pytest.param(video(20 * MB, 4 * MB, 5), id="chunk-under-5mb"),
    pytest.param(video(20 * MB, 5 * MB, 3), id="count-not-floor"),
    pytest.param(video(300 * MB, 65 * MB, 4), id="chunk-over-64mb"),
    pytest.param(video(5 * 1024**3, 64 * MB, 80), id="over-4gb"),
    pytest.param({"post_info": INFO}, id="no-source"),
    pytest.param({"post_info": INFO, "source_info": {"source": "DRIVE"}}, id="bad-source"),
]


@pytest.mark.parametrize("body", BAD_VIDEOS)
async def test_a_refused_video_init(fake: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await call(fake, "video/init", body)
    assert (answer.status_code, error_of(answer)) == (400, "invalid_params")


async def test_a_body_that_is_not_json(fake: httpx.AsyncClient) -> None:
    answer = await fake.post("/v2/post/publish/video/init/", content=b"{", headers=AUTH)
    assert (answer.status_code, error_of(answer)) == (400, "invalid_params")
    missing = await fake.post("/v2/post/publish/nothing/", headers=AUTH)
    assert missing.status_code == 404 and error_of(missing) == "invalid_params"


async def test_a_chunked_upload_then_its_status(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"min_chunk_bytes": 10, "processing_polls": 1,
                                      "moderation_polls": 1})  # fmt: skip
    init = await call(fake, "video/init", video(25, 10, 2))
    assert init.status_code == 200, init.text
    data = init.json()["data"]
    url, publish_id = data["upload_url"], data["publish_id"]
    assert url.startswith("http://fake.test/upload/video/?upload_id=")
    status = await call(fake, "status/fetch", {"publish_id": publish_id})
    assert status.json()["data"] == {"status": "PROCESSING_UPLOAD", "uploaded_bytes": 0}
    late = await put(fake, url, b"b" * 15, 10, 25)
    assert (late.status_code, error_of(late)) == (400, "invalid_file_upload")  # out of order
    wrong = await put(fake, url, b"a" * 10, 0, 25, kind="text/plain")
    assert (wrong.status_code, error_of(wrong)) == (400, "invalid_file_upload")
    bad = await put(fake, url, b"a" * 9, 0, 25)
    assert bad.status_code == 400  # not the announced chunk
    assert (await put(fake, url, b"a" * 10, 0, 25)).status_code == 206
    assert (await put(fake, url, b"a" * 10, 0, 25)).status_code == 206  # sent again: taken once
    assert (await put(fake, url, b"b" * 15, 10, 25)).status_code == 201
    reads = [(await call(fake, "status/fetch", {"publish_id": publish_id})).json()["data"]
             for _ in range(3)]  # fmt: skip
    assert [r["status"] for r in reads] == ["PROCESSING_UPLOAD", *["PUBLISH_COMPLETE"] * 2]
    assert reads[1]["publicaly_available_post_id"] == []  # in moderation
    [post_id] = reads[2]["publicaly_available_post_id"]
    assert reads[2]["uploaded_bytes"] == 25
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert post["id"] == str(post_id) and post["text"] == "A clip"
    page = await fake.get(f"/@maker/video/{post_id}")
    assert page.status_code == 200 and "A clip" in page.text
    forged = await put(fake, url.replace("upload_token=", "upload_token=x"), b"a", 0, 25)
    assert forged.status_code == 404


async def test_photos_are_pulled_and_checked(fake: httpx.AsyncClient, tmp_path: Any) -> None:
    media = MediaServer(tmp_path)
    try:
        jpeg, png = media.url("img1.jpg"), media.url("img2.png")
        good = await call(fake, "content/init", photos([jpeg, media.url("img3.webp")]))
        assert good.status_code == 200, good.text
        publish_id = good.json()["data"]["publish_id"]
        assert "upload_url" not in good.json()["data"]
        done = (await call(fake, "status/fetch", {"publish_id": publish_id})).json()["data"]
        assert done["status"] == "PUBLISH_COMPLETE" and done["downloaded_bytes"] > 0
        png_post = await call(fake, "content/init", photos([png]))
        failed = await call(fake, "status/fetch", png_post.json()["data"])
        assert failed.json()["data"]["fail_reason"] == "file_format_check_failed"
        await fake.post("/_config", json={"verified_prefixes": ["https://cdn.soku.test/"]})
        unverified = await call(fake, "content/init", photos([jpeg]))
        assert (unverified.status_code, error_of(unverified)) == (403, "url_ownership_unverified")
    finally:
        media.close()


BAD_PHOTOS = [
    pytest.param(photos(["http://a/1.jpg"] * 36), id="36-photos"),
    pytest.param(photos([]), id="no-photo"),
    pytest.param(
        photos(["http://a/1.jpg"], post_info={"title": "t" * 91, "privacy_level": "SELF_ONLY"}),
        id="title-over-90",
    ),
    pytest.param(photos(["ftp://a/1.jpg"]), id="not-http"),
    pytest.param(photos(["http://a/1.jpg"], post_mode="DRAFT"), id="bad-mode"),
    pytest.param({**photos([]), "source_info": {"source": "FILE_UPLOAD"}}, id="file-upload"),
]


@pytest.mark.parametrize("body", BAD_PHOTOS)
async def test_a_refused_photo_post(fake: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await call(fake, "content/init", body)
    assert (answer.status_code, error_of(answer)) == (400, "invalid_params")


async def test_caps_and_limits(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"posts_per_day": 1, "init_per_minute": 2})
    assert (await call(fake, "video/init", video(100, 100, 1))).status_code == 200
    capped = await call(fake, "video/init", video(100, 100, 1))
    assert (capped.status_code, error_of(capped)) == (403, "spam_risk_too_many_posts")
    limited = await call(fake, "video/init", video(100, 100, 1))
    assert (limited.status_code, error_of(limited)) == (429, "rate_limit_exceeded")
    assert 0 < int(limited.headers["retry-after"]) <= 60


async def test_tokens(fake: httpx.AsyncClient) -> None:
    body = {"username": "late", "access_token": "act.old", "expires_in": 0}
    assert (await fake.post("/_users", json=body)).status_code == 201
    expired = await fake.post(
        "/v2/post/publish/creator_info/query/", headers={"Authorization": "Bearer act.old"}
    )
    assert (expired.status_code, error_of(expired)) == (401, "access_token_invalid")
    none = await fake.post("/v2/post/publish/creator_info/query/")
    assert (none.status_code, error_of(none)) == (401, "access_token_invalid")


async def test_faults(fake: httpx.AsyncClient) -> None:
    fault = {"on": "video_init", "error_code": "rate_limited", "retry_after": 3}
    assert (await fake.post("/_faults", json=fault)).status_code == 201
    answer = await call(fake, "video/init", video(100, 100, 1))
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")
    assert error_of(answer) == "rate_limit_exceeded"
    await fake.post("/_faults", json={"on": "publish", "status": 503})
    refused = await call(fake, "content/init", photos(["http://a/1.jpg"]))
    assert (refused.status_code, error_of(refused)) == (503, "internal_error")
    calls = (await fake.get("/_inspect/calls")).json()
    assert (calls["video_init"], calls["publish"]) == (1, 1)


async def consent(fake: httpx.AsyncClient, **ask: str) -> httpx.Response:
    query = {"client_key": "app", "response_type": "code", "redirect_uri": REDIRECT,
             "state": "st", "scope": "user.info.basic,video.publish", **ask}  # fmt: skip
    page = await fake.get("/v2/auth/authorize/", params=query)
    if page.status_code != 200:
        return page
    assert 'name="client_key" value="app"' in page.text and "video.publish" in page.text
    form = {**query, "decision": "allow", "login": "new_maker"}
    return await fake.post("/v2/auth/authorize/", data=form)


async def test_sign_in_with_client_key(fake: httpx.AsyncClient) -> None:
    broken = await consent(fake, client_key="")
    assert broken.status_code == 400 and "client_key is missing" in broken.text
    back = await consent(fake)
    assert back.status_code == 303
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    form = {"client_key": "app", "client_secret": "s", "code": code,
            "grant_type": "authorization_code", "redirect_uri": REDIRECT}  # fmt: skip
    key = form.pop("client_key")
    as_id = {**form, "client_id": key}
    refused = await fake.post("/v2/oauth/token/", data=as_id)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    tokens = (await fake.post("/v2/oauth/token/", data={**form, "client_key": "app"})).json()
    assert tokens["expires_in"] == 86400 and tokens["refresh_expires_in"] == 365 * 86400
    assert tokens["scope"] == "user.info.basic,video.publish" and tokens["open_id"]
    again = await fake.post("/v2/oauth/token/", data={**form, "client_key": "app"})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = await fake.get("/v2/user/info/", params={"fields": "open_id,username"}, headers=headers)
    assert me.json()["data"]["user"] == {"open_id": tokens["open_id"], "username": "new_maker"}
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    renewed = (await fake.post("/v2/oauth/token/", data=refresh)).json()
    assert renewed["access_token"] != tokens["access_token"]
    assert renewed["open_id"] == tokens["open_id"]
