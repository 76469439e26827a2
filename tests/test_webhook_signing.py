"""The webhook signature: what a receiver checks (`soku.webhooks.signing`)."""

from __future__ import annotations

import hashlib
import hmac

from soku.webhooks import signing

SECRET = "whsec_test-secret"
BODY = b'{"id":"e1","type":"ping"}'
NOW = 1_800_000_000


def test_signs_the_time_and_the_body_with_hmac_sha256() -> None:
    header = signing.header_value(SECRET, BODY, timestamp=NOW)
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert signing.verify(SECRET, header, BODY, now=NOW + 10)


def test_refuses_another_secret_body_or_time() -> None:
    header = signing.header_value(SECRET, BODY, timestamp=NOW)
    assert not signing.verify("whsec_other", header, BODY, now=NOW)
    assert not signing.verify(SECRET, header, BODY + b" ", now=NOW)
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")  # the time is signed too
    assert not signing.verify(SECRET, moved, BODY, now=NOW)


def test_refuses_an_old_or_future_signature() -> None:
    header = signing.header_value(SECRET, BODY, timestamp=NOW)
    assert signing.verify(SECRET, header, BODY, now=NOW + 300)
    assert not signing.verify(SECRET, header, BODY, now=NOW + 301)
    assert not signing.verify(SECRET, header, BODY, now=NOW - 301)
    assert signing.verify(SECRET, header, BODY, now=NOW + 3600, tolerance=3600)


def test_malformed_headers_are_refused_not_raised() -> None:
    for header in ["", "v1=abc", "t=soon,v1=abc", f"t={NOW}", "garbage", f"t={NOW},v1="]:
        assert not signing.verify(SECRET, header, BODY, now=NOW), header


def test_any_of_several_signatures_may_match() -> None:
    good = signing.signature(SECRET, NOW, BODY)
    assert signing.verify(SECRET, f"t={NOW},v1=deadbeef,v1={good}", BODY, now=NOW)


def test_after_a_rotation_both_secrets_sign() -> None:
    header = signing.header_value(["whsec_new", "whsec_old"], BODY, timestamp=NOW)
    assert header.count("v1=") == 2
    assert signing.verify("whsec_new", header, BODY, now=NOW)
    assert signing.verify("whsec_old", header, BODY, now=NOW)
    assert not signing.verify("whsec_other", header, BODY, now=NOW)


def test_a_signature_that_is_not_ascii_is_refused_not_raised() -> None:
    """`hmac.compare_digest` raises TypeError on a str holding anything but ASCII: a forged
    header must read as a bad signature, not crash the receiver verifying it."""
    now = 1_700_000_000
    assert not signing.verify("whsec_x", f"t={now},v1=é{'0' * 63}", b"{}", now=now)
    good = signing.header_value("whsec_x", b"{}", timestamp=now)
    assert signing.verify("whsec_x", f"{good},v1=ü", b"{}", now=now)


def test_the_fakes_pkce_check_refuses_a_verifier_that_is_not_ascii() -> None:
    from soku.sandbox.consent import pkce_matches

    assert not pkce_matches("é" * 43, "abc", "plain")
    assert not pkce_matches("é" * 43, "é" * 43 + "x", "S256")
    assert pkce_matches("v" * 43, "v" * 43, "plain")
