"""A 404 or 405 that is not the platform's own error (another server at the configured
address, through a wrong base URL) says to check the base URL, and keeps the call's origin
for the log; the platform's own 404s and other foreign answers are left as they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from soku.platforms import linkedin_errors, x_errors
from soku.platforms.connector import PlatformError
from soku.platforms.meta_errors import graph_error

HINT = "check this connector's base URL (SOKU_PLATFORM_OPTIONS)"
URL = "https://api.example.test:8443/v2/users/42/posts"
ORIGIN = "https://api.example.test:8443"
Mapper = Callable[[httpx.Response], PlatformError]
MAPPERS: dict[str, tuple[Mapper, dict[str, Any]]] = {
    "facebook": (
        lambda r: graph_error(r, "Facebook"),
        {"error": {"message": "Unknown path components", "code": 2500}},
    ),
    "x": (x_errors.map_error, {"title": "Not Found Error", "detail": "No such post."}),
    "linkedin": (
        linkedin_errors.map_error,
        {"message": "Not found", "status": 404, "serviceErrorCode": 0},
    ),
}


def _answer(status: int, body: Any) -> httpx.Response:
    request = httpx.Request("POST", URL)
    if isinstance(body, str):
        return httpx.Response(status, text=body, request=request)
    return httpx.Response(status, json=body, request=request)


@pytest.mark.parametrize("platform", list(MAPPERS))
@pytest.mark.parametrize(
    ("status", "body"), [(404, {"detail": "Not Found"}), (405, "<html>Not allowed</html>")]
)
def test_a_foreign_404_or_405_points_at_the_base_url(platform: str, status: int, body: Any) -> None:
    mapper, _ = MAPPERS[platform]
    error = mapper(_answer(status, body))
    assert error.message.endswith(f"The answer is not one of the platform's own errors: {HINT}.")
    assert error.origin == ORIGIN
    assert "/v2/users/42" not in error.message
    assert error.http_status == status


@pytest.mark.parametrize("platform", list(MAPPERS))
def test_the_platforms_own_404_and_other_foreign_answers_get_no_hint(platform: str) -> None:
    mapper, own = MAPPERS[platform]
    for answer in (_answer(404, own), _answer(400, {"detail": "Bad"})):
        error = mapper(answer)
        assert HINT not in error.message, error.message
        assert error.origin is None
