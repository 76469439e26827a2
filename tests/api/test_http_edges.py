"""What an integrator's HTTP client may send beyond the page's curl examples."""

from __future__ import annotations

import base64
import gzip
import json

import httpx
import pytest

from soku.app import create_app
from soku.context import AppContext
from soku.errors import envelope
from soku.http import EnvelopeResponse
from tests.api.helpers import assert_error, raw_exchange, text_post
from tests.conftest import Caller

pytestmark = pytest.mark.asyncio

POST_ID = "6f1c2a52-1d7e-4a53-9b59-3f5c0c8f2e11"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/posts", "GET, POST"),
        ("PUT", f"/v1/posts/{POST_ID}", "DELETE, GET, PATCH"),
        ("POST", f"/v1/posts/{POST_ID}", "DELETE, GET, PATCH"),
        ("GET", f"/v1/posts/{POST_ID}/retry", "POST"),
        ("PUT", f"/v1/media/{POST_ID}", "DELETE, GET"),
    ],
)
async def test_405_allow_names_every_method_of_the_path(
    client: httpx.AsyncClient, caller: Caller, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path, headers=caller.headers)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed


def _cursor(created_at: str) -> str:
    raw = json.dumps([created_at, POST_ID]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("created_at", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
async def test_tampered_cursor_out_of_range_is_400(
    client: httpx.AsyncClient, caller: Caller, created_at: str
) -> None:
    response = await client.get(
        "/v1/posts", params={"cursor": _cursor(created_at)}, headers=caller.headers
    )
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == ("cursor", "invalid")


@pytest.mark.parametrize(
    ("name", "value"), [("from", "0001-01-01T00:00:00+01:00"), ("to", "9999-12-31T23:59:59-01:00")]
)
async def test_filter_time_out_of_range_in_utc_is_400(
    client: httpx.AsyncClient, caller: Caller, name: str, value: str
) -> None:
    response = await client.get("/v1/posts", params={name: value}, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == (name, "out_of_range")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/posts", "application/json"),
        ("/v1/posts/validate", "application/json"),
        ("/v1/media", "application/json"),
        ("/v1/media/upload", "multipart/form-data; boundary=x"),
    ],
)
async def test_compressed_body_is_415_naming_the_coding(
    client: httpx.AsyncClient, caller: Caller, path: str, content_type: str
) -> None:
    headers = {**caller.headers, "content-type": content_type, "content-encoding": "gzip"}
    body = gzip.compress(json.dumps(text_post("x")).encode())
    response = await client.post(path, content=body, headers=headers)
    error = assert_error(response, 415, "unsupported_media_type")
    assert "Content-Encoding gzip" in error["message"]
    assert error["details"] == {"contentEncoding": "gzip"}
    assert response.headers["accept-encoding"] == "identity"


async def test_identity_coding_is_the_plain_body(client: httpx.AsyncClient, caller: Caller) -> None:
    headers = {**caller.headers, "content-type": "application/json", "content-encoding": "identity"}
    body = json.dumps(text_post("x", text="identity coding")).encode()
    response = await client.post("/v1/posts", content=body, headers=headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("padding", [" ", "\t", "  \t "])
async def test_key_with_trailing_whitespace_is_the_key(
    backend: AppContext, caller: Caller, padding: str
) -> None:
    headers = {"soku-api-key": caller.key + padding}
    status, _, body = await raw_exchange(create_app(ctx=backend), "GET", "/v1/posts", headers)
    assert status == 200, body


async def test_a_media_url_with_a_lone_surrogate_is_refused_as_in_a_post(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    raw = b'{"url": "https://user:pw@example.com/\\ud800.jpg"}'
    headers = {**caller.headers, "content-type": "application/json"}
    response = await client.post("/v1/media", content=raw, headers=headers)
    error = assert_error(response, 400, "validation_error")
    assert [(p["field"], p["reason"]) for p in error["details"]["errors"]] == [
        ("url", "invalid_url")
    ]


async def test_an_envelope_echoing_a_lone_surrogate_is_written_with_escapes() -> None:
    """UTF-8 cannot carry a lone surrogate; an error that repeats one must still be sent."""
    body = envelope(400, "upload_failed", "https://example.com/\ud800.jpg failed", "req_1")
    raw = EnvelopeResponse(body, status_code=400).body
    assert json.loads(raw)["error"]["message"] == "https://example.com/\ud800.jpg failed"


async def test_unreadable_multipart_is_a_validation_error(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    headers = {**caller.headers, "content-type": "multipart/form-data"}  # no boundary
    response = await client.post("/v1/media/upload", content=b"--x--", headers=headers)
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == ("body", "invalid_body")
    assert "boundary" in error["message"]


async def test_upload_of_a_text_field_says_a_file_is_wanted(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    text_part = {"file": (None, b"hello")}  # a form field without a filename
    response = await client.post("/v1/media/upload", files=text_part, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert (error["details"]["field"], error["details"]["reason"]) == ("file", "invalid_type")
    assert "class" not in error["message"] and "UploadFile" not in error["message"]


@pytest.mark.parametrize(
    ("path", "hint"),
    [("/v1/posts/", "/v1/posts"), (f"/v1/posts/{POST_ID}//", f"/v1/posts/{POST_ID}")],
)
async def test_trailing_slash_is_a_404_naming_the_path(
    client: httpx.AsyncClient, caller: Caller, path: str, hint: str
) -> None:
    """Not a redirect: its absolute Location could send the client (and its key) to http://."""
    response = await client.get(path, headers=caller.headers)
    error = assert_error(response, 404, "not_found")
    assert "location" not in response.headers
    assert error["message"] == f"No route {path}. Did you mean {hint}, without the trailing slash?"
    elsewhere = assert_error(
        await client.get("/v2/posts/", headers=caller.headers), 404, "not_found"
    )
    assert elsewhere["message"] == "No route /v2/posts/."


async def test_listing_refuses_unknown_parameters(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """A typo in a filter would otherwise list every post."""
    response = await client.get(
        "/v1/posts", params={"stauts": "failed", "offset": "20"}, headers=caller.headers
    )
    error = assert_error(response, 400, "validation_error")
    problems = {(p["field"], p["reason"]) for p in error["details"]["errors"]}
    assert problems == {("stauts", "unknown_field"), ("offset", "unknown_field")}
    assert "status, platform, from, to, limit, cursor" in error["details"]["errors"][0]["message"]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"limit": "101"}, "limit", "out_of_range"),
        ({"limit": "ten"}, "limit", "invalid_type"),
        ({"status": "done"}, "status", "invalid_value"),
        ({"from": "2026-13-01"}, "from", "invalid_format"),
        ({"cursor": "c" * 201}, "cursor", "too_long"),
    ],
)
async def test_listing_parameter_problems_use_short_reasons(
    client: httpx.AsyncClient, caller: Caller, params: dict[str, str], field: str, reason: str
) -> None:
    response = await client.get("/v1/posts", params=params, headers=caller.headers)
    error = assert_error(response, 400, "validation_error")
    assert [(p["field"], p["reason"]) for p in error["details"]["errors"]] == [(field, reason)]


async def test_two_different_keys_are_refused(client: httpx.AsyncClient, caller: Caller) -> None:
    """Which one would count? Neither: the request is refused. The same key twice is one key."""
    key = caller.headers["soku-api-key"]
    twice = [("soku-api-key", key), ("soku-api-key", "sk_live_other")]
    error = assert_error(await client.get("/v1/posts", headers=twice), 401, "unauthorized")
    assert error["message"].startswith("Several soku-api-key headers")
    same = [("soku-api-key", key), ("soku-api-key", key + " ")]
    assert (await client.get("/v1/posts", headers=same)).status_code == 200
