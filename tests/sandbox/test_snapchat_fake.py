"""The Snapchat fake on its own, over real HTTP: Snapchat's paths, envelope and refusals."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from soku.sandbox.snapchat import create_snapchat_fake
from tests.asgi_server import serving
from tests.media_files import write_clip, write_image

PROFILE, TOKEN = "0d6f2b7e-1111-4c55-9e0a-0f6b1d2c3e4f", "snap-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY, IV = os.urandom(32), os.urandom(16)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving(create_snapchat_fake()) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        answer = await client.post(
            "/_users", json={"id": PROFILE, "username": "fake_snaps", "access_token": TOKEN}
        )
        assert answer.status_code == 201, answer.text
        yield client


def sealed(data: bytes, key: bytes = KEY) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(IV)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


async def container(http: httpx.AsyncClient, kind: str = "IMAGE", **body: Any) -> dict[str, Any]:
    keys = {"key": base64.b64encode(KEY).decode(), "iv": base64.b64encode(IV).decode()}
    sent = {"type": kind, "name": "test", **keys, **body}
    answer = await http.post(f"/v1/public_profiles/{PROFILE}/media", json=sent, headers=AUTH)
    assert answer.status_code == 200, answer.text
    made: dict[str, Any] = answer.json()
    return made


async def uploaded(http: httpx.AsyncClient, data: bytes, kind: str = "IMAGE") -> str:
    """A media container with `data` encrypted, in two parts, finalized: its id."""
    made, cipher = await container(http, kind), sealed(data)
    half = len(cipher) // 32 * 16
    for number, part in enumerate((cipher[:half], cipher[half:]), start=1):
        fields = {"action": "ADD", "part_number": str(number)}
        added = await http.post(made["add_path"], data=fields, files={"file": ("p", part)},
                                headers=AUTH)  # fmt: skip
        assert added.status_code == 200, added.text
    done = await http.post(made["finalize_path"], data={"action": "FINALIZE"}, headers=AUTH)
    assert done.status_code == 200 and done.json()["request_status"] == "SUCCESS", done.text
    return str(made["media_id"])


def jpeg(tmp_path: Path) -> bytes:
    write_image(tmp_path / "a.jpg", (10, 20, 30))
    return (tmp_path / "a.jpg").read_bytes()


def refused(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    assert (answer.status_code, body["request_status"], body["error_code"]) == (
        status,
        "ERROR",
        code,
    ), body
    assert body["display_message"] and body["request_id"]
    return body


async def test_my_profile(http: httpx.AsyncClient) -> None:
    answer = await http.get("/v1/public_profiles/my_profile", headers=AUTH)
    body = answer.json()
    assert body["request_status"] == "SUCCESS"
    assert (body["public_profile"]["id"], body["public_profile"]["snap_user_name"]) == (
        PROFILE,
        "fake_snaps",
    )


async def test_a_call_without_a_bearer_token(http: httpx.AsyncClient) -> None:
    refused(await http.get("/v1/public_profiles/my_profile"), 401, "UNAUTHORIZED")
    bare = {"Authorization": TOKEN}  # as Snapchat's GetStarted page prints it: a knob
    refused(await http.get("/v1/public_profiles/my_profile", headers=bare), 401, "UNAUTHORIZED")
    await http.post("/_config", json={"accept_bare_token": True})
    assert (await http.get("/v1/public_profiles/my_profile", headers=bare)).status_code == 200


async def test_an_image_story_end_to_end(http: httpx.AsyncClient, tmp_path: Path) -> None:
    media_id = await uploaded(http, jpeg(tmp_path))
    answer = await http.post(f"/v1/public_profiles/{PROFILE}/stories", json={"media_id": media_id},
                             headers=AUTH)  # fmt: skip
    story = answer.json()["story_id"]
    [post] = (await http.get("/_inspect/posts")).json()["posts"]
    assert (post["id"], post["kind"], post["media"][0]["format"]) == (story, "story", "image/jpeg")
    page = await http.get("/@fake_snaps")
    assert page.status_code == 200 and story in page.text


async def test_a_video_spotlight_needs_a_locale(http: httpx.AsyncClient, tmp_path: Path) -> None:
    write_clip(tmp_path / "clip.mp4")
    media_id = await uploaded(http, (tmp_path / "clip.mp4").read_bytes(), "VIDEO")
    path = f"/v1/public_profiles/{PROFILE}/spotlights"
    body = {"media_id": media_id, "description": "x"}
    refused(await http.post(path, json=body, headers=AUTH), 400, "INVALID_REQUEST")
    long = {**body, "locale": "en_US", "description": "y" * 161}
    refused(await http.post(path, json=long, headers=AUTH), 400, "INVALID_REQUEST")
    answer = await http.post(path, json={**body, "locale": "en_US"}, headers=AUTH)
    assert answer.json()["spotlight_id"]
    [media] = (await http.get("/_inspect/media")).json()["media"]
    assert media["duration_seconds"] == pytest.approx(6, abs=0.1)
    assert media["dimensions"] == [540, 960]


async def test_spotlight_takes_no_image(http: httpx.AsyncClient, tmp_path: Path) -> None:
    media_id = await uploaded(http, jpeg(tmp_path))
    body = {"media_id": media_id, "locale": "en_US"}
    answer = await http.post(f"/v1/public_profiles/{PROFILE}/spotlights", json=body, headers=AUTH)
    refused(answer, 400, "INVALID_REQUEST")


async def test_a_media_is_posted_once(http: httpx.AsyncClient, tmp_path: Path) -> None:
    media_id = await uploaded(http, jpeg(tmp_path))
    path = f"/v1/public_profiles/{PROFILE}/stories"
    assert (await http.post(path, json={"media_id": media_id}, headers=AUTH)).status_code == 200
    again = await http.post(path, json={"media_id": media_id}, headers=AUTH)
    refused(again, 400, "MEDIA_POSTING_ALREADY_IN_PROGRESS")


async def test_a_file_under_another_key_does_not_decrypt(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    made = await container(http)
    part = sealed(jpeg(tmp_path), key=os.urandom(32))
    fields = {"action": "ADD", "part_number": "1"}
    await http.post(made["add_path"], data=fields, files={"file": ("p", part)}, headers=AUTH)
    done = await http.post(made["finalize_path"], data={"action": "FINALIZE"}, headers=AUTH)
    assert done.json()["error_code"] in ("MEDIA_DECRYPTION_FAILED", "INVALID_MEDIA")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"type": "GIF"}, "type"),
        ({"key": base64.b64encode(b"short").decode()}, "key"),
        ({"iv": "not base64!"}, "iv"),
        ({"name": ""}, "name"),
    ],
)
async def test_a_container_snapchat_would_refuse(
    http: httpx.AsyncClient, body: dict[str, Any], why: str
) -> None:
    keys = {"key": base64.b64encode(KEY).decode(), "iv": base64.b64encode(IV).decode()}
    sent = {"type": "IMAGE", "name": "n", **keys, **body}
    answer = await http.post(f"/v1/public_profiles/{PROFILE}/media", json=sent, headers=AUTH)
    assert why in refused(answer, 400, "INVALID_REQUEST")["display_message"]


async def test_parts_snapchat_would_refuse(http: httpx.AsyncClient) -> None:
    await http.post("/_config", json={"part_max_bytes": 64})
    made = await container(http)
    for number, size in (("1", 80), ("1", 17), ("0", 16)):
        fields = {"action": "ADD", "part_number": number}
        part = {"file": ("p", os.urandom(size))}
        refused(await http.post(made["add_path"], data=fields, files=part, headers=AUTH), 400,
                "INVALID_REQUEST")  # fmt: skip
    done = await http.post(made["finalize_path"], data={"action": "FINALIZE"}, headers=AUTH)
    refused(done, 400, "MEDIA_INCOMPLETE")


async def test_an_old_container_has_expired(http: httpx.AsyncClient, tmp_path: Path) -> None:
    media_id = await uploaded(http, jpeg(tmp_path))
    await http.post("/_config", json={"media_lifetime_secs": 0})
    answer = await http.post(f"/v1/public_profiles/{PROFILE}/stories", json={"media_id": media_id},
                             headers=AUTH)  # fmt: skip
    refused(answer, 400, "MEDIA_EXPIRED")


async def test_another_profile_is_forbidden(http: httpx.AsyncClient) -> None:
    other = "/v1/public_profiles/11111111-2222-3333-4444-555555555555/media"
    refused(await http.post(other, json={}, headers=AUTH), 403, "FORBIDDEN")


async def test_bad_bodies_get_the_envelope(http: httpx.AsyncClient) -> None:
    path = f"/v1/public_profiles/{PROFILE}/stories"
    answer = await http.post(path, content=b"not json", headers=AUTH)
    refused(answer, 400, "INVALID_REQUEST")
    refused(await http.get("/v1/nowhere", headers=AUTH), 404, "NOT_FOUND")


async def test_faults_answer_in_the_envelope(http: httpx.AsyncClient) -> None:
    await http.post("/_faults", json={"on": "profile", "error_code": "envelope_error"})
    answer = await http.get("/v1/public_profiles/my_profile", headers=AUTH)
    refused(answer, 200, "INVALID_REQUEST")
    await http.post("/_faults", json={"on": "profile", "status": 429, "retry_after": 3})
    limited = await http.get("/v1/public_profiles/my_profile", headers=AUTH)
    refused(limited, 429, "RATE_LIMIT_EXCEEDED")
    assert limited.headers["retry-after"] == "3"
    assert (await http.get("/_inspect/calls")).json()["profile"] == 2


async def test_the_token_endpoint(http: httpx.AsyncClient) -> None:
    await http.post("/_users", json={"username": "r_sbx", "refresh_token": "r-1"})
    form = {"grant_type": "refresh_token", "refresh_token": "r-1"}
    answer = await http.post("/login/oauth2/access_token", data=form)
    tokens = answer.json()
    assert (tokens["expires_in"], tokens["refresh_token"]) == (3600, "r-1")
    me = await http.get("/v1/public_profiles/my_profile",
                        headers={"Authorization": f"Bearer {tokens['access_token']}"})  # fmt: skip
    assert me.json()["public_profile"]["snap_user_name"] == "r_sbx"
    bad = await http.post("/login/oauth2/access_token", data={"grant_type": "password"})
    assert bad.status_code == 400 and bad.json()["error"] == "unsupported_grant_type"
    code = {"grant_type": "authorization_code", "code": "nope", "client_id": "a",
            "client_secret": "b", "redirect_uri": "https://x.test/cb"}  # fmt: skip
    wrong = await http.post("/login/oauth2/access_token", data=code)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


async def test_the_consent_page(http: httpx.AsyncClient) -> None:
    query = {"client_id": "soku", "redirect_uri": "https://soku.test/cb", "response_type": "code",
             "scope": "snapchat-profile-api", "state": "s1"}  # fmt: skip
    page = await http.get("/login/oauth2/authorize", params=query)
    assert page.status_code == 200 and "snapchat-profile-api" in page.text
    answer = await http.post("/login/oauth2/authorize", data={**query, "decision": "allow",
                                                               "login": "dee_sbx"})  # fmt: skip
    assert answer.status_code == 303 and "code=" in answer.headers["location"]
