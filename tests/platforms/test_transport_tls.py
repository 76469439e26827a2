"""The platform client over HTTPS: the system's trust store decides, as for any client on
the machine (`SSL_CERT_FILE` included), and an untrusted host is a failure to connect.

A certificate authority and a host certificate are made for the test; a raw asyncio server
answers over TLS on a loopback port.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from soku.platforms.connector import ErrorKind, transport_error
from soku.platforms.transport import platform_client
from tests.certificates import certificate, write_pem
from tests.platforms.test_transport import answers


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA's certificate, and a host certificate it signed (with its key)."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("Soku test CA", ca_key)
    host_key = ec.generate_private_key(ec.SECP256R1())
    host = certificate("localhost", host_key, (ca.subject, ca_key), ("localhost", "127.0.0.1"))
    files = {"ca": folder / "ca.pem", "cert": folder / "host.pem", "key": folder / "host.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_pem(host, host_key, files["cert"], files["key"])
    return files


@asynccontextmanager
async def tls_host(pki: dict[str, Path]) -> AsyncIterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["cert"], pki["key"])
    server = await asyncio.start_server(answers, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.close()


async def test_a_host_the_trust_store_vouches_for_answers(
    pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca"]))
    async with tls_host(pki) as base, platform_client(4, 5) as client:
        response = await client.post(f"{base}/v1/posts", json={"text": "hello"})
    assert response.status_code == 201
    assert response.json()["target"] == "/v1/posts"


async def test_an_untrusted_host_is_a_failure_to_connect(
    pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the test CA is not trusted
    async with tls_host(pki) as base, platform_client(4, 5) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.post(f"{base}/v1/posts", json={"text": "hello"})
    assert "UnknownIssuer" in str(caught.value)
    assert transport_error(caught.value, "X").kind is ErrorKind.connection  # nothing was sent
