"""IP addresses as Go's ``net`` package reads and writes them.

Results, configurations and the file store's reservation names must spell an
address the way the reference does: IPv4 dotted quad, IPv6 lower-case with the
longest run of two or more zero groups compressed (leftmost on a tie, a single
zero group never), and IPv4-mapped IPv6 shown (and stored) as IPv4. Parsing is
as strict as ``net.ParseIP``: no leading zeros in IPv4, no zone, no whitespace.
One module serves results and stores so the two can never disagree.
"""

from __future__ import annotations

from netaddr import IPAddress, IPNetwork  # type: ignore[import-untyped, unused-ignore]

__all__ = ["canonical_ip", "canonical_network", "go_cidr_text", "go_ip_text", "go_parse_cidr", "go_parse_ip"]

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_V4_MAPPED = 0xFFFF << 32


def _parse_v4(text: str) -> int | None:
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        # Go rejects leading zeros (they meant octal to some parsers) and anything but ASCII digits.
        if not (part.isascii() and part.isdigit()) or len(part) > 3 or (len(part) > 1 and part[0] == "0"):
            return None
        octet = int(part)
        if octet > 255:
            return None
        value = value << 8 | octet
    return value


def _parse_v6_groups(text: str, v4_tail: bool) -> list[int] | None:
    if text == "":
        return []
    fields = text.split(":")
    groups: list[int] = []
    for index, field in enumerate(fields):
        if v4_tail and index == len(fields) - 1 and "." in field:
            v4 = _parse_v4(field)
            if v4 is None:
                return None
            groups += [v4 >> 16, v4 & 0xFFFF]
        elif 1 <= len(field) <= 4 and all(ch in _HEX_DIGITS for ch in field):
            groups.append(int(field, 16))
        else:
            return None
    return groups


def _parse_v6(text: str) -> int | None:
    if "::" in text:
        head, _, tail = text.partition("::")
        if "::" in tail:
            return None
        left = _parse_v6_groups(head, v4_tail=False)
        right = _parse_v6_groups(tail, v4_tail=True)
        # "::" must stand for at least one zero group.
        if left is None or right is None or len(left) + len(right) > 7:
            return None
        groups = left + [0] * (8 - len(left) - len(right)) + right
    else:
        parsed = _parse_v6_groups(text, v4_tail=True)
        if parsed is None or len(parsed) != 8:
            return None
        groups = parsed
    value = 0
    for group in groups:
        value = value << 16 | group
    return value


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
    if not isinstance(text, str) or "%" in text:
        return None
    if ":" in text:
        value = _parse_v6(text)
        return None if value is None else canonical_ip(IPAddress(value, 6))
    v4 = _parse_v4(text)
    return None if v4 is None else IPAddress(v4, 4)


def go_parse_cidr(text: str) -> IPNetwork | None:
    """Parse ``text`` like CNI's ``types.ParseCIDR`` (Go's ``net.ParseCIDR`` keeping the host part).

    None where Go fails with ``invalid CIDR address``. The prefix may have
    leading zeros (Go allows ``/024``) but no sign and no more than the family's bits.
    """
    if not isinstance(text, str):
        return None
    addr, sep, mask = text.partition("/")
    if not sep or not mask or not (mask.isascii() and mask.isdigit()) or len(mask) > 8:
        return None
    ip = go_parse_ip(addr)
    if ip is None:
        return None
    # Decide the family on the text, as Go does: "::ffff:1.2.3.4" has 128 bits of mask.
    bits = 128 if ":" in addr else 32
    prefix = int(mask)
    if prefix > bits:
        return None
    if bits == 128 and ip.version == 4:
        return IPNetwork((int(ip), max(prefix - 96, 0)), version=4)
    return IPNetwork((int(ip), prefix), version=ip.version)


def go_ip_text(ip: IPAddress) -> str:
    """Go's ``net.IP.String()``: dotted IPv4 (also for IPv4-mapped IPv6) or RFC 5952 IPv6."""
    ip = canonical_ip(ip)
    value = int(ip)
    if ip.version == 4:
        return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))
    groups = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    best_start, best_len = -1, 0
    i = 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len:  # strictly longer: the leftmost run wins a tie
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_len < 2:  # a single zero group is never compressed
        return ":".join(f"{g:x}" for g in groups)
    head = ":".join(f"{g:x}" for g in groups[:best_start])
    tail = ":".join(f"{g:x}" for g in groups[best_start + best_len:])
    return f"{head}::{tail}"


def go_cidr_text(net: IPNetwork) -> str:
    """CNI's ``types.IPNet`` text: the address with its host part, ``/``, the prefix length."""
    net = canonical_network(net)
    return f"{go_ip_text(net.ip)}/{net.prefixlen}"

