"""How the tests of the Graph container fakes (Threads, Instagram) call them: as the account of
`TOKEN`, a container made, its status read, a publish, and the Graph error envelope checked."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx

TOKEN = "user-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NUMERIC = re.compile(r"^[0-9]{15,20}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")


@dataclasses.dataclass(frozen=True)
class GraphCalls:
    """A fake's version path (`/v25.0`), its container and publish edges, and the fields a
    container's status is read with."""

    version: str
    edge: str
    publish_edge: str
    status_fields: str

    async def create(self, http: httpx.AsyncClient, **params: str) -> httpx.Response:
        return await http.post(f"{self.version}/me/{self.edge}", data=params, headers=AUTH)

    async def container(self, http: httpx.AsyncClient, **params: str) -> str:
        response = await self.create(http, **params)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"id"} and NUMERIC.match(response.json()["id"])
        return str(response.json()["id"])

    async def status(self, http: httpx.AsyncClient, container_id: str) -> dict[str, Any]:
        params = {"fields": self.status_fields}
        response = await http.get(f"{self.version}/{container_id}", params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def publish(self, http: httpx.AsyncClient, creation_id: str) -> httpx.Response:
        data = {"creation_id": creation_id}
        return await http.post(f"{self.version}/me/{self.publish_edge}", data=data, headers=AUTH)


def graph_error(
    response: httpx.Response, status: int, code: int, subcode: int | None = None
) -> str:
    """Asserts the Graph error envelope; returns its message."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) <= {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert (error["code"], error.get("error_subcode")) == (code, subcode), error
    assert error["type"] and error["fbtrace_id"] and error["message"]
    return str(error["message"])
