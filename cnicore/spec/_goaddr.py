"""IP addresses as Go's ``net`` package reads and writes them.

Results, configurations and the file store's reservation names must spell an
address the way the reference does: IPv4 dotted quad, IPv6 lower-case with the
longest run of two or more zero groups compressed (leftmost on a tie, a single
zero group never), and IPv4-mapped IPv6 shown (and stored) as IPv4. Parsing is
as strict as ``net.ParseIP``: no leading zeros in IPv4, no zone, no whitespace.
One module serves results and stores so the two can never disagree; the parsing and
printing themselves are :mod:`cnicore.spec._goint`'s, on plain integers.
"""

from __future__ import annotations

from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

from cnicore.spec._goint import cidr_value_text, ip_value_text, parse_cidr_value, parse_ip_value

__all__ = ["canonical_ip", "canonical_network", "go_cidr_text", "go_ip_text", "go_parse_cidr", "go_parse_ip"]

_V4_MAPPED = 0xFFFF << 32


def canonical_ip(ip: IPAddress) -> IPAddress:
    """The address as Go's ``To4()``-first canonicalisation sees it (v4-mapped IPv6 -> IPv4)."""
    # Go's net.IP keeps IPv4 as ::ffff:a.b.c.d and treats it as IPv4 everywhere.
    if ip.version == 6 and (int(ip) >> 32) == 0xFFFF:
        return IPAddress(int(ip) & 0xFFFFFFFF, 4)
    return ip


def canonical_network(net: IPNetwork) -> IPNetwork:
    """A v4-mapped IPv6 network as Go prints it: IPv4 with the last 32 bits of the mask."""
    ip = net.ip
    if ip.version == 6 and (int(ip) >> 32) == 0xFFFF:
        # Go prints a mapped network with the last four bytes of its 16-byte mask.
        return IPNetwork((int(ip) & 0xFFFFFFFF, max(net.prefixlen - 96, 0)), version=4)
    return net


def go_parse_ip(text: str) -> IPAddress | None:
    """Parse ``text`` like Go's ``net.ParseIP``; None where Go returns nil.

    Strict: no zones, no leading zeros in IPv4 octets, no whitespace, at most
    four hex digits per IPv6 group. An IPv4-mapped IPv6 address comes back as IPv4.
    """
    parsed = parse_ip_value(text)
    return None if parsed is None else IPAddress(parsed[1], parsed[0])


def go_parse_cidr(text: str) -> IPNetwork | None:
    """Parse ``text`` like CNI's ``types.ParseCIDR`` (Go's ``net.ParseCIDR`` keeping the host part).

    None where Go fails with ``invalid CIDR address``. The prefix may have
    leading zeros (Go allows ``/024``) but no sign and no more than the family's bits.
    """
    parsed = parse_cidr_value(text)
    if parsed is None:
        return None
    version, value, prefix = parsed
    return IPNetwork((value, prefix), version=version)


def go_ip_text(ip: IPAddress) -> str:
    """Go's ``net.IP.String()``: dotted IPv4 (also for IPv4-mapped IPv6) or RFC 5952 IPv6."""
    return ip_value_text(ip.version, int(ip))


def go_cidr_text(net: IPNetwork) -> str:
    """CNI's ``types.IPNet`` text: the address with its host part, ``/``, the prefix length."""
    return cidr_value_text(net.version, int(net.ip), net.prefixlen)
