"""Which addresses the fetcher refuses, and how sneaky host spellings are read."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soku.media.addresses import (
    blocked_reason,
    ends_in_number,
    is_localhost_name,
    normalise_host,
    parse_host_literal,
)

LOOPBACK = IPv4Address("127.0.0.1")

# (address, a word the reason must contain)
BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.255", "CGNAT"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this network"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("192.0.0.8", "IETF"),
    ("192.88.99.1", "6to4 relay"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "unique local"),
    ("fd00::1", "unique local"),
    ("fdff:ffff::1", "unique local"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "discard"),
    ("2001:2::1", "benchmarking"),
    ("::ffff:127.0.0.1", "IPv4-mapped (loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped (private"),
    ("::ffff:169.254.169.254", "IPv4-mapped (link-local"),
    ("::ffff:8.8.8.8", "IPv4-mapped"),  # never needed: IPv4 is reached as IPv4
    ("::ffff:0:127.0.0.1", "IPv4-translated"),
    ("::127.0.0.1", "IPv4-compatible (loopback"),
    ("::10.0.0.1", "IPv4-compatible (private"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("64:ff9b::7f00:1", "NAT64 of loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of link-local"),
    ("64:ff9b::c0a8:101", "NAT64 of private"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:7f00:1::", "6to4 of loopback"),
    ("2002:a00:1::1", "6to4 of private"),
    ("2002:a9fe:a9fe::", "6to4 of link-local"),
    ("2001::1", "Teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("4000::1", "reserved"),  # outside 2000::/3, the only global unicast block
    ("1::1", "reserved"),
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "64:ff9b::808:808",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_blocked(address: str, reason: str) -> None:
    found = blocked_reason(ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize("address", PUBLIC)
def test_public(address: str) -> None:
    assert blocked_reason(ip_address(address)) is None


LITERALS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0X7F000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0x7f.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("0x", "0.0.0.0"),
    ("00", "0.0.0.0"),
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
    ("169.254.43518", "169.254.169.254"),
    ("10.1", "10.0.0.1"),
    ("4294967295", "255.255.255.255"),
    ("[::1]", "::1"),
    ("::1", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("[fe80::1]", "fe80::1"),
]
NOT_LITERALS = [
    "example.com",
    "localhost",
    "4294967296",  # more than 32 bits
    "256.0.0.1",
    "1.2.3.4.5",
    "1..1",
    ".1",
    "08.0.0.1",  # 8 is no octal digit
    "0x1g.1",
    "1.2.3.0x100",  # the last part of four holds one byte
    "1.0x1000000",  # the last part of two holds three bytes
    "1.2.3.-4",
    "1_0.0.0.1",
    "\u0661\u0662\u0667.0.0.1",  # Arabic-Indic digits are no ASCII number
    "[example.com]",
    "[::1",
    "1:2",
]


@pytest.mark.parametrize(("host", "address"), LITERALS)
def test_host_literals(host: str, address: str) -> None:
    assert parse_host_literal(host) == ip_address(address)


@pytest.mark.parametrize("host", NOT_LITERALS)
def test_not_host_literals(host: str) -> None:
    assert parse_host_literal(host) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("1.2.3.4.5", True),
        ("256.0.0.1", True),
        ("example.0x10", True),
        ("example.123", True),
        ("08", True),
        ("example.com", False),
        ("1.2.3.x", False),
        ("example.com.", False),
    ],
)
def test_ends_in_number(host: str, expected: bool) -> None:
    assert ends_in_number(host) is expected


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com.", ("example.com", None)),
        ("cdn_1.example.com", ("cdn_1.example.com", None)),
        ("bücher.de", ("xn--bcher-kva.de", None)),
        ("2130706433", ("127.0.0.1", LOOPBACK)),
        ("::1", ("::1", IPv6Address("::1"))),
        # Fullwidth digits and ideographic dots become plain ones under IDNA: still loopback.
        ("\uff11\uff12\uff17\u3002\uff10\u3002\uff10\u3002\uff11", ("127.0.0.1", LOOPBACK)),
        ("1.2.3.4.5", None),
        ("256.0.0.1", None),
        ("127.0.0.1%09", None),
        ("127.0.0.1%2509", None),
        ("exa mple.com", None),
        ("a..b", None),
        ("", None),
        ("x" * 64 + ".com", None),
        ("1:2", None),
    ],
)
def test_normalise_host(hostname: str, expected: object) -> None:
    assert normalise_host(hostname) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("localhost", True), ("a.localhost", True), ("localhost.com", False), ("notlocalhost", False)],
)
def test_localhost_names(name: str, expected: bool) -> None:
    assert is_localhost_name(name) is expected


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_spelling_of_an_ipv4_address_reads_the_same(value: int) -> None:
    address = IPv4Address(value)
    a, b, c, d = address.packed
    spellings = [
        str(value),
        hex(value),
        "0" + oct(value)[2:],
        f"{a}.{b}.{c}.{d}",
        f"{a}.{value & 0xFFFFFF}",
        f"{a}.{b}.{value & 0xFFFF}",
        f"{a:#x}.{b:#o}.{c}.{d:#x}".replace("0o", "0"),
    ]
    for spelling in spellings:
        assert parse_host_literal(spelling) == address, spelling
