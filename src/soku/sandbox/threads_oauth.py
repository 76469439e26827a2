"""The Threads fake's OAuth 2.0 (threads.md, "Auth").

- `GET /oauth/authorize` (threads.net's path): `client_id`, `redirect_uri`,
  `scope` (comma-separated), `response_type=code`, `state`. No PKCE.
- `POST /oauth/access_token`: `client_id`, `client_secret`, `code`,
  `grant_type=authorization_code`, `redirect_uri` (query or form) → `{"access_token",
  "user_id"}`, a short-lived token (1 h).
- `GET /access_token?grant_type=th_exchange_token&client_secret&access_token=<short>` →
  `{"access_token", "token_type": "bearer", "expires_in"}`, a long-lived token (60 days).

Errors are Graph errors, as the rest of the Threads API answers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from soku.sandbox.graph_oauth import sign_in_routes

if TYPE_CHECKING:
    from soku.sandbox.threads import ThreadsFake


def oauth_routes(app: FastAPI, fake: ThreadsFake) -> None:
    sign_in_routes(
        app,
        fake,
        "Threads",
        "th_exchange_token",
        lambda short, user_id: {"access_token": short, "user_id": user_id},
    )
