"""The bridge plugin's engine on plain values and the standard library.

What the bridge decides, as opposed to how it is typed at the library's edge:
reading its configuration with Go's decoding rules (:func:`decode_bridge_conf`,
through :class:`~cnicore.plugins._netconf.GoStruct`, as the meta plugins read
theirs), the gateway plan of ``calcGateways`` (:func:`plan_gateways`, on
address strings) and the reference's message formatting of Go values. The typed
:class:`~cnicore.plugins.BridgeConfig` and :func:`~cnicore.plugins.calc_gateways`
are thin adapters over these functions: one implementation serves both.

Nothing here imports attrs, netaddr or the link port (an import-budget test
holds it to that), so an executed plugin can run it at the cost of the
standard library.
"""

from __future__ import annotations

import ipaddress

from cnicore._errors import InvalidConfigError
from cnicore._gofmt import go_quote
from cnicore.plugins._netconf import GoStruct
from cnicore.spec._args import parse_cni_args

TYPE_CHECKING = False  # typing is left to type checkers: it slows the start of every exec
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, Final

__all__ = ["DEFAULT_BRIDGE", "BridgeConf", "GatewayPlan", "decode_bridge_conf", "global_unicast", "go_bool",
           "go_errno_text", "go_ipnet_value", "plan_gateways"]

#: The bridge name when the configuration gives none.
DEFAULT_BRIDGE: Final = "cni0"
_PREFIX: Final = "failed to load netconf: "
# The reference's configuration struct, named in its messages for its own top-level fields.
_STRUCT: Final = "NetConf"


class BridgeConf:
    """The bridge plugin's configuration (the reference's ``NetConf``), checked, on plain values.

    ``vlan_trunk`` is None without ``vlanTrunk``, else the trunk's VLAN IDs, sorted
    and distinct (an empty list gives ``()``, which still turns VLAN filtering on).
    ``ipam_type`` is ``""`` for layer-2 mode. ``mac`` is the container MAC asked for
    (``runtimeConfig.mac`` over ``args.cni.mac`` over ``CNI_ARGS`` ``MAC``). ``dns``
    holds ``nameservers``, ``domain``, ``search`` and ``options`` (tuples of
    strings, ``domain`` a string).
    """

    __slots__ = ("bridge", "cni_version", "disable_container_interface", "dns", "enable_dad", "force_address",
                 "hairpin_mode", "ip_masq", "ip_masq_backend", "ipam_type", "is_default_gateway", "is_gateway",
                 "mac", "macspoofchk", "mtu", "name", "port_isolation", "preserve_default_vlan", "promisc_mode",
                 "vlan", "vlan_trunk")

    #: The fields, in the order :meth:`fields` gives them (``dns`` apart).
    FIELDS: Final = ("name", "cni_version", "bridge", "is_gateway", "is_default_gateway", "force_address", "ip_masq",
                     "ip_masq_backend", "mtu", "hairpin_mode", "promisc_mode", "vlan", "vlan_trunk",
                     "preserve_default_vlan", "macspoofchk", "enable_dad", "disable_container_interface",
                     "port_isolation", "mac", "ipam_type")

    def __init__(self, *, name: str, cni_version: str, bridge: str, is_gateway: bool, is_default_gateway: bool,
                 force_address: bool, ip_masq: bool, ip_masq_backend: str | None, mtu: int, hairpin_mode: bool,
                 promisc_mode: bool, vlan: int, vlan_trunk: tuple[int, ...] | None, preserve_default_vlan: bool,
                 macspoofchk: bool, enable_dad: bool, disable_container_interface: bool, port_isolation: bool,
                 mac: str, ipam_type: str, dns: dict[str, Any]) -> None:
        self.name = name
        self.cni_version = cni_version
        self.bridge = bridge
        self.is_gateway = is_gateway
        self.is_default_gateway = is_default_gateway
        self.force_address = force_address
        self.ip_masq = ip_masq
        self.ip_masq_backend = ip_masq_backend
        self.mtu = mtu
        self.hairpin_mode = hairpin_mode
        self.promisc_mode = promisc_mode
        self.vlan = vlan
        self.vlan_trunk = vlan_trunk
        self.preserve_default_vlan = preserve_default_vlan
        self.macspoofchk = macspoofchk
        self.enable_dad = enable_dad
        self.disable_container_interface = disable_container_interface
        self.port_isolation = port_isolation
        self.mac = mac
        self.ipam_type = ipam_type
        self.dns = dns

    def fields(self) -> dict[str, Any]:
        """Every field but ``dns``, by name."""
        return {name: getattr(self, name) for name in self.FIELDS}


def _mac_arg(cni_args: str) -> str:
    if not cni_args:
        return ""
    value = parse_cni_args(cni_args, {"MAC": str}).get("MAC", "")
    return value if isinstance(value, str) else ""


