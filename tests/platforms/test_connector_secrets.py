"""Platform answers kept on a delivery (its error's `platformResponse`, the attempt's stored
answer) never keep a credential the platform put in them."""

from __future__ import annotations

import pytest

from soku.platforms.connector import (
    REDACTED,
    ErrorKind,
    PlatformError,
    Published,
    redact_text,
    without_secrets,
)


def test_an_error_keeps_the_answer_without_its_tokens() -> None:
    answer = {
        "error": "invalid_grant",
        "Access_Token": "a",
        "pages": [{"id": "1", "refresh_token": "r", "nested": {"client_secret": "s"}}],
    }
    error = PlatformError(ErrorKind.permanent, "invalid_grant", "refused", raw=answer)
    assert error.raw == {
        "error": "invalid_grant",
        "Access_Token": REDACTED,
        "pages": [{"id": "1", "refresh_token": REDACTED, "nested": {"client_secret": REDACTED}}],
    }
    assert answer["Access_Token"] == "a"  # the connector's own copy is left alone


def test_a_published_answer_keeps_no_token() -> None:
    published = Published("42", None, raw={"id": "42", "access_token": "t"})
    assert published.raw == {"id": "42", "access_token": REDACTED}
    assert Published("1", None).raw is None


TOKEN = "EAAGm0PX4ZCpsBA1x2y3"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Bad request: access_token=abc123&fields=id", "access_token=[redacted]&fields=id"),
        ("grant refresh_token=r-9 client_secret=s3 x", "refresh_token=[redacted] client_secret="),
        ('{"access_token": "abc", "error": "cut sh', '{"access_token": "[redacted]", "error"'),
        ("next=https%3A%2F%2Fg%3Faccess_token%3Dabc", "access_token%3D[redacted]"),
        (f"Authorization: Bearer {TOKEN}-long", "Authorization: Bearer [redacted]"),
        ("Bearer token missing; Invalid OAuth access token.", "Bearer token missing; Invalid"),
    ],
)
def test_credentials_in_text_are_blanked(text: str, kept: str) -> None:
    blanked = redact_text(text)
    assert kept in blanked
    assert "abc" not in blanked and "r-9" not in blanked and TOKEN not in blanked


def test_an_error_in_plain_text_loses_its_credentials_and_the_accounts_tokens() -> None:
    body = f"<h1>502</h1> upstream said: token {TOKEN} refused (access_token={TOKEN})"
    error = PlatformError(ErrorKind.server_error, "http_502", f"Said: {body}", raw=body)
    assert "access_token=[redacted]" in error.raw and TOKEN in error.raw  # not known yet
    error.hide([TOKEN, None, "short"])  # the delivery knows the account's tokens
    assert TOKEN not in error.raw and TOKEN not in error.message and TOKEN not in str(error)
    assert (
        error.raw
        == "<h1>502</h1> upstream said: token [redacted] refused (access_token=[redacted])"
    )
    nested = without_secrets({"errors": [{"detail": f"bad {TOKEN}"}]}, [TOKEN])
    assert nested == {"errors": [{"detail": "bad [redacted]"}]}
