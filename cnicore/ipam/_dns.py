"""``resolvConf`` parsing with the reference's rules (host-local's dns.go)."""

from __future__ import annotations

import attrs

from cnicore._errors import InvalidConfigError
from cnicore._readfile import MAX_DOCUMENT_BYTES, read_regular

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


def parse_resolv_conf(text: str) -> DNS:
    """Parse resolv.conf text: ``nameserver`` appends, ``domain`` sets (last wins),
    ``search`` and ``options`` append all their words; blank lines, lines starting
    with ``#`` or ``;`` and lines with fewer than two words are skipped.
    """
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    domain = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        if fields[0] == "nameserver":
            nameservers.append(fields[1])
        elif fields[0] == "domain":
            domain = fields[1]
        elif fields[0] == "search":
            search.extend(fields[1:])
        elif fields[0] == "options":
            options.extend(fields[1:])
    return DNS(nameservers=tuple(nameservers), domain=domain, search=tuple(search), options=tuple(options))


def load_resolv_conf(path: str) -> DNS:
    """Read and parse a resolv.conf file.

    Raises:
        InvalidConfigError: the file cannot be read (``open <path>: <reason>``, key ``ipam.resolvConf``).
    """
    try:
        text = read_regular(path, MAX_DOCUMENT_BYTES).decode("utf-8", "surrogateescape")
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise InvalidConfigError(f"open {path}: {reason}", key="ipam.resolvConf", value=path) from exc
    return parse_resolv_conf(text)
