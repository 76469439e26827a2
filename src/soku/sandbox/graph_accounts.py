"""Accounts and tokens as the Graph container fakes (Threads, Instagram) keep them.

A token the fake never issued is adopted: it names a new sandbox account. A long-lived token
is refreshed with `GET /refresh_access_token?grant_type=<grant_type>` once it is old enough.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from soku.sandbox.graph import GraphError, invalid_parameter, named_fault


class _Account(Protocol):
    @property
    def id(self) -> str: ...


class _TokenConfig(Protocol):
    @property
    def token_lifetime_secs(self) -> int: ...
    @property
    def refresh_min_age_secs(self) -> int: ...


UserT = TypeVar("UserT", bound=_Account)


@dataclass
class Token:
    user_id: str
    issued_at: float
    expires_at: float | None


class GraphAccounts(Generic[UserT]):
    """The accounts half of a fake's state; the state (a dataclass) holds the fields."""

    issued_prefix: str  # of the tokens the fake issues ("TH", "IGAA")
    grant_type: str  # of the refresh ("th_refresh_token", "ig_refresh_token")
    users: dict[str, UserT]
    tokens: dict[str, Token]
    config: _TokenConfig

    def add_user(self, username: str | None = None, user_id: str | None = None) -> UserT:
        raise NotImplementedError

    def add_token(self, token: str, user_id: str, expires_in: float | None) -> None:
        now = time.time()
        self.tokens[token] = Token(user_id, now, None if expires_in is None else now + expires_in)

    def new_token(self, user_id: str, lifetime: float) -> str:
        token = self.issued_prefix + secrets.token_urlsafe(32)
        self.add_token(token, user_id, lifetime)
        return token

    def user_for_token(self, token: str) -> UserT:
        """A token the fake never issued is adopted: it names a new sandbox account."""
        if token not in self.tokens:
            self.add_token(token, self.add_user().id, None)
        known = self.tokens[token]
        if known.expires_at is not None and time.time() >= known.expires_at:
            raise named_fault("token_expired")
        return self.users[known.user_id]

    def node_user(self, caller: UserT, node: str) -> UserT:
        """The account of a path (`/{user-id}/…`): `me` or the caller's own id."""
        if node in ("me", caller.id):
            return caller
        raise unsupported(node, "get")

    def refresh(self, grant_type: str | None, token: str) -> dict[str, Any]:
        """A new long-lived token for an unexpired one."""
        if grant_type != self.grant_type:
            raise invalid_parameter(f"(#100) Param grant_type must be {self.grant_type}")
        user = self.user_for_token(token)  # an expired token: 190/463
        if time.time() - self.tokens[token].issued_at < self.config.refresh_min_age_secs:
            # Not confirmed: the platform docs say only that the token must be 24 h old.
            raise invalid_parameter("(#100) The access token is too new to be refreshed")
        lifetime = self.config.token_lifetime_secs
        fresh = self.new_token(user.id, lifetime)
        return {"access_token": fresh, "token_type": "bearer", "expires_in": lifetime}


def unsupported(node: str, method: str) -> GraphError:
    """Graph's answer for an object that is not there or not the caller's (100 / 33)."""
    message = (
        f"Unsupported {method} request. Object with ID '{node}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation."
    )
    return GraphError(400, 100, message, 33, "GraphMethodException")
