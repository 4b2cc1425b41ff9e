"""Go's ``net`` address text on plain integers: the standard-library core of :mod:`cnicore.spec._goaddr`.

An address is ``(version, value)`` and a CIDR ``(version, value, prefix)``;
nothing here imports netaddr, so that an executed plugin can read and write
addresses without it. :mod:`cnicore.spec._goaddr` wraps these functions for
netaddr values: there is one parser and one printer.

Rules (Go's): IPv4 dotted quad without leading zeros; IPv6 with at most four hex
digits per group, no zone, an optional dotted IPv4 tail; an IPv4-mapped IPv6
address is IPv4 (``To4()`` first). Printing compresses the longest run of two or
more zero groups (leftmost on a tie) and prints a mapped address as IPv4.
"""

from __future__ import annotations

__all__ = ["HEX_DIGITS", "V6_TAG", "canonical_cidr_value", "canonical_value", "cidr_value_text", "ip_value_text",
           "key_value", "mask_value", "parse_cidr_parts", "parse_cidr_value", "parse_interface", "parse_ip_value",
           "parse_network", "value_key"]

#: Bit set in the key of every IPv6 address (IPv6 values are below 2**128): see :func:`value_key`.
V6_TAG = 1 << 128

#: The characters of a hexadecimal digit, either case.
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_MAPPED_HIGH = 0xFFFF


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
        elif 1 <= len(field) <= 4 and all(ch in HEX_DIGITS for ch in field):
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


def canonical_value(version: int, value: int) -> tuple[int, int]:
    """``(version, value)`` with an IPv4-mapped IPv6 address turned into IPv4."""
    if version == 6 and value >> 32 == _MAPPED_HIGH:
        return 4, value & 0xFFFFFFFF
    return version, value


def canonical_cidr_value(version: int, value: int, prefix: int) -> tuple[int, int, int]:
    """``(version, value, prefix)`` with a mapped IPv6 network turned into IPv4 (the last 32 bits of the mask)."""
    if version == 6 and value >> 32 == _MAPPED_HIGH:
        return 4, value & 0xFFFFFFFF, max(prefix - 96, 0)
    return version, value, prefix


def parse_ip_value(text: str) -> tuple[int, int] | None:
    """Go's ``net.ParseIP`` as ``(version, value)``; None where Go returns nil (mapped IPv6 comes back IPv4)."""
    if not isinstance(text, str) or "%" in text:
        return None
    if ":" in text:
        value = _parse_v6(text)
        return None if value is None else canonical_value(6, value)
    v4 = _parse_v4(text)
    return None if v4 is None else (4, v4)


def parse_cidr_parts(text: str) -> tuple[int, int, int, int] | None:
    """Go's ``net.ParseCIDR`` keeping the host part, as ``(version, value, prefix, mask bits)``; None where Go fails.

    ``version``/``value`` are the address canonical (an IPv4-mapped address is
    IPv4); ``prefix`` counts within ``mask bits``, which the text decides as Go
    does: 128 for any IPv6 spelling, so ``::ffff:1.2.3.4/120`` is the IPv4
    address 1.2.3.4 with a 128-bit mask (the reference's ``Range.Canonicalize``
    refuses that pair: ``IPNet IP and Mask version mismatch``). The prefix is
    Go's ``dtoi``: ASCII digits only, leading zeros allowed however many
    (``/000024``), no sign, no space, at most the mask's bits.
    """
    if not isinstance(text, str):
        return None
    addr, sep, mask = text.partition("/")
    if not sep or not mask or not (mask.isascii() and mask.isdigit()):
        return None
    digits = mask.lstrip("0")
    if len(digits) > 3:  # beyond any mask (and never handed to int(): a long text would be refused by it)
        return None
    ip = parse_ip_value(addr)
    if ip is None:
        return None
    bits = 128 if ":" in addr else 32
    prefix = int(digits or "0")
    if prefix > bits:
        return None
    return ip[0], ip[1], prefix, bits


def parse_cidr_value(text: str) -> tuple[int, int, int] | None:
    """CNI's ``types.ParseCIDR`` (host part kept) as ``(version, value, prefix)``; None where Go fails.

    :func:`parse_cidr_parts` with the prefix taken as Go prints the network: an
    IPv4-mapped IPv6 network is IPv4 with the last 32 bits of its mask
    (``::ffff:1.2.3.4/120`` is ``1.2.3.4/24``).
    """
    parts = parse_cidr_parts(text)
    if parts is None:
        return None
    version, value, prefix, bits = parts
    if bits == 128 and version == 4:
        return 4, value, max(prefix - 96, 0)
    return version, value, prefix


def parse_interface(text: str) -> tuple[int, int, int]:
    """An address with its prefix (``"10.1.2.3/24"``) as :func:`parse_cidr_value` reads it.

    Raises:
        ValueError: where Go's ``ParseCIDR`` fails (``invalid CIDR address: <text>``).
    """
    parsed = parse_cidr_value(text)
    if parsed is None:
        raise ValueError(f"invalid CIDR address: {text}")
    return parsed


def parse_network(text: str) -> tuple[int, int, int]:
    """:func:`parse_interface` with the host bits cleared: ``(version, network address value, prefix)``.

    Raises:
        ValueError: where Go's ``ParseCIDR`` fails.
    """
    version, value, prefix = parse_interface(text)
    return version, value & mask_value(version, prefix), prefix


def mask_value(version: int, prefix: int) -> int:
    """The netmask of a ``/prefix`` of the family, as an integer (``value & mask`` is the network's address)."""
    bits = 32 if version == 4 else 128
    return ((1 << prefix) - 1) << (bits - prefix)


def value_key(version: int, value: int) -> int:
    """One integer per address of either family: the IPv4 value, or the IPv6 value with :data:`V6_TAG` set.

    Keys of the two families never meet and sort IPv4 first; the file store's
    index and the host-local engine speak in them.
    """
    return value if version == 4 else value | V6_TAG


def key_value(key: int) -> tuple[int, int]:
    """The address ``(version, value)`` of a :func:`value_key`."""
    return (4, key) if key < V6_TAG else (6, key ^ V6_TAG)


def ip_value_text(version: int, value: int) -> str:
    """Go's ``net.IP.String()`` of ``(version, value)``: dotted IPv4 (also for mapped IPv6) or RFC 5952 IPv6."""
    version, value = canonical_value(version, value)
    if version == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
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


def cidr_value_text(version: int, value: int, prefix: int) -> str:
    """CNI's ``types.IPNet`` text: the address with its host part, ``/``, the prefix length.

    A mapped IPv6 network prints as IPv4 with the last 32 bits of its mask.
    """
    version, value, prefix = canonical_cidr_value(version, value, prefix)
    return f"{ip_value_text(version, value)}/{prefix}"