# The Go types of the reference's nested fields, as its decoder names them in its messages: (type, struct).
_ARGS: Final = ('struct { Cni main.BridgeArgs "json:\\"cni,omitempty\\"" }', "")
_ARGS_CNI: Final = ("main.BridgeArgs", "BridgeArgs")
_RUNTIME: Final = ('struct { Mac string "json:\\"mac,omitempty\\"" }', "")
_IPAM: Final = ("types.IPAM", "IPAM")
_DNS: Final = ("types.DNS", "DNS")
# Beyond the reference 1.1.1 (upstream's later NetConf): []*VlanTrunk, each a VlanTrunk.
_TRUNK: Final = ("main.VlanTrunk", "VlanTrunk")


def _sub(parent: GoStruct, name: str, types: tuple[str, str]) -> GoStruct:
    """The nested object ``name`` (empty when absent or null), read as Go reads the struct type ``types``.

    Go's message names the innermost struct type (``""`` for an anonymous one) and the full key path.
    """
    go_type, struct = types
    value = parent.raw(name)
    if value is None:
        value = {}
    elif not isinstance(value, dict):
        raise parent.error(value, name, go_type)
    return GoStruct(value, struct, f"{parent.path}{name}.", _PREFIX)


def _dns(top: GoStruct) -> dict[str, Any]:
    dns = _sub(top, "dns", _DNS)
    return {"nameservers": tuple(dns.get_strings("nameservers") or ()), "domain": dns.get_str("domain") or "",
            "search": tuple(dns.get_strings("search") or ()), "options": tuple(dns.get_strings("options") or ())}


def decode_bridge_conf(config: Mapping[str, Any], cni_args: str = "") -> BridgeConf:
    """Read the bridge plugin's options from a decoded configuration and ``CNI_ARGS``.

    Raises:
        InvalidConfigError: a value of the wrong type (``failed to load netconf: json: cannot unmarshal ...``,
            naming the key), a VLAN ID out of range, a bad trunk, ``vlan`` with a non-empty trunk, an unknown
            ``ipMasqBackend``, bad ``CNI_ARGS``.
    """
    top = GoStruct(config if isinstance(config, dict) else dict(config), _STRUCT, prefix=_PREFIX)
    vlan = top.get_int("vlan") or 0
    if not 0 <= vlan <= 4094:
        raise InvalidConfigError(f"invalid VLAN ID {vlan} (must be between 0 and 4094)", key="vlan", value=vlan)
    trunk = _vlan_trunk(top)
    # The reference's ports are access ports (untagged) or trunk ports (tagged), never both.
    if vlan > 0 and trunk:
        raise InvalidConfigError("cannot set vlan and vlanTrunk at the same time", key="vlanTrunk",
                                 value={"vlan": vlan, "vlanTrunk": list(trunk)})
    mac = _mac_arg(cni_args)
    mac = _sub(_sub(top, "args", _ARGS), "cni", _ARGS_CNI).get_str("mac") or mac
    mac = _sub(top, "runtimeConfig", _RUNTIME).get_str("mac") or mac
    ipam_type = _sub(top, "ipam", _IPAM).get_str("type") or ""
    backend = top.get_str("ipMasqBackend", pointer=True)
    if backend is not None and backend not in ("iptables", "nftables"):
        raise InvalidConfigError(f"unknown ipmasq backend {go_quote(backend)}", key="ipMasqBackend", value=backend)
    return BridgeConf(
        name=top.get_str("name") or "",
        cni_version=top.get_str("cniVersion") or "",
        bridge=top.get_str("bridge") or DEFAULT_BRIDGE,
        is_gateway=bool(top.get_bool("isGateway")),
        is_default_gateway=bool(top.get_bool("isDefaultGateway")),
        force_address=bool(top.get_bool("forceAddress")),
        ip_masq=bool(top.get_bool("ipMasq")),
        ip_masq_backend=backend,
        mtu=top.get_int("mtu") or 0,
        hairpin_mode=bool(top.get_bool("hairpinMode")),
        promisc_mode=bool(top.get_bool("promiscMode")),
        vlan=vlan,
        vlan_trunk=trunk,
        preserve_default_vlan=top.get_bool("preserveDefaultVlan") is not False,  # Go pre-sets it to true
        macspoofchk=bool(top.get_bool("macspoofchk")),
        enable_dad=bool(top.get_bool("enabledad")),
        disable_container_interface=bool(top.get_bool("disableContainerInterface")),
        port_isolation=bool(top.get_bool("portIsolation")),
        mac=mac,
        ipam_type=ipam_type,
        dns=_dns(top),
    )


