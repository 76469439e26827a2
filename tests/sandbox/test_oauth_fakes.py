"""The fakes' sign-in pages and code grants, checked against each platform's "Auth" section:
a code works once, for its client and redirect URI, within its lifetime, and (X) only with
the PKCE verifier of its challenge; the answers have the platform's shapes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from soku.sandbox.facebook import create_facebook_fake
from soku.sandbox.instagram import create_instagram_fake
from soku.sandbox.linkedin import create_linkedin_fake
from soku.sandbox.threads import create_threads_fake
from soku.sandbox.x import create_x_fake

REDIRECT = "https://soku.test/dashboard/integrations/x/callback"
VERIFIER = "v" * 64
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode().rstrip("=")
)
AUTHORIZE = {
    "x": "/i/oauth2/authorize",
    "linkedin": "/oauth/v2/authorization",
    "threads": "/oauth/authorize",
    "facebook": "/v25.0/dialog/oauth",
    "instagram": "/oauth/authorize",
}
MAKERS = {
    "x": create_x_fake,
    "linkedin": create_linkedin_fake,
    "threads": create_threads_fake,
    "facebook": create_facebook_fake,
    "instagram": create_instagram_fake,
}


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=MAKERS[request.param]())
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as http:
        yield http


async def code_from(
    fake: httpx.AsyncClient, platform: str, decision: str = "allow", **extra: str
) -> dict[str, list[str]]:
    ask = {"response_type": "code", "client_id": "app", "redirect_uri": REDIRECT,
           "state": "st-1", "scope": "a b", **extra}  # fmt: skip
    if platform == "x":
        ask.update(code_challenge=CHALLENGE, code_challenge_method="S256")
    page = await fake.get(AUTHORIZE[platform], params=ask)
    assert page.status_code == 200, page.text
    assert "allow Soku to post as" in page.text and 'value="st-1"' in page.text
    answer = await fake.post(
        AUTHORIZE[platform], data={**ask, "decision": decision, "login": "someone"}
    )
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def x_form(code: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER, "client_id": "app", **extra}  # fmt: skip


@pytest.mark.parametrize("fake", ["x"], indirect=True)
async def test_x_code_with_pkce(fake: httpx.AsyncClient) -> None:
    code = (await code_from(fake, "x"))["code"][0]
    wrong = await fake.post("/2/oauth2/token", data=x_form(code, code_verifier="w" * 64))
    assert wrong.status_code == 400 and "code verifier" in wrong.json()["error_description"]
    code = (await code_from(fake, "x"))["code"][0]
    tokens = await fake.post("/2/oauth2/token", data=x_form(code))
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert set(body) == {"token_type", "expires_in", "access_token", "scope"}  # no offline.access
    me = await fake.get("/2/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["data"]["username"] == "someone"
    replay = await fake.post("/2/oauth2/token", data=x_form(code))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_request"


@pytest.mark.parametrize("fake", ["x"], indirect=True)
async def test_x_code_lifetime_client_and_redirect(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"code_lifetime_secs": 0})
    code = (await code_from(fake, "x", scope="tweet.read offline.access"))["code"][0]
    late = await fake.post("/2/oauth2/token", data=x_form(code))
    assert "expired" in late.json()["error_description"]
    await fake.post("/_config", json={"code_lifetime_secs": 30})
    code = (await code_from(fake, "x", scope="tweet.read offline.access"))["code"][0]
    moved = await fake.post("/2/oauth2/token", data=x_form(code, redirect_uri=REDIRECT + "x"))
    assert "redirect uri" in moved.json()["error_description"]
    code = (await code_from(fake, "x", scope="tweet.read offline.access"))["code"][0]
    basic = base64.b64encode(b"app:secret").decode()
    form = {k: v for k, v in x_form(code).items() if k != "client_id"}
    tokens = await fake.post(
        "/2/oauth2/token", data=form, headers={"Authorization": f"Basic {basic}"}
    )
    assert "refresh_token" in tokens.json()  # offline.access asked for
    no_pkce = await fake.get(AUTHORIZE["x"], params={"response_type": "code", "client_id": "app",
                                                     "redirect_uri": REDIRECT})  # fmt: skip
    assert no_pkce.status_code == 400 and "code_challenge" in no_pkce.text


@pytest.mark.parametrize(
    "fake", ["x", "linkedin", "threads", "facebook", "instagram"], indirect=True
)
async def test_cancel_sends_access_denied(fake: httpx.AsyncClient, request: Any) -> None:
    platform = request.node.callspec.params["fake"]
    query = await code_from(fake, platform, decision="cancel")
    assert query["error"] == ["access_denied"] and query["state"] == ["st-1"]
    assert "code" not in query


@pytest.mark.parametrize("fake", ["threads"], indirect=True)
async def test_threads_code_then_long_lived(fake: httpx.AsyncClient) -> None:
    code = (await code_from(fake, "threads"))["code"][0]
    form = {"client_id": "app", "client_secret": "s", "code": code,
            "grant_type": "authorization_code", "redirect_uri": REDIRECT}  # fmt: skip
    short = (await fake.post("/oauth/access_token", data=form)).json()
    assert set(short) == {"access_token", "user_id"}
    replay = await fake.post("/oauth/access_token", data=form)
    assert replay.status_code == 400 and replay.json()["error"]["code"] == 100
    params = {"grant_type": "th_exchange_token", "client_secret": "s",
              "access_token": short["access_token"]}  # fmt: skip
    lasting = (await fake.get("/access_token", params=params)).json()
    assert lasting["token_type"] == "bearer" and lasting["expires_in"] == 5183944
    me = await fake.get("/v1.0/me", params={"fields": "id,username",
                                              "access_token": lasting["access_token"]})  # fmt: skip
    assert me.json() == {"id": short["user_id"], "username": "someone"}
    unknown = await fake.get("/access_token", params={**params, "access_token": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == 190


@pytest.mark.parametrize("fake", ["facebook"], indirect=True)
async def test_facebook_code_long_lived_and_pages(fake: httpx.AsyncClient) -> None:
    await fake.post("/_config", json={"pages_per_user": 2})
    code = (await code_from(fake, "facebook"))["code"][0]
    params = {"client_id": "app", "client_secret": "s", "redirect_uri": REDIRECT, "code": code}
    moved = await fake.get("/v25.0/oauth/access_token",
                           params={**params, "redirect_uri": REDIRECT + "/"})  # fmt: skip
    assert moved.json()["error"]["error_subcode"] == 36008
    code = (await code_from(fake, "facebook"))["code"][0]
    short = (await fake.get("/v25.0/oauth/access_token", params={**params, "code": code})).json()
    assert short["token_type"] == "bearer" and short["access_token"]
    exchange = {"grant_type": "fb_exchange_token", "client_id": "app", "client_secret": "s",
                "fb_exchange_token": short["access_token"]}  # fmt: skip
    lasting = (await fake.get("/v25.0/oauth/access_token", params=exchange)).json()
    assert lasting["expires_in"] == 5183944
    pages = await fake.get("/v25.0/me/accounts", params={"access_token": lasting["access_token"]})
    listed = pages.json()["data"]
    assert len(listed) == 2 and all("CREATE_CONTENT" in page["tasks"] for page in listed)
    no_secret = await fake.get(
        "/v25.0/oauth/access_token", params={**exchange, "client_secret": ""}
    )
    assert no_secret.json()["error"]["code"] == 1
