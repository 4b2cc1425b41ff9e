"""Plain-data values the link port speaks in: namespaces, links, addresses, routes.

Every value is frozen, slotted and keyword-only; a value that exists is valid.
Addresses keep their host part (``10.1.2.2/24``), which ``netaddr.IPNetwork``
equality would ignore, so :class:`Address` compares on both the IP and the
prefix length.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import attrs
import netaddr

from cnicore._errors import InvalidConfigError
from cnicore.spec._validate import validate_interface_name

__all__ = [
    "HOST_NAMESPACE",
    "MAIN_TABLE",
    "Address",
    "AddressState",
    "BridgeSpec",
    "Link",
    "Namespace",
    "PortVlan",
    "Route",
    "RouteScope",
    "VethPair",
    "normalize_mac",
]

#: The kernel's main routing table (``ip route`` without ``table``).
MAIN_TABLE: Final = 254

RouteScope = Literal["universe", "link", "host"]
_SCOPES: Final = ("universe", "link", "host")

_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")


def normalize_mac(value: Any) -> str:
    """A MAC address as the plugins print it: six lowercase, colon-separated octets.

    Raises :class:`InvalidConfigError` (key ``mac``) for anything netaddr cannot
    read as a 48-bit MAC.
    """
    if isinstance(value, str) and _MAC_RE.match(value):
        return value
    try:
        eui = netaddr.EUI(value, version=48)
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise InvalidConfigError(f"invalid MAC address {value!r}", key="mac", value=str(value)) from exc
    eui.dialect = netaddr.mac_unix_expanded
    return str(eui)


def _to_ip(value: Any) -> netaddr.IPAddress:
    if isinstance(value, netaddr.IPAddress):
        return value
    try:
        return netaddr.IPAddress(value)
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise InvalidConfigError(f"invalid IP address {value!r}", key="ip", value=str(value)) from exc


def _to_optional_ip(value: Any) -> netaddr.IPAddress | None:
    return None if value is None else _to_ip(value)


def _to_cidr(value: Any) -> netaddr.IPNetwork:
    # Route destinations are networks: the host part is dropped, as the kernel does.
    try:
        return netaddr.IPNetwork(value).cidr
    except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
        raise InvalidConfigError(f"invalid route destination {value!r}", key="dst", value=str(value)) from exc


def _check_ifname(_inst: Any, _attr: Any, value: str) -> None:
    validate_interface_name(value)


def _check_optional_ifname(_inst: Any, _attr: Any, value: str | None) -> None:
    if value is not None:
        validate_interface_name(value)


@attrs.frozen(kw_only=True)
class Namespace:
    """A network namespace, named by the path that opens it.

    ``path`` is ``/var/run/netns/NAME``, ``/proc/PID/ns/net`` or any bind mount of
    a namespace; ``None`` means the namespace of the calling process (the host).
    Obtain one from a backend's ``open_namespace`` (which checks it exists) or use
    :data:`HOST_NAMESPACE`.
    """

    path: str | None

    def __str__(self) -> str:
        return self.path if self.path is not None else "<host>"


#: The namespace of the calling process.
HOST_NAMESPACE: Final = Namespace(path=None)


@attrs.frozen(kw_only=True, order=True)
class Address:
    """An address on an interface: the IP and its prefix length (``10.1.2.2/24``)."""

    ip: netaddr.IPAddress = attrs.field(converter=_to_ip)
    prefixlen: int = attrs.field()

    @prefixlen.validator
    def _check_prefixlen(self, _attr: Any, value: int) -> None:
        limit = 32 if self.ip.version == 4 else 128
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise InvalidConfigError(f"invalid prefix length {value!r} for {self.ip}", key="prefixlen", value=value)

    @classmethod
    def parse(cls, value: str | netaddr.IPNetwork) -> Address:
        """Read ``"10.1.2.2/24"`` (or an ``IPNetwork``); a bare IP gets a full-length prefix."""
        try:
            net = netaddr.IPNetwork(value)
        except (netaddr.AddrFormatError, TypeError, ValueError) as exc:
            raise InvalidConfigError(f"invalid address {value!r}", key="address", value=str(value)) from exc
        return cls(ip=net.ip, prefixlen=net.prefixlen)

    @property
    def version(self) -> int:
        """4 or 6."""
        return int(self.ip.version)

    @property
    def interface(self) -> netaddr.IPNetwork:
        """The address as an ``IPNetwork`` that keeps the host part (``10.1.2.2/24``)."""
        return netaddr.IPNetwork(f"{self.ip}/{self.prefixlen}")

    @property
    def network(self) -> netaddr.IPNetwork:
        """The subnet the address is on (``10.1.2.0/24``)."""
        return self.interface.cidr

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


@attrs.frozen(kw_only=True)
class AddressState:
    """An address and where it stands in IPv6 duplicate address detection (DAD).

    ``tentative``: DAD has not finished (the kernel does not use the address yet);
    ``dad_failed``: DAD found the address in use elsewhere (the kernel keeps it
    tentative for good). IPv4 addresses are never either.
    """

    address: Address
    tentative: bool = False
    dad_failed: bool = False


@attrs.frozen(kw_only=True)
class Route:
    """A route in a namespace's routing table.

    ``metric`` ``None`` means the kernel's default when adding (0 for IPv4, 1024 for
    IPv6) and "any" when deleting (the kernel then deletes the matching route with the
    lowest metric); listed routes always carry the real metric.
    ``device`` is an interface name; ``source`` the preferred source address
    (``src``). IPv6 routes have no scope: the kernel reports them as ``universe``,
    and so do values built here.
    """

    dst: netaddr.IPNetwork = attrs.field(converter=_to_cidr)
    gateway: netaddr.IPAddress | None = attrs.field(default=None, converter=_to_optional_ip)
    device: str | None = attrs.field(default=None, validator=_check_optional_ifname)
    metric: int | None = None
    table: int = MAIN_TABLE
    scope: RouteScope = attrs.field(default="universe")
    source: netaddr.IPAddress | None = attrs.field(default=None, converter=_to_optional_ip)

    @scope.validator
    def _check_scope(self, _attr: Any, value: str) -> None:
        if value not in _SCOPES:
            raise InvalidConfigError(f"invalid route scope {value!r}", key="scope", value=value)
        if value != "universe" and self.dst.version == 6:
            raise InvalidConfigError("IPv6 routes have no scope", key="scope", value=value)

    def __attrs_post_init__(self) -> None:
        for name in ("gateway", "source"):
            ip = getattr(self, name)
            if ip is not None and ip.version != self.dst.version:
                raise InvalidConfigError(f"route {name} {ip} is not of the family of {self.dst}",
                                         key=name, value=str(ip))
        if self.device is None and self.gateway is None:
            raise InvalidConfigError(f"route to {self.dst} needs a device or a gateway", key="dst",
                                     value=str(self.dst))

    @property
    def version(self) -> int:
        """4 or 6."""
        return int(self.dst.version)


@attrs.frozen(kw_only=True)
class Link:
    """What a backend reports about one interface.

    ``kind`` is ``"loopback"``, ``"bridge"``, ``"veth"`` or the kernel's kind word
    for anything else. ``carrier`` is the kernel's LOWER_UP flag (a veth has
    carrier when both ends are up), which the kernel sets synchronously;
    ``oper_state`` (``up``, ``down``, ``lowerlayerdown``, ``unknown``...) follows
    it asynchronously. ``master`` names the bridge a port is attached to;
    ``hairpin`` is the port's hairpin mode, ``isolated`` its isolation flag (an
    isolated port forwards only to non-isolated ones). ``addresses`` excludes the
    IPv6 link-local addresses the kernel creates by itself. ``promiscuous`` and
    ``allmulti`` are the IFF_PROMISC and IFF_ALLMULTI flags, ``txqueuelen`` the
    transmit queue length, ``alias`` the interface alias (``""`` when unset).
    """

    index: int
    name: str
    kind: str
    mac: str = attrs.field(converter=normalize_mac)
    mtu: int
    admin_up: bool
    carrier: bool
    oper_state: str
    master: str | None = None
    promiscuous: bool = False
    vlan_filtering: bool = False
    hairpin: bool = False
    isolated: bool = False
    addresses: tuple[Address, ...] = ()
    allmulti: bool = False
    txqueuelen: int = 0
    alias: str = ""


@attrs.frozen(kw_only=True)
class BridgeSpec:
    """The bridge a plugin wants: created if missing, then brought up.

    ``mtu`` and ``vlan_filtering`` apply at creation only (an existing bridge is
    left as it is, as the reference does); ``promiscuous`` is switched on for an
    existing bridge too.
    """

    name: str = attrs.field(validator=_check_ifname)
    mtu: int | None = None
    promiscuous: bool = False
    vlan_filtering: bool = False


def _check_vid(_inst: Any, _attr: Any, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4094:
        raise InvalidConfigError(f"invalid VLAN ID {value!r} (must be between 1 and 4094)", key="vid", value=value)


@attrs.frozen(kw_only=True)
class PortVlan:
    """One entry of a bridge port's VLAN table.

    ``pvid``: untagged frames arriving on the port join this VLAN (one VLAN per
    port at most is the PVID). ``untagged``: frames of this VLAN leave the port
    without a tag.
    """

    vid: int = attrs.field(validator=_check_vid)
    pvid: bool = False
    untagged: bool = False


@attrs.frozen(kw_only=True)
class VethPair:
    """The two ends of a veth pair, each as seen from its own namespace."""

    container: Link
    host: Link
