"""The address `soku serve` announces."""

from __future__ import annotations

import pytest

from soku.serving import listening_url


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("localhost", 80, "http://localhost:80"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000"),
        ("::", 8000, "http://[::1]:8000"),
        ("::1", 9000, "http://[::1]:9000"),
        ("fe80::1", 9000, "http://[fe80::1]:9000"),
    ],
)
def test_listening_url(host: str, port: int, url: str) -> None:
    assert listening_url(host, port) == url
