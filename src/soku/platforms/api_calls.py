"""What the platforms' own API clients share: the account's access token, a call that must
succeed (its failure mapped by the platform's `map_error`), an answer that must be a JSON
object."""

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


async def succeeded(call: Awaitable[httpx.Response], map_error: MapError) -> httpx.Response:
    """The answer of `call` when it succeeded; a failed call or any other answer, mapped."""
    try:
        response = await call
    except httpx.HTTPError as exc:
        raise map_error(exc) from exc
    if not response.is_success:
        raise map_error(response)
    return response


def json_object(response: httpx.Response, label: str, path: str) -> dict[str, Any]:
    """The answer's JSON object; anything else is an unreadable answer (a server error)."""
    body = response_json(response)
    if not isinstance(body, dict):
        message = f"{label} answered {path} without a JSON object."
        raise PlatformError(
            ErrorKind.server_error, "unreadable_answer", message, raw=response.text[:500]
        )
    return body
