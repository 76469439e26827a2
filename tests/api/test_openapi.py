"""The OpenAPI document: what it promises, and Schemathesis holding the app to it.

Schemathesis loads `/openapi.json` from the app in-process and, for every posts, webhooks,
templates and health operation, sends its coverage cases (boundaries, missing and wrong values
and headers, other content types and methods) and up to MAX_EXAMPLES Hypothesis-generated
requests, both valid ("positive") and invalid ("negative"). Each response must: not be a 5xx;
have a status the operation declares; have the declared content type; match the declared
schema.

Schemathesis calls the ASGI app synchronously from its own event loop thread, so it gets an
app of its own per backend, built on the backend's settings (same database, schema already
migrated by the `backend` fixture) with a context whose connections live on that loop.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from soku.app import create_app
from soku.context import AppContext
from tests.conftest import Caller, make_settings

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "415", "429", "500", "503")


# --- what the document says -------------------------------------------------------------


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


async def test_documents_the_api_key(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "soku-api-key"}.items() <= next(
        iter(schemes.values())
    ).items()
    name = next(iter(schemes))
    for path, operations in openapi["paths"].items():
        if path.startswith("/v1/"):
            for method, operation in operations.items():
                assert {name: []} in operation.get("security", []), (method, path)


async def test_documents_the_idempotency_key_on_create(openapi: dict[str, Any]) -> None:
    create = openapi["paths"]["/v1/posts"]["post"]
    headers = {p["name"]: p for p in create["parameters"] if p["in"] == "header"}
    assert "Idempotency-Key" in headers
    assert headers["Idempotency-Key"].get("required", False) is False
    assert headers["Idempotency-Key"]["description"]
    body = create["requestBody"]
    assert body["required"] is True
    assert list(body["content"]) == ["application/json"]
    contract = {"201", "400", "401", "403", "409", "429", "500"}  # the page's statuses
    assert contract <= set(create["responses"])


async def test_every_error_response_is_the_envelope(openapi: dict[str, Any]) -> None:
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    seen = set()
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert status in ERROR_STATUSES, (method, path, status)
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == envelope, (method, path, status)
                    seen.add(status)
    # FastAPI's 422 is never sent (validation errors are 400 envelopes): not documented.
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    assert {"400", "401", "403", "404", "409", "413", "415", "429", "500"} <= seen
    body = openapi["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"type", "code", "message", "timestamp", "requestId", "details"}
    retry = openapi["paths"]["/v1/posts"]["post"]["responses"]["429"]["headers"]
    assert {"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining"} <= set(retry)


async def test_every_response_documents_its_headers(openapi: dict[str, Any]) -> None:
    """X-Request-Id on every answer; the rate-limit headers on an authenticated route's."""
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status, response in responses.items():
                headers = set(response.get("headers", {}))
                assert "X-Request-Id" in headers, (method, path, status)
                if "401" in responses:
                    assert {"X-RateLimit-Limit", "X-RateLimit-Reset"} <= headers, (method, path)
    created = openapi["paths"]["/v1/posts"]["post"]["responses"]["201"]["headers"]
    assert created["X-RateLimit-Remaining"]["schema"] == {"type": "integer"}
    assert "X-RateLimit-Limit" not in openapi["paths"]["/healthz"]["get"]["responses"]["200"].get(
        "headers", {}
    )


async def test_docs_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


# --- Schemathesis -----------------------------------------------------------------------


def _load_schema() -> Any:
    """The app's own `/openapi.json`, fetched in-process by Schemathesis (the document is the
    same on every backend, and building the app touches no database)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(settings=make_settings(Path(folder)))
        loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    return loaded.include(
        path_regex=r"^/(v1/posts|v1/webhooks|v1/templates|v1/media/render-og|healthz|readyz)"
    )


schema = _load_schema()


@pytest.fixture(scope="session")
def schemathesis_app(backend: AppContext) -> Iterator[FastAPI]:
    """An app on the backend's database for Schemathesis' own event loop thread; its
    context is built on that loop's first request and closed by its lifespan."""
    yield create_app(settings=backend.settings)
    schemathesis_asgi.shutdown_lifespans()


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@schema.parametrize()
def test_the_app_keeps_its_openapi_promises(
    case: Any, schemathesis_app: FastAPI, caller: Caller
) -> None:
    case.call_and_validate(
        base_url="http://testserver", headers=caller.headers, checks=CHECKS, app=schemathesis_app
    )


async def test_the_dry_run_says_it_does_not_fetch_media(openapi: dict[str, Any]) -> None:
    described = openapi["paths"]["/v1/posts/validate"]["post"]["description"]
    assert "does not fetch" in described and "upload_failed" in described
