"""``resolvConf`` as a typed value; read with the reference's rules by the engine (host-local's dns.go)."""

from __future__ import annotations

import attrs

from cnicore.ipam import _engine

__all__ = ["DNS", "load_resolv_conf", "parse_resolv_conf"]


@attrs.frozen(slots=True, kw_only=True)
class DNS:
    """DNS settings for a result: the reference's ``types.DNS``."""

    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing is set (results then print ``"dns": {}`` or omit it)."""
        return not (self.nameservers or self.domain or self.search or self.options)

    @classmethod
    def from_plain(cls, dns: _engine.DNSValue) -> DNS:
        """The typed value of the engine's ``(nameservers, domain, search, options)``."""
        nameservers, domain, search, options = dns
        return cls(nameservers=tuple(nameservers), domain=domain, search=tuple(search), options=tuple(options))

    def plain(self) -> _engine.DNSValue:
        """The engine's ``(nameservers, domain, search, options)``."""
        return self.nameservers, self.domain, self.search, self.options


def parse_resolv_conf(text: str) -> DNS:
    """Parse resolv.conf text: ``nameserver`` appends, ``domain`` sets (last wins),
    ``search`` and ``options`` append all their words; blank lines, lines starting
    with ``#`` or ``;`` and lines with fewer than two words are skipped.
    """
    return DNS.from_plain(_engine.parse_resolv_conf(text))


def load_resolv_conf(path: str) -> DNS:
    """Read and parse a resolv.conf file.

    Raises:
        InvalidConfigError: the file cannot be read (``open <path>: <reason>``, key ``ipam.resolvConf``).
    """
    return DNS.from_plain(_engine.load_resolv_conf(path))
