"""The sysctls plugins read and write, and the check that keeps every other key out.

Keys are written the ``/proc/sys`` way, with slashes (``net/ipv6/conf/eth0/accept_ra``),
so that interface names containing dots (``cni0.100``) stay unambiguous. A backend
accepts only these keys: a plugin has no business writing any other.
"""

from __future__ import annotations

import attrs

from cnicore._sysctlkey import (
    IPV4_CONF_SETTINGS,
    IPV6_CONF_SETTINGS,
    check_net_sysctl_path,
    sysctl_key_parts,
    sysctl_value_text,
)

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
