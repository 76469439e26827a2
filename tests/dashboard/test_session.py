"""Signing in to the dashboard with an API key, the session cookie, CSRF and origin checks."""

from __future__ import annotations

import httpx

from soku import operations
from soku.context import AppContext
from tests.conftest import make_caller
from tests.dashboard.conftest import csrf_of, sign_in


async def test_pages_ask_for_sign_in_and_keep_where_you_were_going(
    browser: httpx.AsyncClient,
) -> None:
    answer = await browser.get("/dashboard/account")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Faccount"


async def test_sign_in_opens_a_session_on_the_dashboard_only(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    page = await browser.get("/dashboard/login")
    assert page.status_code == 200
    answer = await browser.post(
        "/dashboard/login",
        data={"key": caller.key, "csrf": csrf_of(page.text), "next": "/dashboard/account"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/account"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if "soku_session=" in h)
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/dashboard" in lowered
    account = await browser.get("/dashboard/account")
    assert account.status_code == 200
    assert caller.email in account.text and "unlimited" in account.text
    # the session is no API key
    assert (await browser.get("/v1/posts")).status_code == 401


async def test_a_key_with_spaces_around_it_signs_in(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, f"  {caller.key}\n")


async def test_unknown_and_revoked_keys_are_refused_plainly(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    async with backend.db.transaction() as session:
        await operations.revoke_key(session, caller.key)
    for key, status, message in (
        ("sk_live_nothing", 401, "No such API key."),
        (caller.key, 401, "This API key was revoked."),
        ("", 400, "Paste one of your API keys"),
    ):
        page = await browser.get("/dashboard/login")
        answer = await browser.post(
            "/dashboard/login", data={"key": key, "csrf": csrf_of(page.text)}
        )
        assert answer.status_code == status
        assert message in answer.text
        assert "soku_session=" not in answer.headers.get("set-cookie", "")


async def test_the_sign_in_form_needs_its_own_token(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await browser.get("/dashboard/login")
    answer = await browser.post("/dashboard/login", data={"key": caller.key, "csrf": "guess"})
    assert answer.status_code == 403
    assert "expired" in answer.text
    browser.cookies.clear()  # a cross-site form: no sign-in cookie comes with it
    answer = await browser.post("/dashboard/login", data={"key": caller.key, "csrf": "x"})
    assert answer.status_code == 403


async def test_revoking_the_key_ends_its_sessions(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    async with backend.db.transaction() as session:
        await operations.revoke_key(session, caller.key)
    answer = await browser.get("/dashboard/account")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("&reason=revoked")
    page = await browser.get(answer.headers["location"])
    assert "The key this session was opened with was revoked" in page.text


async def test_a_forged_or_altered_cookie_is_no_session(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    await sign_in(browser, caller.key)
    real = browser.cookies["soku_session"]
    browser.cookies.clear()
    browser.cookies.set("soku_session", real[:-2] + ("AA" if real[-2:] != "AA" else "BB"))
    answer = await browser.get("/dashboard/account")
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("&reason=ended")


async def test_the_sign_in_page_shows_no_text_a_link_brings(browser: httpx.AsyncClient) -> None:
    lure = "Support: your key has leaked, paste it at key-check.example instead."
    page = await browser.get("/dashboard/login", params={"reason": lure})
    assert page.status_code == 200
    assert "key-check.example" not in page.text and 'class="problem"' not in page.text
    known = await browser.get("/dashboard/login", params={"reason": "signed_out"})
    assert '<p class="problem" role="alert">Signed out.</p>' in known.text


async def test_sign_out_needs_the_form_token_and_ends_the_session(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    refused = await browser.post("/dashboard/logout", data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert "stale" in refused.text
    assert (await browser.get("/dashboard/account")).status_code == 200
    done = await browser.post("/dashboard/logout", data={"csrf": csrf})
    assert done.status_code == 303
    assert (await browser.get("/dashboard/account")).status_code == 303


async def test_a_form_from_another_site_is_refused(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    answer = await browser.post(
        "/dashboard/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert "another site" in answer.text
    assert (await browser.get("/dashboard/account")).status_code == 200
    same = await browser.post(
        "/dashboard/logout", data={"csrf": csrf}, headers={"Origin": "http://soku.test"}
    )
    assert same.status_code == 303


async def test_after_sign_in_only_dashboard_pages_are_followed(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    for wanted in ("https://evil.example/", "//evil.example/dashboard", "/v1/posts", "/\\evil"):
        page = await browser.get("/dashboard/login")
        answer = await browser.post(
            "/dashboard/login",
            data={"key": caller.key, "csrf": csrf_of(page.text), "next": wanted},
        )
        assert answer.headers["location"] == "/dashboard", wanted


async def test_pages_forbid_framing_and_scripts_and_bad_bodies_are_not_500(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/dashboard/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    answer = await browser.post("/dashboard/login", json={"key": "x"})
    assert answer.status_code == 415
    assert "x-www-form-urlencoded" in answer.text
    assert (await browser.get("/dashboard/static/soku.css")).status_code == 200


async def test_an_oversized_form_a_missing_page_and_a_wrong_method_answer_as_pages(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    caller = await make_caller(backend, accounts=[])
    csrf = await sign_in(browser, caller.key)
    big = "x" * (backend.settings.max_body_bytes + 1)
    for sent in ({"data": {"csrf": csrf, "name": big}}, {"files": {"name": (None, big)}}):
        answer = await browser.post("/dashboard/keys", **sent)  # type: ignore[arg-type]
        assert answer.status_code == 413
        assert answer.headers["content-type"].startswith("text/html")
        assert "larger than the dashboard takes" in answer.text
    for method, path, status in (
        ("GET", "/dashboard/nothing-here", 404),
        ("GET", "/dashboard/logout", 405),
        ("PUT", "/dashboard/posts", 405),
        ("GET", "/dashboard/static/missing.css", 404),
    ):
        answer = await browser.request(method, path)
        assert answer.status_code == status, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert 'class="problem"' in answer.text and "default-src" in str(answer.headers)
    assert (await browser.get("/dashboard/logout")).headers["allow"] == "POST"
    assert (await browser.get("/v1/nothing")).json()["error"]["code"] == "not_found"
    keys = await browser.get("/dashboard/keys")
    assert keys.text.count("<tr>") == 2  # the header and the one key: no key was made


async def test_an_inactive_subscription_is_told_on_every_page(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    from soku.auth.models import SubscriptionStatus

    caller = await make_caller(backend, subscription=SubscriptionStatus.past_due, accounts=[])
    await sign_in(browser, caller.key)
    page = await browser.get("/dashboard/account")
    assert "Your subscription is past_due" in page.text


async def test_a_token_that_is_not_ascii_is_refused_not_a_500(
    backend: AppContext, browser: httpx.AsyncClient
) -> None:
    """`compare_digest` raises TypeError on a str that is not ASCII: a forged form (or a
    sign-in cookie holding such bytes) is refused as any wrong token is, never a 500."""
    caller = await make_caller(backend, accounts=[])
    await browser.get("/dashboard/login")
    refused = await browser.post("/dashboard/login", data={"key": caller.key, "csrf": "é"})
    assert refused.status_code == 403
    assert "soku_session" not in refused.cookies
    page = await browser.get("/dashboard/login")
    answer = await browser.post(
        "/dashboard/login",
        data={"key": caller.key, "csrf": csrf_of(page.text)},
        headers={"cookie": b"soku_signin=\xe9"},  # a raw byte: read as latin-1, not ASCII
    )
    assert answer.status_code == 403
    await sign_in(browser, caller.key)
    for path in ("/dashboard/keys", "/dashboard/logout"):
        answer = await browser.post(path, data={"csrf": "\u2603", "name": "x"})
        assert answer.status_code == 403, path
        assert "stale" in answer.text
    assert (await browser.get("/dashboard/account")).status_code == 200
