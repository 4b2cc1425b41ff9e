"""IP address text exactly as the reference (Go's ``net`` package) reads and writes it.

The file store names each reservation file after ``net.IP.String()`` of the
address, so two implementations sharing a directory must agree on one spelling
per address: IPv4 dotted quad, IPv6 lower-case with the longest run of two or
more zero groups compressed (leftmost on a tie), and IPv4-mapped IPv6 addresses
shown (and stored) as IPv4. Parsing is as strict as Go's ``net.ParseIP``: no
leading zeros in IPv4, no zone, no surrounding whitespace.
"""

from __future__ import annotations

import ipaddress

from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore.spec._goaddr import canonical_ip, go_ip_text, go_parse_ip

__all__ = ["canonical_ip", "ip_from_file_name", "ip_text", "parse_cidr", "parse_ip"]

# One spelling of an address for results and reservation files alike: the store
# names files with the same functions the result module prints addresses with.
ip_text = go_ip_text
parse_ip = go_parse_ip


def parse_cidr(text: str) -> IPNetwork | None:
    """``net.ParseCIDR`` keeping the host bits of the address (as CNI's ``types.IPNet`` does).

    Returns None when Go would fail with ``invalid CIDR address``.
    """
    addr, sep, prefix = text.partition("/")
    if not sep or not prefix.isascii() or not prefix.isdigit():
        return None
    if "%" in addr or addr.strip() != addr:
        return None
    try:
        parsed = ipaddress.ip_address(addr)
    except ValueError:
        return None
    bits = 32 if parsed.version == 4 else 128
    length = int(prefix)
    if length > bits:
        return None
    return IPNetwork((int(parsed), length), version=parsed.version)


def ip_from_file_name(name: str) -> IPAddress | None:
    """The address a reservation file called ``name`` stands for, or None.

    Only the canonical spelling counts: the reference creates reservation files
    under that name and no other, so ``010.0.0.1`` or ``2001:DB8::1`` is not a
    reservation either implementation would ever take or check.
    """
    if not name or name[0] not in "0123456789abcdef:":
        return None
    if ":" not in name:
        # Fast path for IPv4 (directories can hold tens of thousands of these): the canonical
        # dotted quad is exactly four decimal octets without leading zeros.
        parts = name.split(".")
        if len(parts) != 4:
            return None
        value = 0
        for part in parts:
            if not (part.isascii() and part.isdigit()) or (len(part) > 1 and part[0] == "0") or len(part) > 3:
                return None
            octet = int(part)
            if octet > 255:
                return None
            value = (value << 8) | octet
        return IPAddress(value, 4)
    ip = parse_ip(name)
    if ip is None or ip_text(ip) != name:
        return None
    return ip
