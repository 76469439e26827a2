"""What an integrator's HTTP client may send beyond the page's curl examples."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.conftest import Caller

pytestmark = pytest.mark.asyncio

POST_ID = "6f1c2a52-1d7e-4a53-9b59-3f5c0c8f2e11"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/posts", "GET, POST"),
        ("PUT", f"/v1/posts/{POST_ID}", "DELETE, GET, PATCH"),
        ("POST", f"/v1/posts/{POST_ID}", "DELETE, GET, PATCH"),
        ("GET", f"/v1/posts/{POST_ID}/retry", "POST"),
        ("PUT", f"/v1/media/{POST_ID}", "DELETE, GET"),
    ],
)
async def test_405_allow_names_every_method_of_the_path(
    client: httpx.AsyncClient, caller: Caller, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path, headers=caller.headers)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed
