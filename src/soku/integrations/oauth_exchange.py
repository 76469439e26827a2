"""The two OAuth 2.0 steps Authlib does for a connect flow: the authorize URL and the code
exchange (RFC 6749 §4.1, with RFC 7636's S256 challenge where the platform wants PKCE).

Every failure of the exchange comes out as a `ConnectFailed` whose message is for the user:
an answer that is not a success (OAuth's error body, Graph's, a 5xx page), no answer at all,
an answer too large to read (`oauth_answers`), or an answer without an access token.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.common.urls import add_params_to_qs
from authlib.deprecate import AuthlibDeprecationWarning

from soku.integrations.oauth_answers import AnswerRefused, capped_hooks
from soku.integrations.oauth_errors import not_read, refused, unreachable, unreadable
from soku.platforms.base import OAuthEndpoints, OAuthSpec

with warnings.catch_warnings():
    # Authlib 1.9 says its httpx client will move to the httpx2 package; Soku is on httpx.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client


@dataclass(frozen=True)
class ClientApp:
    """Soku as the platform knows it: the app's id and secret (none: a public client)."""

    client_id: str
    client_secret: str | None


async def authorize_url(
    spec: OAuthSpec,
    endpoints: OAuthEndpoints,
    app: ClientApp,
    *,
    redirect_uri: str,
    state: str,
    code_verifier: str | None,
) -> str:
    """Where the user's browser goes to say yes: the platform's consent page."""
    async with AsyncOAuth2Client(
        client_id=app.client_id,
        scope=spec.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256" if spec.pkce else None,
    ) as client:
        url, _ = client.create_authorization_url(
            endpoints.authorize_url,
            state=state,
            code_verifier=code_verifier,
            **dict(spec.authorize_params),
        )
    return _client_id_named(_spaces_as_percent(str(url)), spec.client_id_name)


def _client_id_named(url: str, name: str) -> str:
    """The app's id under the platform's name for it (TikTok: `client_key`)."""
    if name == "client_id":
        return url
    parts = urlsplit(url)
    fields = parts.query.split("&")
    renamed = [f"{name}={f[10:]}" if f.startswith("client_id=") else f for f in fields]
    return urlunsplit(parts._replace(query="&".join(renamed)))


def _posted_as(name: str) -> Any:
    """A token endpoint auth method sending the app's id (and secret) in the form under `name`."""

    def encode(client: Any, method: str, uri: str, headers: Any, body: str) -> Any:
        params = [(name, client.client_id)]
        if client.client_secret:
            params.append(("client_secret", client.client_secret))
        body = add_params_to_qs(body or "", params)
        if "Content-Length" in headers:
            headers["Content-Length"] = str(len(body))
        return uri, headers, body

    return encode


def _spaces_as_percent(url: str) -> str:
    """Spaces in the query as %20 (x.md: scopes "space-separated, %20"); Authlib writes `+`,
    and escapes a literal plus as %2B, so every `+` left is a space."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=parts.query.replace("+", "%20")))


async def exchange_code(
    spec: OAuthSpec,
    endpoints: OAuthEndpoints,
    app: ClientApp,
    *,
    label: str,
    redirect_uri: str,
    code: str,
    code_verifier: str | None,
    http_timeout: float,
) -> Mapping[str, Any]:
    """The token endpoint's answer for the code; a `ConnectFailed` for anything else."""
    secrets = (app.client_secret, code, code_verifier)

    def refuse_failures(response: httpx.Response) -> httpx.Response:
        if not response.is_success:  # before Authlib reads it: every platform's error shape
            raise refused(label, "the sign-in", response, secrets)
        return response

    # with no secret, a public client: client_id in the body (X's public clients)
    auth_method = spec.client_auth if app.client_secret else "none"
    async with AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method=auth_method,
        redirect_uri=redirect_uri,
        timeout=http_timeout,
        follow_redirects=False,
        event_hooks=capped_hooks(),
    ) as client:
        client.register_compliance_hook("access_token_response", refuse_failures)
        if spec.client_id_name != "client_id":
            client.register_client_auth_method((auth_method, _posted_as(spec.client_id_name)))
        try:
            answer = await client.fetch_token(
                endpoints.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
        except AnswerRefused as exc:
            raise not_read(label, "exchanging the sign-in for a token", exc) from None
        except httpx.HTTPError as exc:
            raise unreachable(label, "exchanging the sign-in for a token", exc) from None
        except (AuthlibBaseError, ValueError):  # a 2xx answer that is no token answer
            raise unreadable(label, "exchanging the sign-in for a token", "JSON object") from None
    answer = _unwrapped(answer)
    if not isinstance(answer, Mapping) or not answer.get("access_token"):
        raise unreadable(label, "exchanging the sign-in for a token", "access token")
    return dict(answer)


def _unwrapped(answer: Any) -> Any:
    """The token answer itself when it comes as `{"data": [{…}]}` (Instagram documents that
    shape, and answers flat too: instagram.md, "Auth")."""
    data = answer.get("data") if isinstance(answer, Mapping) else None
    if isinstance(data, list) and len(data) == 1 and "access_token" not in answer:
        return data[0] if isinstance(data[0], Mapping) else answer
    return answer
