"""Platform answers kept on a delivery (its error's `platformResponse`, the attempt's stored
answer) never keep a credential the platform put in them."""

from __future__ import annotations

from soku.platforms.connector import REDACTED, ErrorKind, PlatformError, Published


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
