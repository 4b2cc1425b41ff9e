"""The sysctls plugins read and write, and the check that keeps every other key out.

Keys are written the ``/proc/sys`` way, with slashes (``net/ipv6/conf/eth0/accept_ra``),
so that interface names containing dots (``cni0.100``) stay unambiguous. A backend
accepts only these keys: a plugin has no business writing any other.
"""

from __future__ import annotations

import attrs

from cnicore._errors import InvalidConfigError
from cnicore._sysctlkey import IPV4_CONF_SETTINGS, IPV6_CONF_SETTINGS, sysctl_key_parts, sysctl_value_text

__all__ = ["IPV4_CONF_SETTINGS", "IPV6_CONF_SETTINGS", "SysctlKey", "check_net_sysctl_path", "check_sysctl_key",
           "check_sysctl_value"]


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
    path, family, interface, setting = sysctl_key_parts(key)
    return SysctlKey(path=path, family=family, interface=interface, setting=setting)


def check_sysctl_value(value: str | int) -> str:
    """The value as the kernel reads it; :class:`InvalidConfigError` unless an integer."""
    return sysctl_value_text(value)


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
