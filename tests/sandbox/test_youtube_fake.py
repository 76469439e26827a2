"""The YouTube fake's contract, checked against youtube.md over real HTTP: paths, headers,
the resumable protocol, states, quotas, Google's error envelope and its OAuth pages.

A fake that drifts from the Data API fails here, before the connector is fooled by it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from soku.integrations.oauth_exchange import ClientApp, authorize_url
from soku.platforms import youtube
from soku.platforms.base import ConnectorTarget
from soku.sandbox.youtube import create_youtube_fake
from tests.asgi_server import serving

TOKEN = "channel-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHANNEL = "UCfakeTestChannel00000"
KIB256 = 256 * 1024
UPLOAD = "/upload/youtube/v3/videos"
REDIRECT = "https://soku.test/dashboard/integrations/youtube/callback"


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[str]:
    async with serving(create_youtube_fake()) as url:
        yield url


@pytest.fixture
async def fake(served: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        assert (await http.delete("/_inspect")).status_code == 204
        body = {"id": CHANNEL, "title": "Fake Test", "access_token": TOKEN, "refresh_token": "r1"}
        assert (await http.post("/_users", json=body)).status_code == 201
        yield http


def resource(title: str = "A title", **snippet: Any) -> dict[str, Any]:
    return {"snippet": {"title": title, "description": "Words", **snippet},
            "status": {"privacyStatus": "public"}}  # fmt: skip


async def open_session(
    fake: httpx.AsyncClient, total: int, body: dict[str, Any] | None = None, **headers: str
) -> str:
    answer = await fake.post(
        UPLOAD,
        params={"uploadType": "resumable", "part": "snippet,status"},
        json=body or resource(),
        headers={**AUTH, "X-Upload-Content-Length": str(total),
                 "X-Upload-Content-Type": "video/mp4", **headers},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    location = answer.headers["location"]
    assert location.startswith(str(fake.base_url).rstrip("/") + UPLOAD + "?uploadType=resumable")
    return str(location)


async def put(
    fake: httpx.AsyncClient, session: str, data: bytes, content_range: str | None
) -> httpx.Response:
    headers = {**AUTH, "Content-Type": "video/mp4"}
    if content_range is not None:
        headers["Content-Range"] = content_range
    return await fake.put(session, content=data, headers=headers)


def reason(answer: httpx.Response) -> str:
    error = answer.json()["error"]
    assert error["code"] == answer.status_code and error["message"], error
    return str(error["errors"][0]["reason"])


# --- videos.insert ---------------------------------------------------------------------------


async def test_a_whole_file_in_one_put(fake: httpx.AsyncClient) -> None:
    session = await open_session(fake, 10)
    done = await put(fake, session, b"0123456789", None)
    assert done.status_code == 201, done.text
    video = done.json()
    assert video["snippet"]["title"] == "A title" and video["status"]["uploadStatus"] == "uploaded"
    [post] = (await fake.get("/_inspect/posts")).json()["posts"]
    assert (post["id"], post["bytes"], post["channel_id"]) == (video["id"], 10, CHANNEL)
    page = await fake.get("/watch", params={"v": video["id"]})
    assert page.status_code == 200 and "A title" in page.text


async def test_chunks_ranges_and_questions(fake: httpx.AsyncClient) -> None:
    total = 2 * KIB256 + 5
    data = bytes(range(256)) * (total // 256) + b"x" * (total % 256)
    session = await open_session(fake, total)
    asked = await put(fake, session, b"", f"bytes */{total}")
    assert asked.status_code == 308 and "range" not in asked.headers
    odd = await put(fake, session, data[:1000], f"bytes 0-999/{total}")
    assert odd.status_code == 400 and reason(odd) == "badRequest"  # not a multiple of 256 KiB
    first = await put(fake, session, data[:KIB256], f"bytes 0-{KIB256 - 1}/{total}")
    assert first.status_code == 308 and first.headers["range"] == f"bytes=0-{KIB256 - 1}"
    ahead = await put(fake, session, data[-5:], f"bytes {total - 5}-{total - 1}/{total}")
    assert ahead.status_code == 400  # a gap: the chunk must follow what is held
    asked = await put(fake, session, b"", f"bytes */{total}")
    assert asked.status_code == 308 and asked.headers["range"] == f"bytes=0-{KIB256 - 1}"
    rest = await put(fake, session, data[KIB256:], f"bytes {KIB256}-{total - 1}/{total}")
    assert rest.status_code == 201, rest.text
    again = await put(fake, session, b"", f"bytes */{total}")
    assert again.status_code == 201 and again.json()["id"] == rest.json()["id"]
    await fake.post("/_expire_sessions")
    assert (await put(fake, session, b"", f"bytes */{total}")).status_code == 201  # complete


async def test_an_expired_session_is_404(fake: httpx.AsyncClient) -> None:
    session = await open_session(fake, 10)
    assert (await fake.post("/_expire_sessions")).json() == {"expired": 1}
    gone = await put(fake, session, b"", "bytes */10")
    assert gone.status_code == 404 and reason(gone) == "notFound"


INVALID = [
    pytest.param(resource(""), "invalidTitle", id="no-title"),
    pytest.param(resource("x" * 101), "invalidTitle", id="long-title"),
    pytest.param(resource("a <b>"), "invalidTitle", id="angled-title"),
    pytest.param(resource(description="é" * 2501), "invalidDescription", id="long-description"),
    pytest.param(resource(tags=["t" * 300, "u" * 201]), "invalidTags", id="tags"),
    pytest.param(resource(categoryId="music"), "invalidCategoryId", id="category"),
    pytest.param({"snippet": {"title": "t"}, "status": {"privacyStatus": "friends"}},
                 "invalidVideoMetadata", id="privacy"),
    pytest.param({"snippet": {"title": "t"}, "status": {"privacyStatus": "public",
                  "publishAt": "2030-01-01T00:00:00Z"}}, "invalidVideoMetadata",
                 id="publish-at-needs-private"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), INVALID)
async def test_metadata_youtube_refuses(
    fake: httpx.AsyncClient, body: dict[str, Any], expected: str
) -> None:
    answer = await fake.post(
        UPLOAD, params={"uploadType": "resumable", "part": "snippet,status"}, json=body,
        headers=AUTH,
    )  # fmt: skip
    assert answer.status_code == 400 and reason(answer) == expected, answer.text


async def test_requests_youtube_refuses(fake: httpx.AsyncClient) -> None:
    query = {"uploadType": "resumable", "part": "snippet,status"}
    anonymous = await fake.post(UPLOAD, params=query, json=resource())
    assert anonymous.status_code == 401 and reason(anonymous) == "authError"
    multipart = await fake.post(UPLOAD, params={**query, "uploadType": "multipart"},
                                json=resource(), headers=AUTH)  # fmt: skip
    assert multipart.status_code == 400
    no_part = await fake.post(UPLOAD, params={"uploadType": "resumable"}, json=resource(),
                              headers=AUTH)  # fmt: skip
    assert no_part.status_code == 400 and reason(no_part) == "required"
    image = await fake.post(UPLOAD, params=query, json=resource(),
                            headers={**AUTH, "X-Upload-Content-Type": "image/png"})  # fmt: skip
    assert image.status_code == 400 and reason(image) == "invalidContentType"
    not_json = await fake.post(UPLOAD, params=query, content=b"{", headers=AUTH)
    assert not_json.status_code == 400 and reason(not_json) == "parseError"
    nowhere = await fake.get("/youtube/v3/playlists", headers=AUTH)
    assert nowhere.status_code == 404 and reason(nowhere) == "notFound"


# --- status, quotas, faults ----------------------------------------------------------------


async def test_processing_then_processed(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"video_polls": 1})
    session = await open_session(fake, 3)
    video_id = (await put(fake, session, b"abc", None)).json()["id"]
    params = {"part": "status,processingDetails", "id": video_id}
    first = (await fake.get("/youtube/v3/videos", params=params, headers=AUTH)).json()
    [item] = first["items"]
    assert item["processingDetails"] == {"processingStatus": "processing"}
    [item] = (await fake.get("/youtube/v3/videos", params=params, headers=AUTH)).json()["items"]
    assert item["status"]["uploadStatus"] == "processed"
    assert item["processingDetails"]["processingStatus"] == "succeeded"
    other = {"Authorization": "Bearer someone-else"}
    [seen] = (await fake.get("/youtube/v3/videos", params=params, headers=other)).json()["items"]
    assert "processingDetails" not in seen  # the owner's only
    unparted = await fake.get("/youtube/v3/videos", params={"id": video_id}, headers=AUTH)
    assert unparted.status_code == 400


async def test_quota_models_and_the_channel_cap(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"quota_model": "units"})
    query = {"uploadType": "resumable", "part": "snippet,status"}
    for _ in range(6):
        await open_session(fake, 10)
    spent = await fake.post(UPLOAD, params=query, json=resource(), headers=AUTH)
    assert spent.status_code == 403 and reason(spent) == "quotaExceeded"
    assert spent.json()["error"]["errors"][0]["domain"] == "youtube.quota"
    await fake.delete("/_inspect")
    await fake.post("/_config", json={"uploads_per_day": 1})
    await open_session(fake, 10)
    capped = await fake.post(UPLOAD, params=query, json=resource(), headers=AUTH)
    assert capped.status_code == 400 and reason(capped) == "uploadLimitExceeded"


async def test_faults_answer_in_googles_shape(fake: httpx.AsyncClient) -> None:
    fault = {"on": "insert", "error_code": "rate_limited", "retry_after": 30}
    assert (await fake.post("/_faults", json=fault)).status_code == 201
    query = {"uploadType": "resumable", "part": "snippet,status"}
    limited = await fake.post(UPLOAD, params=query, json=resource(), headers=AUTH)
    assert limited.status_code == 429 and reason(limited) == "rateLimitExceeded"
    assert limited.headers["retry-after"] == "30"
    wrong = await fake.post("/_faults", json={"on": "nowhere", "status": 500})
    assert wrong.status_code == 400 and reason(wrong) == "badRequest"
    calls = (await fake.get("/_inspect/calls")).json()
    assert calls["insert"] == 1 and set(calls) == {
        "token", "channels", "insert", "chunk", "publish", "query", "status"}  # fmt: skip


# --- Google OAuth -----------------------------------------------------------------------------


async def code_from(fake: httpx.AsyncClient, login: str = "ada") -> str:
    ask = {"response_type": "code", "client_id": "app", "redirect_uri": REDIRECT, "state": "s1",
           "scope": "https://www.googleapis.com/auth/youtube.upload",
           "access_type": "offline", "prompt": "consent"}  # fmt: skip
    page = await fake.get("/o/oauth2/v2/auth", params=ask)
    assert page.status_code == 200 and "allow Soku to post as" in page.text
    answer = await fake.post("/o/oauth2/v2/auth", data={**ask, "decision": "allow", "login": login})
    assert answer.status_code == 303
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


async def test_code_exchange_refresh_and_the_channel(fake: httpx.AsyncClient) -> None:
    code = await code_from(fake)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": "app", "client_secret": "s"}  # fmt: skip
    tokens = (await fake.post("/token", data=form)).json()
    assert tokens["expires_in"] == 3599 and tokens["refresh_token"].startswith("1//")
    replay = await fake.post("/token", data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    mine = await fake.get("/youtube/v3/channels", params={"part": "snippet", "mine": "true"},
                          headers=headers)  # fmt: skip
    [channel] = mine.json()["items"]
    assert channel["id"].startswith("UC") and channel["snippet"]["customUrl"] == "@ada"
    again = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = (await fake.post("/token", data=again)).json()
    assert "refresh_token" not in refreshed and refreshed["access_token"] != tokens["access_token"]


async def test_the_authorize_url_asks_for_offline_access() -> None:
    spec = youtube.OAUTH
    endpoints = spec.endpoints(ConnectorTarget("http://fake.test/sandbox/youtube"))
    url = await authorize_url(
        spec, endpoints, ClientApp("app", "s"), redirect_uri=REDIRECT, state="st",
        code_verifier=None,
    )  # fmt: skip
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("http://fake.test/sandbox/youtube/o/oauth2/v2/auth?")
    assert (query["access_type"], query["prompt"]) == (["offline"], ["consent"])
    assert "https://www.googleapis.com/auth/youtube.upload" in query["scope"][0].split()
    assert "%20" in url  # the scopes' space
