"""IP address text exactly as the reference (Go's ``net`` package) reads and writes it.

The file store names each reservation file after ``net.IP.String()`` of the
address, so two implementations sharing a directory must agree on one spelling
per address: IPv4 dotted quad, IPv6 lower-case with the longest run of two or
more zero groups compressed (leftmost on a tie), and IPv4-mapped IPv6 addresses
shown (and stored) as IPv4. Parsing is as strict as Go's ``net.ParseIP``: no
leading zeros in IPv4, no zone, no surrounding whitespace. There is one parser
and one printer, :mod:`cnicore.spec._goint`'s; this module names them for the stores.
"""

from __future__ import annotations

from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore.spec._goaddr import canonical_ip, go_ip_text, go_parse_cidr, go_parse_ip

__all__ = ["canonical_ip", "ip_from_file_name", "ip_text", "parse_cidr", "parse_ip"]

# One spelling of an address for results and reservation files alike: the store
# names files with the same functions the result module prints addresses with.
ip_text = go_ip_text
parse_ip = go_parse_ip
#: ``net.ParseCIDR`` keeping the host bits of the address (CNI's ``types.IPNet``); None where Go fails. The one CIDR
#: parser (:func:`cnicore.spec.go_parse_cidr`): IPv4-mapped IPv6 text is IPv4, prefixes may carry leading zeros.
parse_cidr = go_parse_cidr


def ip_from_file_name(name: str) -> IPAddress | None:
    """The address a reservation file called ``name`` stands for, or None.

    Only the canonical spelling counts: the reference creates reservation files
    under that name and no other, so ``010.0.0.1`` or ``2001:DB8::1`` is not a
    reservation either implementation would ever take or check. The file
    store's own reader of names (one rule for the store and its callers).
    """
    from cnicore.stores._filecore import _key_from_name
    from cnicore.stores._index import key_ip

    key = _key_from_name(name)
    return None if key is None else key_ip(key)
