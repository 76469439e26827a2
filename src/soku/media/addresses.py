"""Which addresses the media fetcher may connect to, how hosts spell IP literals, name lookup."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

_HOSTNAME = re.compile(r"[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*")


def _v4(*rows: tuple[str, str]) -> tuple[tuple[IPv4Network, str], ...]:
    return tuple((IPv4Network(net), reason) for net, reason in rows)


def _v6(*rows: tuple[str, str]) -> tuple[tuple[IPv6Network, str], ...]:
    return tuple((IPv6Network(net), reason) for net, reason in rows)


# First match wins, so the narrow ranges come before the ranges that contain them.
_V4_BLOCKED = _v4(
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
_V6_BLOCKED = _v6(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0:0/96", "IPv4-translated"),
    ("100::/64", "discard-only"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "ORCHID"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_V4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = IPv6Network("2000::/3")


def blocked_reason(ip: IPAddress) -> str | None:
    """Why the fetcher must not connect to `ip`, or None for a public address."""
    if isinstance(ip, IPv4Address):
        return _v4_reason(ip)
    return _v6_reason(ip)


def _v4_reason(ip: IPv4Address) -> str | None:
    for network, reason in _V4_BLOCKED:
        if ip in network:
            return reason
    return None if ip.is_global else "not globally routable"


def _v6_reason(ip: IPv6Address) -> str | None:
    for network, reason in _V6_BLOCKED:
        if ip in network:
            return reason
    embedded = _embedded_reason(ip)
    if embedded is not None:
        return embedded
    if ip in _NAT64:
        return None
    if ip not in _GLOBAL_UNICAST:
        return "reserved"
    return None if ip.is_global else "not globally routable"


def _embedded_reason(ip: IPv6Address) -> str | None:
    """The reason for an IPv6 form that carries an IPv4 address, judged by the same rules."""
    if ip.ipv4_mapped is not None:
        # Never needed for a real fetch (the fetcher connects to IPv4 as IPv4), so always refused.
        return f"IPv4-mapped ({_v4_reason(ip.ipv4_mapped) or 'public'} {ip.ipv4_mapped})"
    if ip in _V4_COMPATIBLE:
        inner = IPv4Address(int(ip) & 0xFFFFFFFF)
        return f"IPv4-compatible ({_v4_reason(inner) or 'public'} {inner})"
    if ip in _NAT64:
        inner = IPv4Address(int(ip) & 0xFFFFFFFF)
        reason = _v4_reason(inner)
        return None if reason is None else f"NAT64 of {reason} {inner}"
    if ip.sixtofour is not None:
        reason = _v4_reason(ip.sixtofour)
        return None if reason is None else f"6to4 of {reason} {ip.sixtofour}"
    return None


def parse_host_literal(host: str) -> IPAddress | None:
    """The IP address `host` spells, the way inet_aton and browsers read it, or None for a name.

    Accepts bracketed or bare IPv6, and IPv4 in one to four dot-separated parts, each decimal,
    octal (leading 0) or hex (0x), the last part filling the remaining bytes: `2130706433`,
    `0x7f000001`, `017700000001`, `0177.0.0.1`, `0x7f.1` and `127.1` are all 127.0.0.1.
    """
    if host.startswith("[") and host.endswith("]"):
        return _parse_ipv6(host[1:-1])
    if ":" in host:
        return _parse_ipv6(host)
    return _parse_ipv4(host)


def ends_in_number(host: str) -> bool:
    """Whether a browser would read `host` as IPv4 (WHATWG "ends in a number").

    Such a host that `parse_host_literal` rejects is malformed and must not go to DNS either.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    last = labels[-1]
    if last == "":
        return False
    return (last.isascii() and last.isdigit()) or _ipv4_number(last) is not None


def normalise_host(hostname: str) -> tuple[str, IPAddress | None] | None:
    """(host, its IP if it spells one), or None if it is neither a literal nor a valid name."""
    if not hostname.isascii():
        try:  # after IDNA, fullwidth digits and dots are plain ones: check literals afterwards
            hostname = hostname.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    literal = parse_host_literal(hostname)
    if literal is not None:
        return str(literal), literal
    if ":" in hostname or ends_in_number(hostname):
        return None  # malformed IP: never hand it to a resolver that may read it differently
    name = hostname.removesuffix(".")
    if len(name) > 253 or not _HOSTNAME.fullmatch(name):
        return None
    return name, None


def is_localhost_name(name: str) -> bool:
    """Names that are loopback whatever DNS says (RFC 6761)."""
    return name == "localhost" or name.endswith(".localhost")


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`, in its order, without repeats."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            found.setdefault(ipaddress.ip_address(str(sockaddr[0])), None)
    return list(found)


def _parse_ipv6(text: str) -> IPv6Address | None:
    try:
        return IPv6Address(text)
    except ValueError:
        return None


def _parse_ipv4(host: str) -> IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot is allowed, as in a fully qualified name
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    *leading, last = [number for number in numbers if number is not None]
    if any(number > 0xFF for number in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return IPv4Address(value)


def _ipv4_number(part: str) -> int | None:
    if not part.isascii():
        return None
    digits, base = part, 10
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    if digits == "" and base == 16:
        return 0  # "0x" alone is zero, as browsers read it
    try:
        return int(digits, base) if digits.isalnum() else None
    except ValueError:
        return None