def _vlan_trunk(top: GoStruct) -> tuple[int, ...] | None:
    """The reference's ``collectVlanTrunk``: the trunk's VLAN IDs, sorted, each once."""
    trunk = top.raw("vlanTrunk", pointer=True)
    if trunk is None:
        return None
    if not isinstance(trunk, list):
        raise top.error(trunk, "vlanTrunk", "[]*main.VlanTrunk")
    vids: set[int] = set()
    for item in trunk:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise top.error(item, "vlanTrunk", _TRUNK[0])
        entry = GoStruct(item, _TRUNK[1], "vlanTrunk.", _PREFIX)
        low, high, single = (entry.get_int(name, pointer=True) for name in ("minID", "maxID", "id"))
        if low is not None and high is not None:
            if not 0 < low <= 4094:
                raise InvalidConfigError("incorrect trunk minID parameter", key="vlanTrunk.minID", value=low)
            if not 0 < high <= 4094:
                raise InvalidConfigError("incorrect trunk maxID parameter", key="vlanTrunk.maxID", value=high)
            if high < low:
                raise InvalidConfigError("minID is greater than maxID in trunk parameter", key="vlanTrunk",
                                         value=item)
            vids.update(range(low, high + 1))
        elif high is not None:
            raise InvalidConfigError("minID and maxID should be configured simultaneously, minID is missing",
                                     key="vlanTrunk.minID", value=item)
        elif low is not None:
            raise InvalidConfigError("minID and maxID should be configured simultaneously, maxID is missing",
                                     key="vlanTrunk.maxID", value=item)
        if single is not None:
            if not 0 < single <= 4094:
                raise InvalidConfigError("incorrect trunk id parameter", key="vlanTrunk.id", value=single)
            vids.add(single)
    return tuple(sorted(vids))


# ----------------------------------------------------------------------------------------- gateways


class GatewayPlan:
    """What :func:`plan_gateways` decided.

    Attributes:
        gateways: the gateway of each IP (in the order given; None for none).
        default_routes: the default routes to append, as ``(dst, gateway)`` strings (gateway may be None).
        bridge_addresses: per family (4, 6), the gateway addresses (``"ip/prefixlen"``, the prefix length of
            the container's address) to put on the bridge.
    """

    __slots__ = ("bridge_addresses", "default_routes", "gateways")

    def __init__(self, gateways: list[str | None], default_routes: list[tuple[str, str | None]],
                 bridge_addresses: dict[int, list[str]]) -> None:
        self.gateways = gateways
        self.default_routes = default_routes
        self.bridge_addresses = bridge_addresses


def plan_gateways(ips: Sequence[tuple[str, str | None]], routes: Sequence[tuple[str, str | None]], *,
                  is_gateway: bool, is_default_gateway: bool) -> GatewayPlan:
    """The reference's ``calcGateways`` on strings.

    ``ips`` are the IPAM addresses (``"ip/prefixlen"``) with their gateways (None
    when IPAM gave none); ``routes`` the routes so far (destination, gateway). A
    missing gateway is the subnet's network address plus one when ``is_gateway``;
    with ``is_default_gateway`` each family gets a default route through its first
    gateway unless a route with a gateway to a ``/0`` of that family exists.
    """
    gateways: list[str | None] = []
    defaults: list[tuple[str, str | None]] = []
    bridge: dict[int, list[str]] = {4: [], 6: []}
    default_found = {4: False, 6: False}
    for address, given in ips:
        interface = ipaddress.ip_interface(address)
        version = interface.version
        gateway = given
        if gateway is None and is_gateway:
            # calcGatewayIP: the subnet's network address plus one.
            gateway = str(interface.network.network_address + 1)
        if is_default_gateway and not default_found[version]:
            # Go compares the masked destination's text: any /0 of the family is "the default".
            default_found[version] = any(
                gw is not None and _prefix(dst) == (version, 0) for dst, gw in routes)
            if not default_found[version]:
                defaults.append(("0.0.0.0/0" if version == 4 else "::/0", gateway))
                default_found[version] = True
        if gateway is not None:
            bridge[version].append(f"{gateway}/{interface.network.prefixlen}")
        gateways.append(gateway)
    return GatewayPlan(gateways, defaults, bridge)


def _prefix(dst: str) -> tuple[int, int]:
    network = ipaddress.ip_network(dst, strict=False)
    return network.version, network.prefixlen


# ----------------------------------------------------------------------------------------- Go's texts


def go_ipnet_value(dst: str, *, synthetic: bool) -> str:
    """A route destination as Go's ``%v`` prints a ``net.IPNet`` value: ``{IP hexmask}``.

    A destination parsed from JSON has a 4-byte mask for IPv4; the default routes the
    reference adds itself use the 16-byte form of ``0.0.0.0`` as their mask.
    """
    network = ipaddress.ip_network(dst, strict=False)
    if synthetic and network.version == 4:
        return "{0.0.0.0 00000000000000000000ffff00000000}"
    width = 8 if network.version == 4 else 32
    return f"{{{network.network_address} {int(network.netmask):0{width}x}}}"


def go_errno_text(msg: str) -> str:
    """The kernel's refusal in ``msg`` as Go's ``syscall.Errno`` prints it (``file exists``), when there is one."""
    if not msg.endswith(")") or "(" not in msg:
        return msg
    text = msg[msg.rindex("(") + 1:-1]
    if not text or ")" in text:
        return msg
    return text[:1].lower() + text[1:]


def go_bool(value: bool) -> str:
    """Go's ``%v`` of a bool."""
    return "true" if value else "false"


def global_unicast(ip: str) -> bool:
    """Go's ``IsGlobalUnicast``: not unspecified, loopback, multicast, link-local or (IPv4) broadcast."""
    address = ipaddress.ip_address(ip)
    if address.version == 4 and int(address) == 0xFFFFFFFF:
        return False
    return not (address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local)
