"""Snapchat's sign-in against its fake over real HTTP: the authorize URL, the code exchanged
at the fake's token endpoint (client id and secret in the form), then `identify_snapchat`
asking `my_profile` which Public Profile the token is for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from soku.integrations.oauth_errors import ConnectFailed
from soku.integrations.oauth_exchange import ClientApp, authorize_url, exchange_code
from soku.integrations.oauth_identity import identify_snapchat
from soku.platforms import snapchat
from soku.platforms.base import ConnectorTarget, OAuthCall
from soku.sandbox.snapchat import create_snapchat_fake
from tests.asgi_server import serving

REDIRECT = "https://soku.test/dashboard/integrations/snapchat/callback"
APP = ClientApp("soku-sandbox", "secret")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with (
        serving(create_snapchat_fake()) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield url, http


async def signed_in(url: str, http: httpx.AsyncClient, login: str) -> dict[str, object]:
    """The whole sign-in at the fake: consent, then the code exchanged as the flow does."""
    spec = snapchat.OAUTH
    endpoints = spec.endpoints(ConnectorTarget(url))
    asked = await authorize_url(
        spec, endpoints, APP, redirect_uri=REDIRECT, state="st", code_verifier=None
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(asked).query).items()}
    assert (query["response_type"], query["scope"]) == ("code", "snapchat-profile-api")
    assert asked.startswith(f"{url}/login/oauth2/authorize?")
    form = {**query, "decision": "allow", "login": login}
    answer = await http.post(endpoints.authorize_url, data=form)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    tokens = await exchange_code(
        spec, endpoints, APP, label="Snapchat", redirect_uri=REDIRECT, code=code,
        code_verifier=None, http_timeout=10,
    )  # fmt: skip
    return dict(tokens)


def call_for(url: str, http: httpx.AsyncClient) -> OAuthCall:
    return OAuthCall(snapchat.OAUTH.endpoints(ConnectorTarget(url)), APP.client_id, "secret", http)


async def test_the_public_profile_of_the_sign_in(fake: tuple[str, httpx.AsyncClient]) -> None:
    url, http = fake
    tokens = await signed_in(url, http, "ada_sbx")
    [found] = (await identify_snapchat(call_for(url, http), tokens)).found
    profiles = (await http.get("/_inspect/calls")).json()
    assert (profiles["token"], profiles["profile"]) == (1, 1)
    assert found.username == "ada_sbx" and len(found.platform_user_id) == 36  # a UUID
    assert found.access_token == tokens["access_token"]
    assert found.refresh_token == tokens["refresh_token"] and found.expires_at is not None
    assert found.scopes == "snapchat-profile-api"


async def test_the_fake_wants_the_app_secret(fake: tuple[str, httpx.AsyncClient]) -> None:
    url, http = fake
    config = {"client_id": "soku-sandbox", "client_secret": "other"}
    assert (await http.post("/_config", json=config)).status_code == 200
    with pytest.raises(ConnectFailed) as refused:
        await signed_in(url, http, "ada_sbx")
    assert "Snapchat" in refused.value.message and "secret" not in refused.value.message.lower()


async def test_a_refused_profile_call_is_said(fake: tuple[str, httpx.AsyncClient]) -> None:
    url, http = fake
    tokens = await signed_in(url, http, "bob_sbx")
    assert (await http.post("/_faults", json={"on": "profile", "status": 403})).status_code == 201
    with pytest.raises(ConnectFailed) as refused:
        await identify_snapchat(call_for(url, http), tokens)
    assert "Snapchat" in refused.value.message
    assert str(tokens["access_token"]) not in refused.value.message


async def test_an_envelope_error_in_a_200_is_no_profile(
    fake: tuple[str, httpx.AsyncClient],
) -> None:
    url, http = fake
    tokens = await signed_in(url, http, "cy_sbx")
    fault = {"on": "profile", "error_code": "envelope_error"}
    assert (await http.post("/_faults", json=fault)).status_code == 201
    with pytest.raises(ConnectFailed) as refused:
        await identify_snapchat(call_for(url, http), tokens)
    assert "Public Profile" in refused.value.message
