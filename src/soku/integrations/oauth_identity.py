"""The "who is this" step of each platform's connect flow: a token answer → the account(s).

- X: `GET /2/users/me` → `data.id`, `data.username` (x.md).
- LinkedIn: OpenID `GET /v2/userinfo` → `sub`; the account is the author URN
  `urn:li:person:{sub}`, which the LinkedIn connector takes as the platform user id
  (linkedin.md, "Scopes for publishing").
- Threads: the code's short-lived token (1 h) swapped for a long-lived one (60 days,
  `GET /access_token?grant_type=th_exchange_token`), then `GET /v1.0/me?fields=id,username`
  (threads.md, "Auth").
- TikTok: `GET /v2/user/info/?fields=open_id,username,display_name` → `data.user`; the
  token answer's `open_id` when the user info has none (tiktok.md, "Auth").
- Instagram (Instagram Login): the same two steps on graph.instagram.com
  (`ig_exchange_token`), then `GET /vNN.0/me?fields=user_id,username`; `user_id` is the
  professional account's id that publishing takes (`id` when absent) (instagram.md, "Auth").
- Snapchat: `GET /v1/public_profiles/my_profile` → `public_profile.id` (the Public Profile
  posts go to) and `snap_user_name` (snapchat.md, "Auth").
- Facebook: the code's user token swapped for a long-lived one (`fb_exchange_token`), then
  `GET /me/accounts`, followed answer after answer by its `after` cursor (at most 50
  answers of 100): every Page the user may post to, each with its Page token; the
  long-lived user token is kept as the refresh token, from which the connector derives a
  new Page token (facebook.md, "Auth").
- YouTube: `GET /youtube/v3/channels?part=snippet&mine=true` → the channel's `id`, and its
  `snippet.customUrl` (the @handle) or else its title; Google's access token lasts about an
  hour, and the refresh token comes with `access_type=offline` (youtube.md, "Auth").

The exchanges are GETs of grants that are not OAuth 2.0's (`th_exchange_token`,
`ig_exchange_token`, `fb_exchange_token`), which Authlib's client has no call for: they are
plain httpx calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx

from soku.integrations.oauth_answers import AnswerRefused
from soku.integrations.oauth_errors import (
    ConnectFailed,
    not_read,
    refused,
    unreachable,
    unreadable,
)
from soku.logs import get_logger
from soku.platforms.base import Identities, Identity, OAuthCall
from soku.platforms.facebook_connector import MAX_PAGE_ANSWERS, PAGES_PER_ANSWER, PAGES_QUERY
from soku.platforms.graph_paging import next_cursor

log = get_logger("soku.oauth")
WHO = "telling who signed in"
MAX_TEXT = 200  # the account's columns (platform_user_id, username: VARCHAR(200))
PERSON = "urn:li:person:"


async def call_json(
    call: OAuthCall,
    label: str,
    what: str,
    url: str,
    *,
    hide: tuple[str | None, ...] = (),
    **options: Any,
) -> dict[str, Any]:
    """A GET's JSON object; any failure as a `ConnectFailed` for the user."""
    try:
        response = await call.http.get(url, **options)
    except AnswerRefused as exc:
        raise not_read(label, what, exc) from None
    except httpx.HTTPError as exc:
        raise unreachable(label, what, exc) from None
    secrets = (call.client_secret, *hide)
    if not response.is_success:
        raise refused(label, what, response, secrets)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise unreadable(label, what, "JSON object")
    return body


def token_of(answer: Mapping[str, Any], label: str, what: str = "signing in") -> str:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise unreadable(label, what, "access token")
    return token


def expiry(answer: Mapping[str, Any]) -> dt.datetime | None:
    seconds = answer.get("expires_in")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | str):
        return None
    try:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(seconds))
    except (ValueError, OverflowError):
        return None


def _text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """An id or a name the account can keep: none for one too long or not printable (a
    PostgreSQL column refuses both, and the user would get a 500)."""
    text = str(value) if isinstance(value, str | int) else ""
    return text if 0 < len(text) <= limit and text.isprintable() else None


def _scope(answer: Mapping[str, Any]) -> str | None:
    scope = answer.get("scope")
    return scope if isinstance(scope, str) and scope else None


