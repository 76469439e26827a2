"""How a connect flow reads the platform's answers: Facebook's Page list answer after answer,
only ever at the configured Graph URL, and no answer read past its size cap."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from soku.integrations import oauth_identity
from soku.integrations.oauth_answers import MAX_ANSWER_BYTES, capped_hooks
from soku.integrations.oauth_errors import ConnectFailed
from soku.integrations.oauth_identity import call_json
from soku.platforms.base import OAuthCall, OAuthEndpoints
from tests.integrations.conftest import Site, csrf_of, problem_of

PAGE_ID = re.compile(r'name="page_id" value="([0-9]+)"')
ENDPOINTS = OAuthEndpoints("https://graph.test/auth", "https://graph.test/token",
                           "https://graph.test/v25.0")  # fmt: skip
TOO_LARGE = MAX_ANSWER_BYTES + 1024


async def test_every_facebook_page_is_offered_past_the_first_answer(site: Site) -> None:
    await site.config("facebook", pages_per_user=250)
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    chooser = await browser.connect("facebook", "brand", login="many.pages")
    assert chooser.status_code == 200, chooser.text
    pages = PAGE_ID.findall(chooser.text)
    assert len(pages) == len(set(pages)) == 250
    assert "many.pages sandbox Page 250" in chooser.text
    state = re.search(r'name="state" value="([^"]+)"', chooser.text)
    assert state
    form = {"csrf": csrf_of(chooser.text), "state": state[1], "page_id": pages[-1]}
    done = await browser.http.post("/dashboard/integrations/facebook/choose", data=form)
    assert done.status_code == 303, done.text  # the Page of the third answer, listed again
    account = await site.account(caller, "facebook", "brand")
    assert account is not None and account.platform_user_id == pages[-1]


async def test_a_page_list_past_the_bound_is_a_message(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth_identity, "MAX_PAGE_ANSWERS", 2)
    await site.config("facebook", pages_per_user=201)
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    page = await browser.connect("facebook", "brand", login="too.many")
    assert page.status_code == 502, page.text
    assert "more than 200 Pages" in problem_of(page.text)
    assert await site.account(caller, "facebook", "brand") is None


async def test_the_next_page_is_asked_at_the_configured_url() -> None:
    """`paging.next` naming another host is not followed: its `after` cursor is sent to the
    Graph URL the flow is configured with."""
    asked: list[httpx.URL] = []

    def graph(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        after = request.url.params.get("after")
        number = 1 if after is None else int(after) + 1
        entry = {"id": str(number), "name": f"Page {number}", "access_token": f"page-{number}"}
        paging = {"cursors": {"after": str(number)}}
        if number < 3:
            paging["next"] = f"https://elsewhere.example/v25.0/me/accounts?after={number}"
        return httpx.Response(200, json={"data": [entry], "paging": paging})

    async with httpx.AsyncClient(transport=httpx.MockTransport(graph)) as http:
        found = await oauth_identity.facebook_pages(OAuthCall(ENDPOINTS, "id", "s", http), "u")
    assert [page.platform_user_id for page in found.found] == ["1", "2", "3"]
    assert {url.host for url in asked} == {"graph.test"}
    assert [url.params.get("after") for url in asked] == [None, "1", "2"]


@pytest.mark.parametrize(
    ("padded", "step"),
    [("token", "exchanging the sign-in for a token"), ("accounts", "listing your Pages")],
)
async def test_an_answer_past_the_cap_is_a_message(site: Site, padded: str, step: str) -> None:
    """The token endpoint's answer (read by Authlib) and the Page list (`call_json`)."""
    await site.config("facebook", padding={padded: TOO_LARGE})
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    page = await browser.connect("facebook", "brand")
    assert page.status_code == 502, page.text
    said = problem_of(page.text)
    assert f"Facebook&#39;s answer while {step} was larger than 1 MiB" in said, said
    assert await site.account(caller, "facebook", "brand") is None


async def test_an_answer_under_the_cap_is_read(site: Site) -> None:
    await site.config("facebook", padding={"token": 100_000, "accounts": 100_000})
    caller = await site.env.caller([])
    browser = await site.browser(caller)
    assert (await browser.connect("facebook", "brand")).status_code == 303


async def _streamed(size: int) -> AsyncIterator[bytes]:
    yield b'{"padding": "'
    for _ in range(size // 65536 + 1):
        yield b"x" * 65536
    yield b'"}'


def _unread_answer(request: httpx.Request) -> httpx.Response:
    """Past the cap with no Content-Length (chunked), or compressed though not asked to be."""
    assert request.headers["accept-encoding"] == "identity"
    if request.url.path.endswith("/streamed"):
        return httpx.Response(200, content=_streamed(TOO_LARGE))
    body = gzip.compress(json.dumps({"data": []}).encode())
    return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/streamed", "larger than 1 MiB"), ("/gzipped", "compressed (gzip)")],
)
async def test_an_answer_is_read_uncompressed_and_only_up_to_the_cap(
    path: str, reason: str
) -> None:
    transport = httpx.MockTransport(_unread_answer)
    async with httpx.AsyncClient(transport=transport, event_hooks=capped_hooks()) as http:
        call = OAuthCall(ENDPOINTS, "id", "s", http)
        with pytest.raises(ConnectFailed) as failed:
            await call_json(call, "Facebook", "listing your Pages", f"https://graph.test{path}")
    assert reason in failed.value.message and failed.value.status == 502
