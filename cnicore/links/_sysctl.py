"""The sysctls plugins read and write, and the check that keeps every other key out.

Keys are written the ``/proc/sys`` way, with slashes (``net/ipv6/conf/eth0/accept_ra``),
so that interface names containing dots (``cni0.100``) stay unambiguous. A backend
accepts only these keys: a plugin has no business writing any other.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from cnicore._errors import InvalidConfigError
from cnicore.spec._validate import validate_interface_name

__all__ = ["IPV4_CONF_SETTINGS", "IPV6_CONF_SETTINGS", "SysctlKey", "check_net_sysctl_path", "check_sysctl_key",
           "check_sysctl_value"]

#: Per-interface IPv6 settings (``net/ipv6/conf/<if>/<setting>``).
IPV6_CONF_SETTINGS: Final = frozenset(
    {"forwarding", "accept_ra", "accept_dad", "enhanced_dad", "disable_ipv6", "keep_addr_on_down"}
)
#: Per-interface IPv4 settings (``net/ipv4/conf/<if>/<setting>``).
IPV4_CONF_SETTINGS: Final = frozenset({"arp_notify", "forwarding", "route_localnet"})

_CONF_RE = re.compile(r"net/(ipv4|ipv6)/conf/([^/]+)/([a-z_0-9]+)\Z")
_VALUE_RE = re.compile(r"-?[0-9]+\Z")


@attrs.frozen(kw_only=True)
class SysctlKey:
    """A checked key: ``net/ipv4/ip_forward`` (``interface`` None) or a per-interface setting.

    ``interface`` is ``all``, ``default`` or a link name.
    """

    path: str
    family: str
    interface: str | None
    setting: str


def check_sysctl_key(key: str) -> SysctlKey:
    """Parse ``key``; :class:`InvalidConfigError` unless it is one the plugins use.

    Allowed: ``net/ipv4/ip_forward``; ``net/ipv6/conf/<if>/`` + one of
    :data:`IPV6_CONF_SETTINGS`; ``net/ipv4/conf/<if>/`` + one of
    :data:`IPV4_CONF_SETTINGS`. Dots are accepted in place of slashes only when
    the interface name has no dot.
    """
    path = key.strip("/")
    if path.startswith("proc/sys/"):
        path = path[len("proc/sys/"):]
    if "/" not in path:
        path = path.replace(".", "/")
    if path == "net/ipv4/ip_forward":
        return SysctlKey(path=path, family="ipv4", interface=None, setting="ip_forward")
    match = _CONF_RE.match(path)
    if match is not None:
        family, interface, setting = match.groups()
        allowed = IPV6_CONF_SETTINGS if family == "ipv6" else IPV4_CONF_SETTINGS
        if setting in allowed:
            if interface not in ("all", "default"):
                validate_interface_name(interface)
            return SysctlKey(path=path, family=family, interface=interface, setting=setting)
    raise InvalidConfigError(f"sysctl {key!r} is not one the plugins may use", key="sysctl", value=key)


def check_sysctl_value(value: str | int) -> str:
    """The value as the kernel reads it; :class:`InvalidConfigError` unless an integer."""
    text = str(value).strip()
    if isinstance(value, bool) or not _VALUE_RE.match(text):
        raise InvalidConfigError(f"sysctl value {value!r} is not an integer", key="sysctl", value=str(value))
    return str(int(text))


def check_net_sysctl_path(path: str) -> str:
    """``path`` (below ``/proc/sys``, slashes) cleaned as Go's ``filepath.Clean`` would; it must lie under ``net/``.

    What the tuning plugin may write: any sysctl of the network subsystem, which
    is per network namespace. :class:`InvalidConfigError` otherwise, worded as
    the reference's ``invalid net sysctl key: %q``.
    """
    import posixpath

    cleaned = posixpath.normpath("/proc/sys/" + path)
    if not cleaned.startswith("/proc/sys/net/") or "\x00" in path:
        from cnicore._gofmt import go_quote

        raise InvalidConfigError(f"invalid net sysctl key: {go_quote(path)}", key="sysctl", value=path)
    return cleaned[len("/proc/sys/"):]