def _one(answer: Mapping[str, Any], account_id: str, name: str | None, access: str) -> Identities:
    """The one account a token answer signs in: its refresh token, expiry and scope."""
    refresh = answer.get("refresh_token")
    refresh = refresh if isinstance(refresh, str) and refresh else None
    return Identities(
        (Identity(account_id, name, access, refresh, expiry(answer), _scope(answer)),)
    )


async def identify_x(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    access = token_of(answer, "X")
    headers = {"Authorization": f"Bearer {access}"}
    url = f"{call.endpoints.api_url}/2/users/me"
    me = await call_json(call, "X", WHO, url, headers=headers, hide=(access,))
    data = me.get("data")
    data = data if isinstance(data, dict) else {}
    user_id, username = _text(data.get("id")), _text(data.get("username"))
    if user_id is None or username is None:
        raise unreadable("X", WHO, "user id and username")
    return _one(answer, user_id, username, access)


async def identify_linkedin(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    access = token_of(answer, "LinkedIn")
    headers = {"Authorization": f"Bearer {access}"}
    url = f"{call.endpoints.api_url}/v2/userinfo"
    me = await call_json(call, "LinkedIn", WHO, url, headers=headers, hide=(access,))
    sub = _text(me.get("sub"), MAX_TEXT - len(PERSON))
    if sub is None:
        raise unreadable("LinkedIn", WHO, "member id (sub)")
    # only for apps approved for refresh tokens
    return _one(answer, f"{PERSON}{sub}", _text(me.get("name")), access)


async def identify_threads(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    access, lasting, me = await _long_lived_me(call, answer, "Threads", "th", "id,username")
    user_id, username = _text(me.get("id")), _text(me.get("username"))
    if user_id is None:
        raise unreadable("Threads", WHO, "user id")
    # Threads refreshes the access token itself: there is no refresh token
    return Identities((Identity(user_id, username, access, None, expiry(lasting), None),))


async def identify_tiktok(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    access = token_of(answer, "TikTok")
    me = await call_json(
        call,
        "TikTok",
        WHO,
        f"{call.endpoints.api_url}/v2/user/info/",
        params={"fields": "open_id,username,display_name"},
        headers={"Authorization": f"Bearer {access}"},
        hide=(access,),
    )
    data = me.get("data")
    user = data.get("user") if isinstance(data, dict) else None
    user = user if isinstance(user, dict) else {}
    open_id = _text(user.get("open_id")) or _text(answer.get("open_id"))
    if open_id is None:
        raise unreadable("TikTok", WHO, "open_id")
    return _one(
        answer, open_id, _text(user.get("username")) or _text(user.get("display_name")), access
    )


async def identify_youtube(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    access = token_of(answer, "YouTube")
    headers = {"Authorization": f"Bearer {access}"}
    url = f"{call.endpoints.api_url}/youtube/v3/channels"
    params = {"part": "snippet", "mine": "true"}
    mine = await call_json(
        call, "YouTube", WHO, url, params=params, headers=headers, hide=(access,)
    )
    items = mine.get("items")
    channel = items[0] if isinstance(items, list) and items else None
    channel = channel if isinstance(channel, dict) else {}
    snippet = channel.get("snippet")
    snippet = snippet if isinstance(snippet, dict) else {}
    channel_id = _text(channel.get("id"))
    if channel_id is None:
        raise unreadable("YouTube", WHO, "channel id (the account may have no channel)")
    return _one(
        answer, channel_id, _text(snippet.get("customUrl")) or _text(snippet.get("title")), access
    )


async def identify_instagram(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    fields = "id,user_id,username"
    access, lasting, me = await _long_lived_me(call, answer, "Instagram", "ig", fields)
    user_id, username = _text(me.get("user_id")) or _text(me.get("id")), _text(me.get("username"))
    if user_id is None:
        raise unreadable("Instagram", WHO, "user id")
    # Instagram refreshes the access token itself: there is no refresh token
    return Identities((Identity(user_id, username, access, None, expiry(lasting), None),))


async def _long_lived_me(
    call: OAuthCall, answer: Mapping[str, Any], label: str, grant: str, fields: str
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Meta's second step and third (Threads, Instagram): the code's short-lived token
    swapped for a long-lived one (`<grant>_exchange_token`), then `GET /me` with it."""
    short = token_of(answer, label)
    what = "making the sign-in last 60 days"
    params = {"grant_type": f"{grant}_exchange_token", "client_secret": call.client_secret or ""}
    params["access_token"] = short
    url = _exchange_url(call)
    lasting = await call_json(call, label, what, url, params=params, hide=(short,))
    access = token_of(lasting, label, what)
    me = await call_json(
        call,
        label,
        WHO,
        f"{call.endpoints.api_url}/me",
        params={"fields": fields},
        headers={"Authorization": f"Bearer {access}"},
        hide=(short, access),
    )
    return access, lasting, me


async def identify_snapchat(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    """The Public Profile of the token (`GET /v1/public_profiles/my_profile`): its id is
    the account's, its Snapchat user name the account's name."""
    access = token_of(answer, "Snapchat")
    headers = {"Authorization": f"Bearer {access}"}
    url = f"{call.endpoints.api_url}/v1/public_profiles/my_profile"
    me = await call_json(call, "Snapchat", WHO, url, headers=headers, hide=(access,))
    profile = me.get("public_profile")
    profile = profile if isinstance(profile, dict) else {}
    profile_id = _text(profile.get("id"))
    if str(me.get("request_status", "")).upper() == "ERROR" or profile_id is None:
        raise unreadable("Snapchat", WHO, "Public Profile id")
    name = _text(profile.get("snap_user_name")) or _text(profile.get("display_name"))
    return _one(answer, profile_id, name, access)


async def identify_facebook(call: OAuthCall, answer: Mapping[str, Any]) -> Identities:
    short = token_of(answer, "Facebook")
    what = "making the sign-in last 60 days"
    params = {
        "grant_type": "fb_exchange_token",
        "client_id": call.client_id,
        "client_secret": call.client_secret or "",
        "fb_exchange_token": short,
    }
    url = _exchange_url(call)
    lasting = await call_json(call, "Facebook", what, url, params=params, hide=(short,))
    return await facebook_pages(call, token_of(lasting, "Facebook", what))


async def facebook_pages(call: OAuthCall, user_token: str) -> Identities:
    """The Pages the user may post to (the CREATE_CONTENT task), with their Page tokens."""
    pages: dict[str, Identity] = {}
    for entry in await _listed_pages(call, user_token):
        if _may_post(entry) and str(entry["id"]) not in pages:
            pages[str(entry["id"])] = Identity(
                str(entry["id"]),
                _text(entry.get("name")),
                str(entry["access_token"]),
                refresh_token=user_token,
            )
    if not pages:
        raise ConnectFailed(
            "None of the Facebook Pages you manage lets you create content (or you manage "
            "none): nothing to connect. Ask for a role with the CREATE_CONTENT task, then "
            "connect again.",
            400,
        )
    return Identities(tuple(pages.values()), interim_token=user_token)


async def _listed_pages(call: OAuthCall, user_token: str) -> list[Any]:
    """Every entry of `/me/accounts`, answer after answer by its `after` cursor, each asked
    for at the configured Graph URL (graph_paging); at most `MAX_PAGE_ANSWERS` answers."""
    params = dict(PAGES_QUERY)
    entries: list[Any] = []
    for _ in range(MAX_PAGE_ANSWERS):
        listing = await call_json(
            call,
            "Facebook",
            "listing your Pages",
            f"{call.endpoints.api_url}/me/accounts",
            params=params,
            headers={"Authorization": f"OAuth {user_token}"},
            hide=(user_token,),
        )
        data = listing.get("data")
        entries += data if isinstance(data, list) else []
        after = next_cursor(listing)
        if after is None or not data or after == params.get("after"):
            return entries
        params = {**params, "after": after}
    log.warning("oauth.too_many_pages", platform="Facebook", answers=MAX_PAGE_ANSWERS)
    raise ConnectFailed(
        f"Facebook listed more than {MAX_PAGE_ANSWERS * PAGES_PER_ANSWER:,} Pages for this "
        "login, more than Soku reads: nothing was connected. Connect as a Facebook user who "
        "manages fewer Pages.",
        502,
    )


def _may_post(entry: Any) -> bool:
    """A listed Page with an id and a token, whose tasks (when listed) allow posting."""
    if not isinstance(entry, dict) or not _text(entry.get("id")):
        return False
    tasks = entry.get("tasks")
    can_post = not isinstance(tasks, list) or "CREATE_CONTENT" in tasks
    return bool(_text(entry.get("access_token"))) and can_post


def _exchange_url(call: OAuthCall) -> str:
    url = call.endpoints.exchange_url
    if url is None:
        raise ConnectFailed("This platform names no token exchange endpoint.", 502)
    return url
