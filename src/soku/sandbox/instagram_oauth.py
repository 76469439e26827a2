"""The Instagram fake's sign-in (Instagram Login; instagram.md, "Auth").

- `GET /oauth/authorize`: `client_id`, `redirect_uri`, `scope` (comma-separated),
  `response_type=code`, `state`; no PKCE. A code is good once, for an hour.
- `POST /oauth/access_token` (api.instagram.com's path): `client_id`, `client_secret`,
  `code`, `grant_type=authorization_code`, `redirect_uri` as form fields → a short-lived
  token (1 h) as `{"data": [{"access_token", "user_id", "permissions"}]}`, the documented
  shape, or flat as seen in practice (`token_answer` in `/_config`).
- `GET /access_token?grant_type=ig_exchange_token&client_secret&access_token=<short>` →
  `{"access_token", "token_type": "bearer", "expires_in"}`, a long-lived token (60 days).

Errors are Graph errors, as the rest of the API answers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from soku.sandbox.graph_oauth import sign_in_routes

if TYPE_CHECKING:
    from soku.sandbox.instagram import InstagramFake

PERMISSIONS = "instagram_business_basic,instagram_business_content_publish"


def oauth_routes(app: FastAPI, fake: InstagramFake) -> None:
    def answer(short: str, subject: str) -> Any:
        user_id: Any = int(subject)  # a number in Meta's example
        row = {"access_token": short, "user_id": user_id, "permissions": PERMISSIONS}
        nested = fake.state.config.token_answer == "nested"  # noqa: S105 (a shape, not a secret)
        return {"data": [row]} if nested else row

    sign_in_routes(app, fake, "Instagram", "ig_exchange_token", answer)
