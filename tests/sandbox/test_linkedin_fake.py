"""The LinkedIn fake's contract, checked against linkedin.md: paths, headers, shapes, states.

A fake that drifts from LinkedIn's REST API fails here, before the connector is fooled by it.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from PIL import Image

from soku.sandbox.linkedin import create_linkedin_fake

TOKEN = "member-token"
PUBLIC = "https://fake.example/sandbox/linkedin"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REST = {**AUTH, "LinkedIn-Version": "202610", "X-Restli-Protocol-Version": "2.0.0"}
ME = "urn:li:person:m1"
ORG = "urn:li:organization:77"
SHARE = re.compile(r"^urn:li:share:[0-9]{19}$")


@pytest.fixture
async def fake() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_linkedin_fake(public_url=PUBLIC))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as http:
        body = {"id": "m1", "name": "Ada Member", "access_token": TOKEN, "refresh_token": "r1"}
        assert (await http.post("/_users", json=body)).status_code == 201
        yield http


async def signed_in_code(fake: httpx.AsyncClient, client_id: str = "app") -> str:
    """A code from the consent page, allowed for member m1."""
    ask = {"response_type": "code", "client_id": client_id, "redirect_uri": "https://soku.test",
           "state": "s", "scope": "openid profile w_member_social"}  # fmt: skip
    page = await fake.get("/oauth/v2/authorization", params=ask)
    assert page.status_code == 200 and "allow Soku to post as" in page.text
    answer = await fake.post(
        "/oauth/v2/authorization", data={**ask, "login": "m1", "decision": "allow"}
    )
    assert answer.status_code == 303
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


def local(url: str) -> str:
    """An upload URL the fake handed out (at its public URL), as this client reaches it."""
    assert url.startswith(f"{PUBLIC}/dms-uploads/"), url
    return url.removeprefix(PUBLIC)


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def post_body(author: str = ME, commentary: str = "Hello", **content: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "author": author,
        "commentary": commentary,
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }
    if content:
        body["content"] = content
    return body


async def publish(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/rest/posts", json=body, headers=REST)


async def upload_image(http: httpx.AsyncClient, owner: str = ME) -> str:
    init = {"initializeUploadRequest": {"owner": owner}}
    response = await http.post("/rest/images?action=initializeUpload", json=init, headers=REST)
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert set(value) == {"uploadUrlExpiresAt", "uploadUrl", "image"}
    assert value["uploadUrl"].startswith(f"{PUBLIC}/dms-uploads/")
    assert value["uploadUrlExpiresAt"] > time.time() * 1000
    put = await http.put(local(value["uploadUrl"]), content=png(), headers=AUTH)
    assert put.status_code == 201 and put.content == b""
    return str(value["image"])


async def init_video(http: httpx.AsyncClient, size: int, owner: str = ME) -> dict[str, Any]:
    request = {"owner": owner, "fileSizeBytes": size, "uploadCaptions": False}
    request["uploadThumbnail"] = False
    body = {"initializeUploadRequest": request}
    response = await http.post("/rest/videos?action=initializeUpload", json=body, headers=REST)
    assert response.status_code == 200, response.text
    return dict(response.json()["value"])


async def put_parts(http: httpx.AsyncClient, value: dict[str, Any], data: bytes) -> list[str]:
    etags = []
    for part in value["uploadInstructions"]:
        chunk = data[part["firstByte"] : part["lastByte"] + 1]
        headers = {"Content-Type": "application/octet-stream"}
        response = await http.put(local(part["uploadUrl"]), content=chunk, headers=headers)
        assert response.status_code == 200 and response.headers["etag"], response.text
        etags.append(response.headers["etag"])
    return etags


async def finalize(
    http: httpx.AsyncClient, value: dict[str, Any], etags: list[str]
) -> httpx.Response:
    request = {"video": value["video"], "uploadToken": value["uploadToken"]}
    body = {"finalizeUploadRequest": {**request, "uploadedPartIds": etags}}
    return await http.post("/rest/videos?action=finalizeUpload", json=body, headers=REST)


async def media_status(http: httpx.AsyncClient, kind: str, urn: str) -> dict[str, Any]:
    response = await http.get(f"/rest/{kind}/{quote(urn, safe='')}", headers=REST)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def inspected(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await http.get("/_inspect/posts")).json()["posts"])


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    body = dict(response.json())
    assert response.status_code == status == body["status"], body
    assert isinstance(body["message"], str) and body["message"], body
    return body


async def test_a_text_post_answers_201_with_the_urn_in_x_restli_id(
    fake: httpx.AsyncClient,
) -> None:
    response = await publish(fake, post_body(commentary="Hello \\(world\\)"))
    assert response.status_code == 201 and response.content == b""
    urn = response.headers["x-restli-id"]
    assert SHARE.match(urn)
    [post] = await inspected(fake)
    assert (post["id"], post["author"], post["text"]) == (urn, ME, "Hello (world)")
    assert post["url"] == f"{PUBLIC}/feed/update/{urn}/" and post["visible"] is True
    page = await fake.get(f"/feed/update/{urn}/")
    assert page.status_code == 200 and "Hello (world)" in page.text
    await fake.post("/_config", json={"post_urn_kind": "ugcPost"})
    other = await publish(fake, post_body(commentary="Second"))
    assert other.headers["x-restli-id"].startswith("urn:li:ugcPost:")


async def test_versioned_calls_need_their_headers(fake: httpx.AsyncClient) -> None:
    missing = await fake.post("/rest/posts", json=post_body(), headers=AUTH)
    assert assert_error(missing, 400)["code"] == "VERSION_MISSING"
    for version in ("202001", "2026-10", "209912"):
        headers = {**REST, "LinkedIn-Version": version}
        retired = await fake.post("/rest/posts", json=post_body(), headers=headers)
        body = assert_error(retired, 426)
        assert body == {"message": f"Requested version {version} is not active",
                        "status": 426, "code": "NONEXISTENT_VERSION"}  # fmt: skip
    headers = {**AUTH, "LinkedIn-Version": "202610"}
    assert_error(await fake.post("/rest/posts", json=post_body(), headers=headers), 400)
    unversioned = await fake.get("/v2/userinfo", headers=AUTH)  # userinfo is not versioned
    assert unversioned.status_code == 200 and unversioned.json()["sub"] == "m1"
    assert await inspected(fake) == []


async def test_a_bearer_token_is_required(fake: httpx.AsyncClient) -> None:
    headers = {k: v for k, v in REST.items() if k != "Authorization"}
    response = await fake.post("/rest/posts", json=post_body(), headers=headers)
    assert response.json() == {"message": "Empty oauth2_access_token", "serviceErrorCode": 401,
                               "status": 401}  # fmt: skip
    stranger = {**REST, "Authorization": "Bearer made-up"}
    me = (await fake.get("/v2/userinfo", headers=stranger)).json()
    assert me["sub"] != "m1" and (await fake.get("/v2/userinfo", headers=stranger)).json() == me


async def test_an_unknown_token_becomes_the_person_it_posts_as(fake: httpx.AsyncClient) -> None:
    made_up = {**REST, "Authorization": "Bearer sandbox-token"}
    body = post_body(author="urn:li:person:sbx_1")
    assert (await fake.post("/rest/posts", json=body, headers=made_up)).status_code == 201
    other = post_body(author="urn:li:person:sbx_2", commentary="As someone else")
    assert_error(await fake.post("/rest/posts", json=other, headers=made_up), 403)
    known = await fake.get("/v2/userinfo", headers={"Authorization": "Bearer other-token"})
    learned = {**REST, "Authorization": "Bearer other-token"}  # it has an id of its own now
    claim = post_body(author="urn:li:person:sbx_3", commentary="Claimed late")
    assert_error(await fake.post("/rest/posts", json=claim, headers=learned), 403)
    assert known.json()["sub"] not in ("sbx_1", "sbx_3")


@pytest.mark.parametrize(
    "body",
    [
        {**post_body(), "visibility": "SECRET"},
        {**post_body(), "unknown": 1},
        post_body(author="urn:li:group:1"),
        post_body(multiImage={"images": [{"id": "urn:li:image:C4E1"}]}),
        post_body(media={"id": "urn:li:image:A"}, multiImage={"images": []}),
    ],
)
async def test_invalid_posts_are_422(fake: httpx.AsyncClient, body: dict[str, Any]) -> None:
    body = assert_error(await publish(fake, body), 422)
    assert body["errorDetails"]["inputErrors"][0]["description"]


async def test_posting_as_someone_else_is_403(fake: httpx.AsyncClient) -> None:
    response = await publish(fake, post_body(author="urn:li:person:other"))
    assert assert_error(response, 403)["serviceErrorCode"] == 100
    assert (await publish(fake, post_body(author=ORG))).status_code == 201


async def test_images_api(fake: httpx.AsyncClient) -> None:
    first, second = await upload_image(fake), await upload_image(fake)
    assert re.match(r"^urn:li:image:\w+$", first) and first != second
    unencoded = await fake.get(f"/rest/images/{first}", headers=REST)
    assert_error(unencoded, 400)
    image = await media_status(fake, "images", first)
    assert (image["id"], image["owner"], image["status"]) == (first, ME, "AVAILABLE")
    assert image["downloadUrl"].startswith(PUBLIC)
    images = [{"id": first, "altText": "one"}, {"id": second}]
    response = await publish(fake, post_body(multiImage={"images": images}))
    assert response.status_code == 201
    [post] = await inspected(fake)
    assert [m["dimensions"] for m in post["media"]] == [[40, 30], [40, 30]]
    assert {m["media_type"] for m in post["media"]} == {"image/png"}
    again = await fake.put("/dms-uploads/nope", content=b"x")
    assert_error(again, 404)


async def test_image_processing_states(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"image_polls": 1})
    urn = await upload_image(fake)
    states = [(await media_status(fake, "images", urn))["status"] for _ in range(2)]
    assert states == ["PROCESSING", "AVAILABLE"]
    init = {"initializeUploadRequest": {"owner": ME}}
    value = (
        await fake.post("/rest/images?action=initializeUpload", json=init, headers=REST)
    ).json()["value"]
    await fake.put(local(value["uploadUrl"]), content=b"not an image")
    broken = await media_status(fake, "images", value["image"])
    assert broken["status"] == "PROCESSING_FAILED"


async def test_videos_api_parts_etags_and_states(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"part_bytes": 10, "video_polls": 2})
    data = bytes(range(25))
    value = await init_video(fake, len(data))
    assert set(value) == {"uploadUrlsExpireAt", "video", "uploadInstructions", "uploadToken"}
    assert re.match(r"^urn:li:video:\w+$", value["video"]) and value["uploadToken"]
    spans = [(p["firstByte"], p["lastByte"]) for p in value["uploadInstructions"]]
    assert spans == [(0, 9), (10, 19), (20, 24)]
    assert all(
        p["uploadUrl"].startswith(f"{PUBLIC}/dms-uploads/") for p in value["uploadInstructions"]
    )
    assert (await media_status(fake, "videos", value["video"]))["status"] == "WAITING_UPLOAD"
    wrong_size = await fake.put(
        local(value["uploadInstructions"][0]["uploadUrl"]), content=b"short"
    )
    assert_error(wrong_size, 400)
    etags = await put_parts(fake, value, data)
    assert len(set(etags)) == 3
    assert_error(await finalize(fake, value, list(reversed(etags))), 400)
    done = await finalize(fake, value, etags)
    assert done.status_code == 200 and done.content == b""
    assert_error(await finalize(fake, value, etags), 400)  # once only
    states = [(await media_status(fake, "videos", value["video"]))["status"] for _ in range(3)]
    assert states == ["PROCESSING", "PROCESSING", "AVAILABLE"]
    response = await publish(fake, post_body(commentary="A film", media={"id": value["video"]}))
    assert response.status_code == 201
    [post] = await inspected(fake)
    assert post["media"][0]["puts"] == [0, 1, 2] and post["visible"] is True


async def test_finalize_checks_parts_and_token(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"part_bytes": 10})
    value = await init_video(fake, 20)
    etags = await put_parts(
        fake, {**value, "uploadInstructions": value["uploadInstructions"][:1]}, bytes(20)
    )
    assert_error(await finalize(fake, value, etags), 400)  # a part is missing
    await put_parts(
        fake, {**value, "uploadInstructions": value["uploadInstructions"][1:]}, bytes(20)
    )
    forged = {**value, "uploadToken": "forged"}
    assert_error(await finalize(fake, forged, etags), 400)
    await fake.post("/_config", json={"upload_token": False})
    assert (await init_video(fake, 5))["uploadToken"] == ""


async def test_a_post_made_before_the_video_is_available_is_never_shown(
    fake: httpx.AsyncClient,
) -> None:
    value = await init_video(fake, 4)
    await finalize(fake, value, await put_parts(fake, value, b"abcd"))
    response = await publish(fake, post_body(media={"id": value["video"]}))
    assert response.status_code == 201  # accepted all the same
    [post] = await inspected(fake)
    assert post["visible"] is False
    assert (await fake.get(f"/feed/update/{post['id']}/")).status_code == 404


async def test_processing_failure(fake: httpx.AsyncClient) -> None:
    await fake.post("/_faults", json={"on": "video_status", "error_code": "processing_failed"})
    value = await init_video(fake, 4)
    await finalize(fake, value, await put_parts(fake, value, b"abcd"))
    video = await media_status(fake, "videos", value["video"])
    assert video["status"] == "PROCESSING_FAILED" and video["processingFailureReason"]
    assert (await media_status(fake, "videos", value["video"]))["status"] == "PROCESSING_FAILED"


async def test_media_of_another_author_is_refused(fake: httpx.AsyncClient) -> None:
    urn = await upload_image(fake, owner=ORG)
    response = await publish(fake, post_body(media={"id": urn}))
    assert_error(response, 422)
    other = {**REST, "Authorization": "Bearer someone-else"}
    peek = await fake.get(f"/rest/images/{quote(urn, safe='')}", headers=other)
    assert_error(peek, 403)


async def test_duplicate_content_is_422(fake: httpx.AsyncClient) -> None:
    first = (await publish(fake, post_body(commentary="Same words"))).headers["x-restli-id"]
    response = await publish(fake, post_body(commentary="Same words"))
    assert response.json() == {"message": f"Content is a duplicate of {first}", "status": 422}
    assert (await publish(fake, post_body(author=ORG, commentary="Same words"))).status_code == 201


async def test_little_text_is_cut_at_an_unescaped_reserved_character(
    fake: httpx.AsyncClient,
) -> None:
    commentary = "Hi @[Ada](urn:li:person:m1) #launch \\(ok\\) then (cut here"
    await publish(fake, post_body(commentary=commentary))
    [post] = await inspected(fake)
    assert post["text"] == "Hi Ada #launch (ok) then "
    assert post["commentary"] == commentary
    await fake.post("/_config", json={"truncate_unescaped": False})
    assert (await inspected(fake))[0]["text"] == "Hi Ada #launch (ok) then (cut here"


async def test_the_author_finder(fake: httpx.AsyncClient) -> None:
    image = await upload_image(fake)
    first = (await publish(fake, post_body(commentary="One", media={"id": image}))).headers
    second = (await publish(fake, post_body(commentary="Two"))).headers
    await publish(fake, post_body(author=ORG, commentary="Theirs"))
    finder = {**REST, "X-RestLi-Method": "FINDER"}
    params = {"q": "author", "author": ME, "count": "1", "sortBy": "LAST_MODIFIED"}
    page = (await fake.get("/rest/posts", params=params, headers=finder)).json()
    assert page["paging"] == {"start": 0, "count": 1, "links": [], "total": 2}
    [newest] = page["elements"]
    assert (newest["id"], newest["commentary"]) == (second["x-restli-id"], "Two")
    assert newest["createdAt"] == newest["publishedAt"] and newest["lifecycleState"] == "PUBLISHED"
    older = (await fake.get("/rest/posts", params={**params, "start": "1"}, headers=finder)).json()
    [post] = older["elements"]
    assert post["id"] == first["x-restli-id"] and post["content"] == {"media": {"id": image}}
    assert_error(await fake.get("/rest/posts", params={"q": "author"}, headers=finder), 400)
    stranger = {**params, "author": "urn:li:person:someone"}
    assert_error(await fake.get("/rest/posts", params=stranger, headers=finder), 403)
    await fake.post("/_config", json={"finder_allowed": False})  # r_member_social is private
    refused = await fake.get("/rest/posts", params=params, headers=finder)
    assert assert_error(refused, 403)["serviceErrorCode"] == 100
    theirs = await fake.get("/rest/posts", params={**params, "author": ORG}, headers=finder)
    assert [p["commentary"] for p in theirs.json()["elements"]] == ["Theirs"]


async def test_oauth_codes_and_refresh(fake: httpx.AsyncClient) -> None:
    code = await signed_in_code(fake)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://soku.test",
            "client_id": "app", "client_secret": "s"}  # fmt: skip
    tokens = (await fake.post("/oauth/v2/accessToken", data=form)).json()
    assert set(tokens) == {"access_token", "expires_in", "refresh_token",
                           "refresh_token_expires_in", "scope"}  # fmt: skip
    assert tokens["expires_in"] == 60 * 86400 and tokens["refresh_token_expires_in"] > 364 * 86400
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    again = (await fake.post("/oauth/v2/accessToken", data=refresh)).json()
    assert again["refresh_token"] == tokens["refresh_token"]  # no rotation
    assert again["refresh_token_expires_in"] <= tokens["refresh_token_expires_in"]
    owner = {"Authorization": f"Bearer {tokens['access_token']}"}
    later = {"Authorization": f"Bearer {again['access_token']}"}
    assert (await fake.get("/v2/userinfo", headers=owner)).json() == (
        await fake.get("/v2/userinfo", headers=later)
    ).json()
    member = (
        await fake.post("/oauth/v2/accessToken", data={**refresh, "refresh_token": "r1"})
    ).json()
    mine = {"Authorization": f"Bearer {member['access_token']}"}
    assert (await fake.get("/v2/userinfo", headers=mine)).json()["sub"] == "m1"
    bad = await fake.post("/oauth/v2/accessToken", data={"grant_type": "password"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


async def test_oauth_client_and_expiry_checks(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"client_id": "app", "client_secret": "s"})
    form = {"grant_type": "refresh_token", "refresh_token": "r1"}
    anonymous = await fake.post("/oauth/v2/accessToken", data=form)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    named = {**form, "client_id": "app", "client_secret": "s"}
    assert (await fake.post("/oauth/v2/accessToken", data=named)).status_code == 200
    await fake.post("/_config", json={"refresh_lifetime_secs": 0, "token_lifetime_secs": 0})
    fresh = {**named, "refresh_token": "never-seen"}
    expired = await fake.post("/oauth/v2/accessToken", data=fresh)
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]
    code = {
        "grant_type": "authorization_code",
        "code": await signed_in_code(fake),
        "redirect_uri": "https://soku.test",
        "client_id": "app",
        "client_secret": "s",
    }
    stale = (await fake.post("/oauth/v2/accessToken", data=code)).json()["access_token"]
    response = await fake.get("/v2/userinfo", headers={"Authorization": f"Bearer {stale}"})
    assert assert_error(response, 401)["serviceErrorCode"] == 65602


async def test_daily_throttle(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"posts_per_day": 1})
    assert (await publish(fake, post_body(commentary="One"))).status_code == 201
    response = await publish(fake, post_body(commentary="Two"))
    assert "DAY limit" in assert_error(response, 429)["message"]
    assert "retry-after" not in response.headers  # LinkedIn documents none


@pytest.mark.parametrize(
    ("fault", "status", "service_code"),
    [
        ({"status": 429, "retry_after": 42}, 429, None),
        ({"error_code": "token_expired"}, 401, 65602),
        ({"error_code": "token_revoked"}, 401, 65601),
        ({"error_code": "duplicate_content"}, 422, None),
        ({"error_code": "forbidden"}, 403, None),
        ({"status": 500}, 500, None),
        ({"status": 503, "retry_after": 5}, 503, None),
    ],
)
async def test_injected_faults(
    fake: httpx.AsyncClient, fault: dict[str, Any], status: int, service_code: int | None
) -> None:
    added = await fake.post("/_faults", json={"on": "publish", **fault})
    assert added.status_code == 201
    response = await publish(fake, post_body(commentary="Faulty"))
    assert assert_error(response, status).get("serviceErrorCode") == service_code
    if "retry_after" in fault:
        assert response.headers["retry-after"] == str(fault["retry_after"])
    assert (await publish(fake, post_body(commentary="Faulty"))).status_code == 201  # used up
    assert (await fake.get("/_inspect/calls")).json()["publish"] == 2


async def test_faults_per_member_and_on_uploads(fake: httpx.AsyncClient) -> None:
    await fake.post("/_faults", json={"on": "publish", "user_id": "someone", "status": 500})
    assert (await publish(fake, post_body(commentary="Not me"))).status_code == 201
    await fake.post("/_faults", json={"on": "media", "status": 503})
    init = {"initializeUploadRequest": {"owner": ME}}
    response = await fake.post("/rest/images?action=initializeUpload", json=init, headers=REST)
    assert_error(response, 503)
    invalid = await fake.post("/_faults", json={"on": "list", "accept_then_delay": 1})
    assert invalid.status_code == 422


async def test_accepted_then_slow_publish_is_kept(fake: httpx.AsyncClient) -> None:
    await fake.post("/_faults", json={"on": "publish", "accept_then_delay": 0.05})
    assert (await publish(fake, post_body(commentary="Slow but real"))).status_code == 201
    assert len(await inspected(fake)) == 1


async def test_unknown_paths_and_reset(fake: httpx.AsyncClient) -> None:
    urn = (await publish(fake, post_body())).headers["x-restli-id"]
    missing = await fake.get("/rest/nothing", headers=REST)
    assert missing.json() == {"status": 404, "code": "RESOURCE_NOT_FOUND",
                              "message": "No virtual resource found"}  # fmt: skip
    assert (await fake.get("/feed/update/urn:li:share:1")).status_code == 404
    assert (await fake.delete("/_inspect")).status_code == 204
    assert await inspected(fake) == []
    assert (await fake.get(f"/feed/update/{urn}")).status_code == 404
