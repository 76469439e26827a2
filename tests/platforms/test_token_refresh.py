"""The refresh-token grant as a connector asks it: its app's credentials, the token's lifetime."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qs

import httpx
import pytest

from soku.platforms.connector import AccountAccess, ErrorKind, PlatformError
from soku.platforms.token_refresh import RefreshGrant, expires_at, refresh_tokens


@dataclass
class App:
    client_id: str | None
    client_secret: str | None


def account(refresh_token: str | None) -> AccountAccess:
    return AccountAccess("demo", "demo_main", "123", "someone", "t0ken", refresh_token, None, False)


def refused(response: httpx.Response) -> PlatformError:
    return PlatformError(ErrorKind.reauth_required, "refused", "refused")


def mapped(failure: httpx.Response | httpx.HTTPError) -> PlatformError:
    return PlatformError(ErrorKind.server_error, "mapped", "mapped")


GRANT = RefreshGrant("Demo", mapped, refused, client_id_name="client_key")
URL = "http://demo.test/token"


async def test_the_grant_is_asked_as_the_connectors_app() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "new", "expires_in": 60})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        tokens = await refresh_tokens(GRANT, URL, App("k", "s"), account("r"), http)
    form = parse_qs(seen[0].content.decode())
    assert form == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["r"],
        "client_key": ["k"],
        "client_secret": ["s"],
    }
    assert (tokens.access_token, tokens.refresh_token) == ("new", "r")


async def test_an_account_without_a_refresh_token_is_connected_again() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as caught:
            await refresh_tokens(GRANT, URL, App(None, None), account(None), http)
    assert caught.value.message == "The Demo account has no refresh token: connect it again."


def test_the_lifetime_is_read_only_from_a_number_of_seconds() -> None:
    before = dt.datetime.now(dt.UTC)
    at = expires_at({"expires_in": 3600})
    assert at is not None and before + dt.timedelta(seconds=3599) < at
    assert at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3600)
    for value in (None, True, "3600"):
        assert expires_at({"expires_in": value}) is None
