"""The sysctls plugins read and write, checked on plain strings (standard library only).

The one check behind :func:`cnicore.links.check_sysctl_key` and
:func:`~cnicore.links.check_sysctl_value` (which type its answer) and behind the
executed bridge's plain link port: a plugin reads and writes only these keys.
"""

from __future__ import annotations

from cnicore._errors import InvalidConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = ["IPV4_CONF_SETTINGS", "IPV6_CONF_SETTINGS", "check_net_sysctl_path", "sysctl_key_parts", "sysctl_value_text"]

#: Per-interface IPv6 settings (``net/ipv6/conf/<if>/<setting>``).
IPV6_CONF_SETTINGS: Final = frozenset(
    {"forwarding", "accept_ra", "accept_dad", "enhanced_dad", "disable_ipv6", "keep_addr_on_down"}
)
#: Per-interface IPv4 settings (``net/ipv4/conf/<if>/<setting>``).
IPV4_CONF_SETTINGS: Final = frozenset({"arp_notify", "forwarding", "route_localnet"})
_SETTING_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz_0123456789")
_DIGITS: Final = frozenset("0123456789")


def sysctl_key_parts(key: str) -> tuple[str, str, str | None, str]:
    """``key`` checked: ``(path below /proc/sys, "ipv4" or "ipv6", interface or None, setting)``.

    Allowed: ``net/ipv4/ip_forward``; ``net/ipv6/conf/<if>/`` + one of
    :data:`IPV6_CONF_SETTINGS`; ``net/ipv4/conf/<if>/`` + one of
    :data:`IPV4_CONF_SETTINGS`. Dots are accepted in place of slashes only when
    the interface name has no dot. Raises :class:`~cnicore.InvalidConfigError`
    for any other key, :class:`~cnicore.InvalidEnvironmentError` for a bad interface name.
    """
    path = key.strip("/")
    if path.startswith("proc/sys/"):
        path = path[len("proc/sys/"):]
    if "/" not in path:
        path = path.replace(".", "/")
    if path == "net/ipv4/ip_forward":
        return path, "ipv4", None, "ip_forward"
    parts = path.split("/")
    if (len(parts) == 5 and parts[0] == "net" and parts[1] in ("ipv4", "ipv6") and parts[2] == "conf"
            and parts[3] and parts[4] and set(parts[4]) <= _SETTING_CHARS):
        family, interface, setting = parts[1], parts[3], parts[4]
        if setting in (IPV6_CONF_SETTINGS if family == "ipv6" else IPV4_CONF_SETTINGS):
            if interface not in ("all", "default"):
                from cnicore.spec._validate import validate_interface_name

                validate_interface_name(interface)
            return path, family, interface, setting
    raise InvalidConfigError(f"sysctl {key!r} is not one the plugins may use", key="sysctl", value=key)


def sysctl_value_text(value: str | int) -> str:
    """The value as the kernel reads it; :class:`~cnicore.InvalidConfigError` unless an integer."""
    text = str(value).strip()
    digits = text[1:] if text.startswith("-") else text
    if isinstance(value, bool) or not digits or not set(digits) <= _DIGITS:
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
