"""What the platforms' own API clients share: the account's access token, a call whose failure
is mapped by the platform's `map_error`, a call that must succeed, an answer that must be a
JSON object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from soku.platforms.connector import AccountAccess, ErrorKind, PlatformError, response_json

MapError = Callable[[httpx.Response | httpx.HTTPError], PlatformError]


def access_token(account: AccountAccess, label: str) -> str:
    """The account's token; without one the user has to connect the account again."""
    if not account.access_token:
        message = f"The {label} account {account.account_id} has no access token."
        raise PlatformError(ErrorKind.reauth_required, "no_access_token", message)
    return account.access_token


async def answered(call: Awaitable[httpx.Response], map_error: MapError) -> httpx.Response:
    """The answer of `call`, whatever its status; a call that got none (a timeout, a refused
    connection) is mapped, so the caller reads only answers."""
    try:
        return await call
    except httpx.HTTPError as exc:
        raise map_error(exc) from exc


async def succeeded(call: Awaitable[httpx.Response], map_error: MapError) -> httpx.Response:
    """The answer of `call` when it succeeded; a failed call or any other answer, mapped."""
    response = await answered(call, map_error)
    if not response.is_success:
        raise map_error(response)
    return response


async def json_answer(
    call: Awaitable[httpx.Response], map_error: MapError, *, empty: bool = False
) -> dict[str, Any]:
    """The JSON object of a successful answer (`{}` for an empty one when `empty`: X answers
    some calls with no body). Anything else is the platform's to explain, so it is mapped
    (unlike `json_object`, which calls it unreadable)."""
    response = await answered(call, map_error)
    body = response_json(response)
    if response.is_success and isinstance(body, dict):
        return body
    if response.is_success and empty and not response.content.strip():
        return {}
    raise map_error(response)


def json_object(response: httpx.Response, label: str, path: str) -> dict[str, Any]:
    """The answer's JSON object; anything else is an unreadable answer (a server error)."""
    body = response_json(response)
    if not isinstance(body, dict):
        message = f"{label} answered {path} without a JSON object."
        raise PlatformError(
            ErrorKind.server_error, "unreadable_answer", message, raw=response.text[:500]
        )
    return body
