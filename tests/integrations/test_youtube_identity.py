"""YouTube's "who is this" step (`identify_youtube`) against the YouTube fake over real HTTP:
the code exchanged at the fake's token endpoint, then the channel of the token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from soku.integrations.oauth_errors import ConnectFailed
from soku.integrations.oauth_exchange import ClientApp, authorize_url, exchange_code
from soku.integrations.oauth_identity import identify_youtube
from soku.platforms import youtube
from soku.platforms.base import ConnectorTarget, OAuthCall
from soku.sandbox.youtube import create_youtube_fake
from tests.asgi_server import serving

REDIRECT = "https://soku.test/dashboard/integrations/youtube/callback"
APP = ClientApp("soku-sandbox", "secret")


@pytest.fixture
async def fake() -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    async with (
        serving(create_youtube_fake()) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield url, http


async def signed_in(url: str, http: httpx.AsyncClient, login: str) -> dict[str, object]:
    """The whole sign-in at the fake: consent, then the code exchanged as the flow does."""
    spec = youtube.OAUTH
    endpoints = spec.endpoints(ConnectorTarget(url))
    asked = await authorize_url(
        spec, endpoints, APP, redirect_uri=REDIRECT, state="st", code_verifier=None
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(asked).query).items()}
    answer = await http.post(endpoints.authorize_url, data={**query, "decision": "allow",
                                                            "login": login})  # fmt: skip
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    tokens = await exchange_code(
        spec, endpoints, APP, label="YouTube", redirect_uri=REDIRECT, code=code,
        code_verifier=None, http_timeout=10,
    )  # fmt: skip
    return dict(tokens)


async def test_the_channel_of_the_sign_in(fake: tuple[str, httpx.AsyncClient]) -> None:
    url, http = fake
    tokens = await signed_in(url, http, "ada_sbx")
    call = OAuthCall(youtube.OAUTH.endpoints(ConnectorTarget(url)), APP.client_id, "secret", http)
    [found] = (await identify_youtube(call, tokens)).found
    assert found.platform_user_id.startswith("UC") and found.username == "@adasbx"
    assert found.access_token == tokens["access_token"]
    assert found.refresh_token == tokens["refresh_token"] and found.expires_at is not None
    state = (await http.get("/_inspect/calls")).json()
    assert (state["token"], state["channels"]) == (1, 1)


async def test_a_refused_channel_call_is_said(fake: tuple[str, httpx.AsyncClient]) -> None:
    url, http = fake
    tokens = await signed_in(url, http, "bob_sbx")
    assert (await http.post("/_faults", json={"on": "channels", "status": 403})).status_code == 201
    call = OAuthCall(youtube.OAUTH.endpoints(ConnectorTarget(url)), APP.client_id, "secret", http)
    with pytest.raises(ConnectFailed) as refused:
        await identify_youtube(call, tokens)
    assert "YouTube" in refused.value.message
    assert str(tokens["access_token"]) not in refused.value.message
