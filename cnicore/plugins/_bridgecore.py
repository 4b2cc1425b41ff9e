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

from cnicore._errors import InvalidConfigError
from cnicore._gofmt import go_errno, go_quote
from cnicore._linkplan import LinkInfo, spoof_check_ref_id
from cnicore.plugins._netconf import GoStruct
from cnicore.spec._args import parse_cni_args
from cnicore.spec._goint import ip_value_text, mask_value, parse_interface, parse_ip_value, parse_network
from cnicore.spec._resultobj import dns_object, interface_object, ip_object_100, result_object_100, route_object

TYPE_CHECKING = False  # typing is left to type checkers: it slows the start of every exec
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any, Final

__all__ = ["CONTAINER_INDEX", "DEFAULT_BRIDGE", "BridgeConf", "BridgeEngine", "GatewayPlan", "LinkInfo",
           "decode_bridge_conf", "global_unicast", "go_bool", "go_errno_text", "go_ipnet_value", "plan_gateways"]

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
        # Go pre-sets the default and only a present string replaces it: "" stays "" (and ADD refuses it).
        bridge=_or_default(top.get_str("bridge"), DEFAULT_BRIDGE),
        is_gateway=bool(top.get_bool("isGateway")),
        is_default_gateway=bool(top.get_bool("isDefaultGateway")),
        force_address=bool(top.get_bool("forceAddress")),
        ip_masq=bool(top.get_bool("ipMasq")),
        ip_masq_backend=backend,
        # An MTU of 0 or less is no MTU: the reference's netlink library sets one only when it is positive.
        mtu=max(top.get_int("mtu") or 0, 0),
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


def _or_default(value: str | None, default: str) -> str:
    return default if value is None else value


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
        version, network, prefix = parse_network(address)
        gateway = given
        if gateway is None and is_gateway:
            # calcGatewayIP: the subnet's network address plus one.
            gateway = ip_value_text(version, network + 1)
        if is_default_gateway and not default_found[version]:
            # Go compares the masked destination's text: any /0 of the family is "the default".
            default_found[version] = any(
                gw is not None and _prefix(dst) == (version, 0) for dst, gw in routes)
            if not default_found[version]:
                defaults.append(("0.0.0.0/0" if version == 4 else "::/0", gateway))
                default_found[version] = True
        if gateway is not None:
            bridge[version].append(f"{gateway}/{prefix}")
        gateways.append(gateway)
    return GatewayPlan(gateways, defaults, bridge)


def _prefix(dst: str) -> tuple[int, int]:
    version, _, prefix = parse_interface(dst)
    return version, prefix


# ----------------------------------------------------------------------------------------- Go's texts


def go_ipnet_value(dst: str, *, synthetic: bool) -> str:
    """A route destination as Go's ``%v`` prints a ``net.IPNet`` value: ``{IP hexmask}``.

    A destination parsed from JSON has a 4-byte mask for IPv4; the default routes the
    reference adds itself use the 16-byte form of ``0.0.0.0`` as their mask.
    """
    version, network, prefix = parse_network(dst)
    if synthetic and version == 4:
        return "{0.0.0.0 00000000000000000000ffff00000000}"
    width = 8 if version == 4 else 32
    return f"{{{ip_value_text(version, network)} {mask_value(version, prefix):0{width}x}}}"


def go_errno_text(msg: str) -> str:
    """The kernel's refusal in ``msg`` as Go's ``syscall.Errno`` prints it (``file exists``), when there is one."""
    if not msg.endswith(")") or "(" not in msg:
        return msg
    text = msg[msg.rindex("(") + 1:-1]
    if not text or ")" in text:
        return msg
    return go_errno(text)


def go_bool(value: bool) -> str:
    """Go's ``%v`` of a bool."""
    return "true" if value else "false"


def global_unicast(ip: str) -> bool:
    """Go's ``IsGlobalUnicast``: not unspecified, loopback, multicast, link-local or (IPv4) broadcast."""
    parsed = parse_ip_value(ip)
    if parsed is None:
        raise ValueError(f"invalid IP address: {ip}")
    version, value = parsed
    if version == 4:
        # 0.0.0.0, 127/8, 224/4 (multicast), 169.254/16 (link-local), the broadcast address
        return not (value == 0 or value >> 24 == 127 or value >> 28 == 0xE or value >> 16 == 0xA9FE
                    or value == 0xFFFFFFFF)
    # ::, ::1, ff00::/8 (multicast), fe80::/10 (link-local)
    return not (value in (0, 1) or value >> 120 == 0xFF or value >> 118 == 0xFE80 >> 6)


# ----------------------------------------------------------------------------------------- the plan

#: How long to wait (seconds, cumulative steps) for the host veth to become oper-up, as the reference.
_PORT_UP_WAITS: Final = (0.0, 0.05, 0.5, 1.0, 1.0)
#: DAD settling (the reference's ``SettleAddresses``): a poll every 50 ms for 5 s.
_DAD_POLL_INTERVAL: Final = 0.05
_DAD_POLLS: Final = 100
_DAD_TIMEOUT_NS: Final = 5_000_000_000
#: The index of the container's interface in the result (every IPAM address is tied to it).
CONTAINER_INDEX: Final = 2


if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    class LinkPort(Protocol):
        """What the engine asks of the kernel, on plain values.

        Namespaces are opaque handles (from :meth:`host` and :meth:`open_namespace`);
        addresses are ``"ip/prefixlen"`` strings, routes ``(dst, gateway)`` strings.
        Errors are cnicore's (``NotFoundError``, ``NamespaceNotFoundError``,
        ``AlreadyExistsError``...), with the kernel's refusal at the end of the
        message in parentheses where there is one.
        """

        def host(self) -> Any: ...
        def open_namespace(self, path: str) -> Any: ...
        def ensure_bridge(self, ns: Any, name: str, *, mtu: int | None, promiscuous: bool,
                          vlan_filtering: bool) -> LinkInfo: ...
        def create_veth(self, ns: Any, ifname: str, host: Any, *, mtu: int | None,
                        container_mac: str | None) -> tuple[LinkInfo, LinkInfo]: ...
        def get_link(self, ns: Any, name: str) -> LinkInfo: ...
        def delete_link(self, ns: Any, name: str) -> None: ...
        def set_link_up(self, ns: Any, name: str, up: bool) -> None: ...
        def set_master(self, ns: Any, name: str, master: str) -> None: ...
        def set_hairpin(self, ns: Any, name: str, on: bool) -> None: ...
        def set_port_isolation(self, ns: Any, name: str, on: bool) -> None: ...
        def set_port_vlans(self, ns: Any, name: str, *, remove: tuple[int, ...] = (),
                           add: tuple[tuple[int, bool, bool], ...] = ()) -> None: ...
        def set_mac(self, ns: Any, name: str, mac: str) -> None: ...
        def read_sysctl(self, ns: Any, key: str) -> str: ...
        def write_sysctl(self, ns: Any, key: str, value: int) -> None: ...
        def list_addresses(self, ns: Any, name: str) -> list[str]: ...
        def list_address_states(self, ns: Any, name: str) -> list[tuple[str, bool, bool]]: ...
        def add_address(self, ns: Any, name: str, address: str) -> None: ...
        def delete_address(self, ns: Any, name: str, address: str) -> None: ...
        def add_route(self, ns: Any, dst: str, gateway: str | None, device: str, metric: int | None) -> None: ...
        def list_routes(self, ns: Any) -> list[tuple[str, str | None]]: ...

    class Masquerader(Protocol):
        """One masquerade layout (iptables or nftables) on address strings."""

        def available(self) -> bool: ...
        def setup(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None: ...
        def teardown(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None: ...

    class NftPort(Masquerader, Protocol):
        """The nftables side: masquerading and the MAC spoof check."""

        def setup_mac_spoof_check(self, host_ifname: str, mac: str, ref_id: str) -> None: ...
        def teardown_mac_spoof_check(self, ref_id: str) -> None: ...

    class FirewallPort(Protocol):
        """The firewalls: iptables always; nftables, or ``UnsupportedFieldError`` naming the option needing it."""

        def iptables(self) -> Masquerader: ...
        def nftables(self, key: str, value: Any) -> NftPort: ...

    class IpamPort(Protocol):
        """IPAM delegation; ADD's result as a 1.x object (``ips``, ``routes``, ``dns``)."""

        def add(self, ipam_type: str, request: Any) -> dict[str, Any]: ...
        def delete(self, ipam_type: str, request: Any) -> None: ...
        def check(self, ipam_type: str, request: Any) -> None: ...
        def gc(self, ipam_type: str, request: Any) -> None: ...
        def status(self, ipam_type: str, request: Any) -> None: ...


def _ip_text(address: str) -> str:
    """The address part of an address with its prefix, as Go prints it."""
    version, value, _ = parse_interface(address)
    return ip_value_text(version, value)


class BridgeEngine:
    """The bridge plugin's ADD, DEL, CHECK, GC and STATUS over plain ports.

    ``request`` is anything with ``container_id``, ``netns``, ``ifname``, ``args``
    and ``config`` (the decoded configuration); it is handed to the IPAM port as
    it is. ADD returns the result as a 1.x object (current version).
    """

    def __init__(self, links: LinkPort, firewalls: FirewallPort, ipam: IpamPort,
                 sleep: Callable[[float], None]) -> None:
        self.links = links
        self.firewalls = firewalls
        self.ipam = ipam
        self.sleep = sleep

    # -- firewalls ---------------------------------------------------------------------------------

    def masq_backend(self, conf: BridgeConf) -> str:
        """``ipMasqBackend``, or the reference's default: iptables unless only nftables is available."""
        if conf.ip_masq_backend is not None:
            return conf.ip_masq_backend
        if self.firewalls.iptables().available():
            return "iptables"
        from cnicore._errors import UnsupportedFieldError

        try:
            nft = self.firewalls.nftables("ipMasqBackend", None)
        except UnsupportedFieldError:
            return "iptables"  # no nftables firewall either: iptables reports its own failure
        return "nftables" if nft.available() else "iptables"

    def masquerader(self, conf: BridgeConf) -> Masquerader:
        """The layout that masquerades for ``conf`` (see :meth:`masq_backend`)."""
        if self.masq_backend(conf) == "nftables":
            return self.firewalls.nftables("ipMasqBackend", "nftables")
        return self.firewalls.iptables()

    # -- ADD ---------------------------------------------------------------------------------------

    def add(self, request: Any, cni_version: str) -> dict[str, Any]:
        """ADD: the plugin's steps (see :mod:`cnicore.plugins._bridge`); the result as a 1.x object."""
        from cnicore._errors import CNIError, InternalError

        conf = decode_bridge_conf(request.config, request.args)
        if conf.ipam_type and conf.disable_container_interface:
            raise InternalError("cannot use IPAM when DisableContainerInterface flag is set")
        if conf.is_default_gateway:
            conf.is_gateway = True
        if conf.hairpin_mode and conf.promisc_mode:
            raise InternalError("cannot set hairpin mode and promiscuous mode at the same time")
        # Options that need nftables are refused before anything changes when there is no nftables firewall.
        if conf.macspoofchk:
            self.firewalls.nftables("macspoofchk", True)
        if conf.ipam_type and conf.ip_masq:
            self.masquerader(conf)
        undo: list[Callable[[], None]] = []
        try:
            return self._add(conf, request, cni_version, undo)
        except BaseException:
            # Undo in reverse order; keep the original error (a failing undo leaves what GC/DEL reclaim).
            for step in reversed(undo):
                try:  # noqa: SIM105 - contextlib costs an exec'd plugin its import
                    step()
                except CNIError:
                    pass
            raise

    def _add(self, conf: BridgeConf, request: Any, cni_version: str, undo: list[Callable[[], None]]) -> dict[str, Any]:
        links = self.links
        host = links.host()
        bridge = self._ensure_bridge(host, conf)
        container_ns = self._container_namespace(request)
        ifname = request.ifname
        host_end, container_end = links.create_veth(container_ns, ifname, host, mtu=conf.mtu or None,
                                                    container_mac=conf.mac or None)
        undo.append(lambda: links.delete_link(container_ns, ifname))
        host_name = host_end.name
        self._attach_port(host, host_name, conf, vlan=conf.vlan, trunk=conf.vlan_trunk or (),
                          hairpin=conf.hairpin_mode, isolated=conf.port_isolation)
        interfaces = [interface_object(bridge.name, bridge.mac), interface_object(host_name, host_end.mac),
                      interface_object(ifname, container_end.mac, sandbox=request.netns)]
        if conf.macspoofchk:
            nft = self.firewalls.nftables("macspoofchk", True)
            ref_id = spoof_check_ref_id(request.container_id, ifname)
            undo.append(lambda: nft.teardown_mac_spoof_check(ref_id))
            nft.setup_mac_spoof_check(host_name, container_end.mac, ref_id)
        ips: list[dict[str, Any]] = []
        routes: list[dict[str, Any]] = []
        dns: dict[str, Any] = {}
        if conf.ipam_type:
            ips, routes, dns = self._add_layer3(conf, request, container_ns, bridge, interfaces, undo)
        elif not conf.disable_container_interface:
            links.set_link_up(container_ns, ifname, True)
        # The host veth as the port check last saw it (its MAC may have changed since creation).
        host_link = (self._wait_port_up(host, host_name) if not conf.disable_container_interface
                     else links.get_link(host, host_name))
        bridge_link = links.get_link(host, conf.bridge)
        interfaces[0] = interface_object(bridge_link.name, bridge_link.mac)
        interfaces[1] = interface_object(host_name, host_link.mac)
        own_dns = dns_object(**conf.dns, sort=True)
        return result_object_100(cni_version, interfaces, ips, routes, own_dns or dns)

    def _attach_port(self, host: Any, host_name: str, conf: BridgeConf, *, vlan: int, trunk: tuple[int, ...],
                     hairpin: bool, isolated: bool) -> None:
        """The reference's ``setupVeth``, host side: up, on the bridge, hairpin, isolation, VLANs."""
        from cnicore._errors import CNIError, InternalError

        links = self.links
        links.set_link_up(host, host_name, True)
        self._quiet_sysctl(host, f"net/ipv6/conf/{host_name}/accept_ra", 0)
        try:
            links.set_master(host, host_name, conf.bridge)
        except CNIError as exc:
            raise InternalError(f"failed to connect {go_quote(host_name)} to bridge {conf.bridge}: "
                                f"{exc.msg}") from exc
        try:
            links.set_hairpin(host, host_name, hairpin)
        except CNIError as exc:
            raise InternalError(f"failed to setup hairpin mode for {host_name}: {exc.msg}") from exc
        if isolated:
            try:
                links.set_port_isolation(host, host_name, True)
            except CNIError as exc:
                raise InternalError(f"failed to set isolation on {host_name}: {exc.msg}") from exc
        if vlan == 0 and not trunk:
            return
        if not conf.preserve_default_vlan:
            try:
                links.set_port_vlans(host, host_name, remove=(1,))
            except CNIError as exc:
                raise InternalError(f"failed to remove default vlan on interface {go_quote(host_name)}: "
                                    f"{exc.msg}") from exc
        # The access VLAN (PVID, untagged), or the trunk's, tagged: never both (the decoder refuses it).
        add = (((vlan, True, True),) if vlan else ()) + tuple((vid, False, False) for vid in trunk)
        try:
            links.set_port_vlans(host, host_name, add=add)
        except CNIError as exc:
            raise InternalError(f"failed to setup vlan tag on interface {go_quote(host_name)}: {exc.msg}") from exc

    def _container_namespace(self, request: Any) -> Any:
        """The container's namespace; gone or no namespace, the reference's ``failed to open netns "<path>": ...``."""
        from cnicore._errors import InvalidNetNSError, NamespaceNotFoundError

        try:
            return self.links.open_namespace(request.netns)
        except (NamespaceNotFoundError, InvalidNetNSError) as exc:
            raise type(exc)(f"failed to open netns {go_quote(request.netns)}: {exc.msg}", code=exc.code) from exc

    def _ensure_bridge(self, host: Any, conf: BridgeConf) -> LinkInfo:
        from cnicore._errors import AlreadyExistsError, InternalError

        if not conf.bridge:
            # The reference's netlink library refuses a link without a name before asking the kernel.
            raise InternalError('failed to create bridge "": could not add "": LinkAttrs.Name cannot be empty')
        try:
            link = self.links.ensure_bridge(host, conf.bridge, mtu=conf.mtu or None, promiscuous=conf.promisc_mode,
                                            vlan_filtering=conf.vlan != 0 or conf.vlan_trunk is not None)
        except AlreadyExistsError as exc:
            raise AlreadyExistsError(f"failed to create bridge {go_quote(conf.bridge)}: {exc.msg}") from exc
        # The plugin owns the bridge's routes: router advertisements must not add any.
        self._quiet_sysctl(host, f"net/ipv6/conf/{conf.bridge}/accept_ra", 0)
        return link

    def _quiet_sysctl(self, ns: Any, key: str, value: int) -> None:
        # The reference ignores these failures (IPv6 disabled, for instance): so do we.
        from cnicore._errors import InternalError, InvalidConfigError, NotFoundError, PermissionDeniedError

        try:  # noqa: SIM105 - contextlib costs an exec'd plugin its import
            self.links.write_sysctl(ns, key, value)
        except (NotFoundError, PermissionDeniedError, InvalidConfigError, InternalError):
            pass

    def _add_layer3(self, conf: BridgeConf, request: Any, container_ns: Any, bridge: LinkInfo,
                    interfaces: list[dict[str, Any]], undo: list[Callable[[], None]],
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        from cnicore._errors import CNIError, InternalError
        links = self.links
        ipam_result = self.ipam.add(conf.ipam_type, request)
        undo.append(lambda: self.ipam.delete(conf.ipam_type, request))
        given_ips = list(ipam_result.get("ips") or ())
        routes = [dict(route) for route in ipam_result.get("routes") or ()]
        if not given_ips:
            raise InternalError("IPAM plugin returned missing IP config")
        ipam_routes = len(routes)
        plan = plan_gateways([(ip["address"], ip.get("gateway")) for ip in given_ips],
                             [(route["dst"], route.get("gw")) for route in routes],
                             is_gateway=conf.is_gateway, is_default_gateway=conf.is_default_gateway)
        ips = [ip_object_100(ip["address"], gateway, CONTAINER_INDEX)
               for ip, gateway in zip(given_ips, plan.gateways, strict=True)]
        routes.extend(route_object(dst, gw, sort=True) for dst, gw in plan.default_routes)

        ifname = request.ifname
        if conf.enable_dad:
            self._quiet_sysctl(container_ns, f"net/ipv6/conf/{ifname}/enhanced_dad", 1)
            self._quiet_sysctl(container_ns, f"net/ipv6/conf/{ifname}/accept_dad", 1)
        else:
            self._quiet_sysctl(container_ns, f"net/ipv6/conf/{ifname}/accept_dad", 0)
        self._quiet_sysctl(container_ns, f"net/ipv4/conf/{ifname}/arp_notify", 1)
        self._configure_interface(container_ns, ifname, interfaces, ips, routes, synthetic_from=ipam_routes)

        if conf.is_gateway:
            host = links.host()
            vlan_link: LinkInfo | None = None
            for version in (4, 6):
                for gateway in plan.bridge_addresses[version]:
                    if conf.vlan == 0:
                        self._ensure_address(host, conf.bridge, gateway, conf, "failed to set bridge addr",
                                             mac=bridge.mac)
                        continue
                    # The gateway of a VLAN lives on <bridge>.<vlan>, a veth whose peer is an access port.
                    link = self._ensure_vlan_interface(host, conf, bridge)
                    if vlan_link is None:
                        vlan_link = link
                        interfaces.append(interface_object(link.name, link.mac))
                    self._ensure_address(host, link.name, gateway, conf,
                                         "failed to set vlan interface for bridge with addr", mac=link.mac)
                if plan.bridge_addresses[version]:
                    key = "net/ipv4/ip_forward" if version == 4 else "net/ipv6/conf/all/forwarding"
                    try:
                        links.write_sysctl(host, key, 1)
                    except CNIError as exc:
                        raise InternalError(f"failed to enable forwarding: {exc.msg}") from exc
        if conf.ip_masq:
            masquerader = self.masquerader(conf)
            addresses = [ip["address"] for ip in ips]
            name, cid = conf.name, request.container_id
            undo.append(lambda: masquerader.teardown(addresses, name, cid, ifname))
            masquerader.setup(addresses, name, cid, ifname)
        return ips, routes, dict(ipam_result.get("dns") or {})

    def _ensure_vlan_interface(self, host: Any, conf: BridgeConf, bridge: LinkInfo) -> LinkInfo:
        """The reference's ``ensureVlanInterface``: ``<bridge>.<vlan>``, made once and shared.

        A veth pair in the host: ``<bridge>.<vlan>`` carries the gateway address, its
        peer (``veth`` + 8 hex digits) is a bridge port in the VLAN (PVID, untagged;
        the default VLAN goes unless ``preserveDefaultVlan``). Like the bridge, it
        outlives the containers (DEL leaves it, and so does a failed ADD).
        """
        from cnicore._errors import CNIError, InternalError, NotFoundError

        links = self.links
        name = f"{conf.bridge}.{conf.vlan}"
        try:
            return links.get_link(host, name)
        except NotFoundError:
            pass
        except CNIError as exc:
            raise InternalError(f"failed to create vlan interface: failed to find interface {go_quote(name)}: "
                                f"{exc.msg}") from exc
        try:
            peer, _own = links.create_veth(host, name, host, mtu=bridge.mtu, container_mac=None)
            self._attach_port(host, peer.name, conf, vlan=conf.vlan, trunk=(), hairpin=False, isolated=False)
            links.set_link_up(host, name, True)
            return links.get_link(host, name)
        except CNIError as exc:
            raise InternalError(f"failed to create vlan interface: faild to create vlan gateway {go_quote(name)}: "
                                f"{exc.msg}") from exc

    def _configure_interface(self, ns: Any, ifname: str, interfaces: list[dict[str, Any]],
                             ips: list[dict[str, Any]], routes: list[dict[str, Any]], synthetic_from: int) -> None:
        """The reference's ``ipam.ConfigureIface``: addresses, link up, DAD, routes.

        Routes from index ``synthetic_from`` on are the default routes the gateway
        plan added (their Go value prints differently in error messages).
        """
        from cnicore._errors import CNIError, InternalError

        links = self.links
        first_gateway: dict[int, str] = {}
        ipv6_enabled = False
        for ip in ips:
            index = ip.get("interface")
            if index is None:
                continue
            address = ip["address"]
            if not 0 <= index < len(interfaces) or interfaces[index]["name"] != ifname:
                raise InternalError(f"failed to add IP addr {address} to {go_quote(ifname)}: invalid interface index")
            version = parse_interface(address)[0]
            if version == 6 and not ipv6_enabled:
                for name in ("lo", ifname):
                    key = f"net/ipv6/conf/{name}/disable_ipv6"
                    try:
                        if links.read_sysctl(ns, key) != "0":
                            links.write_sysctl(ns, key, 0)
                    except CNIError:
                        pass
                ipv6_enabled = True
            try:
                links.add_address(ns, ifname, address)
            except CNIError as exc:
                raise InternalError(f"failed to add IP addr {address} to {go_quote(ifname)}: {exc.msg}") from exc
            gateway = ip.get("gateway")
            if gateway is not None:
                first_gateway.setdefault(version, gateway)
        try:
            links.set_link_up(ns, ifname, True)
        except CNIError as exc:
            raise InternalError(f"failed to set {go_quote(ifname)} UP: {exc.msg}") from exc
        if 6 in first_gateway:
            self._settle_addresses(ns, ifname)
        for index, route in enumerate(routes):
            dst = route["dst"]
            gateway = route.get("gw")
            if gateway is None:
                gateway = first_gateway.get(parse_interface(dst)[0])
            try:
                links.add_route(ns, dst, gateway, ifname, route.get("priority") or None)
            except CNIError as exc:
                value = go_ipnet_value(dst, synthetic=index >= synthetic_from)
                raise InternalError(f"failed to add route '{value} via {gateway or '<nil>'} dev {ifname}': "
                                    f"{go_errno_text(exc.msg)}") from exc

    def _settle_addresses(self, ns: Any, ifname: str) -> None:
        """The reference's ``SettleAddresses``: wait until no IPv6 address of the link is tentative.

        Polled every 50 ms for 5 s (link-local addresses included); an address DAD
        failed for ends the wait at once.
        """
        from cnicore._errors import CNIError, InternalError

        for attempt in range(_DAD_POLLS + 1):
            try:
                states = [s for s in self.links.list_address_states(ns, ifname) if parse_interface(s[0])[0] == 6]
            except CNIError as exc:
                raise InternalError(f"failed to settle addresses for {go_quote(ifname)}: could not list "
                                    f"addresses: {exc.msg}") from exc
            failed = next((s for s in states if s[2]), None)
            if failed is not None:
                raise InternalError(f"failed to settle addresses for {go_quote(ifname)}: link {ifname} has "
                                    f"address {_ip_text(failed[0])} in DADFAILED state")
            if not any(s[1] for s in states):
                return
            if attempt < _DAD_POLLS:
                self.sleep(_DAD_POLL_INTERVAL)
        # The reference formats its time.Duration with %d: nanoseconds, followed by "seconds".
        raise InternalError(f"failed to settle addresses for {go_quote(ifname)}: link {ifname} still has "
                            f"tentative addresses after {_DAD_TIMEOUT_NS} seconds")

    def _ensure_address(self, host: Any, name: str, gateway: str, conf: BridgeConf, context: str, *,
                        mac: str) -> None:
        """The reference's ``ensureAddr``: the gateway on ``name``, one IPv4 address there unless forced.

        ``mac`` is the link's MAC as it was before this ADD attached its port (the
        reference's link object from before), pinned at the end.
        """
        from cnicore._errors import AlreadyExistsError, CNIError, InternalError

        links = self.links
        wanted = parse_interface(gateway)
        version, wanted_value, wanted_prefix = wanted
        wanted_mask = mask_value(version, wanted_prefix)
        for text in links.list_addresses(host, name):
            address = parse_interface(text)
            if address[0] != version:
                continue
            if address == wanted:
                return
            mask = mask_value(version, address[2])
            if (version == 4 or wanted_value & mask == address[1] & mask
                    or address[1] & wanted_mask == wanted_value & wanted_mask):
                if not conf.force_address:
                    raise InternalError(f"{context}: {go_quote(name)} already has an IP address different "
                                        f"from {ip_value_text(version, wanted_value)}/{wanted_prefix}")
                links.delete_address(host, name, text)
        try:
            links.add_address(host, name, gateway)
        except AlreadyExistsError:
            pass
        except CNIError as exc:
            raise InternalError(f"{context}: could not add IP address to {go_quote(name)}: {exc.msg}") from exc
        # Pin the MAC: a bridge's otherwise follows the lowest port MAC and changes as ports come and go. The
        # bridge's own (as the reference, from before this ADD's port joined), not the port's it has taken since.
        links.set_mac(host, name, mac)

    def _wait_port_up(self, host: Any, name: str) -> LinkInfo:
        """The host veth once oper-up (checked at 0, 50, 500, 1000 and 1000 ms, as the reference)."""
        from cnicore._errors import InternalError

        state = "unknown"
        for wait in _PORT_UP_WAITS:
            if wait:
                self.sleep(wait)
            link = self.links.get_link(host, name)
            state = link.oper_state
            if state == "up":
                return link
        raise InternalError(f"bridge port in error state: {state}")

    # -- DEL ---------------------------------------------------------------------------------------

    def delete(self, request: Any) -> None:
        """DEL: release IPAM, delete the container's link, tear the spoof check and masquerade down. Idempotent."""
        from cnicore._errors import CNIError, NamespaceNotFoundError, NotFoundError

        conf = decode_bridge_conf(request.config, request.args)
        if not request.netns:
            self._ipam_delete(conf, request)
            return
        addresses: list[str] = []
        try:
            ns = self.links.open_namespace(request.netns)
            addresses = [a for a in self.links.list_addresses(ns, request.ifname)
                         if global_unicast(_ip_text(a))]
            self.links.delete_link(ns, request.ifname)
        except NamespaceNotFoundError:
            self._ipam_delete(conf, request)
            return
        except NotFoundError:
            pass  # the link is gone already: DEL must be repeatable
        self._ipam_delete(conf, request)
        if conf.macspoofchk:
            # As the reference: a failure here is reported by nobody (it only logs it).
            try:  # noqa: SIM105 - contextlib costs an exec'd plugin its import
                self.firewalls.nftables("macspoofchk", True).teardown_mac_spoof_check(
                    spoof_check_ref_id(request.container_id, request.ifname))
            except CNIError:
                pass
        if conf.ipam_type and conf.ip_masq:
            self._teardown_masquerade(conf, request, addresses)

    def _teardown_masquerade(self, conf: BridgeConf, request: Any, addresses: list[str]) -> None:
        """Both layouts go, whichever the configuration names (an older ADD may have used the other).

        The iptables rules are found by the addresses the container's link had (none
        if it was gone); the nftables ones by the attachment's hash. A failure of the
        layout the configuration does not use is ignored (that tool may well be
        missing), as the reference ignores it where that tool is unsupported; so is
        the nftables layout when the plugin has no nftables firewall.
        """
        from cnicore._errors import CNIError, UnsupportedFieldError

        backend = self.masq_backend(conf)
        layouts: list[tuple[bool, Callable[[], Masquerader]]] = [
            (backend == "iptables", self.firewalls.iptables),
            (backend == "nftables", lambda: self.firewalls.nftables("ipMasqBackend", "nftables")),
        ]
        for configured, firewall in layouts:
            try:
                chosen = firewall()
            except UnsupportedFieldError:
                continue  # no nftables firewall: there is nothing this plugin could have set up there
            try:
                chosen.teardown(addresses, conf.name, request.container_id, request.ifname)
            except CNIError:
                if configured:
                    raise

    def _ipam_delete(self, conf: BridgeConf, request: Any) -> None:
        if conf.ipam_type:
            self.ipam.delete(conf.ipam_type, request)

    # -- CHECK -------------------------------------------------------------------------------------

    def check(self, request: Any, prev_result: Callable[[], dict[str, Any] | None]) -> None:
        """CHECK: ``prev_result`` gives the ``prevResult`` as a 1.x object (None without one). Read-only."""
        from cnicore._errors import InternalError, NotFoundError

        conf = decode_bridge_conf(request.config, request.args)
        # The reference's order: the namespace, IPAM's CHECK, then prevResult.
        ns = self._container_namespace(request)
        if conf.ipam_type:
            self.ipam.check(conf.ipam_type, request)
        prev = prev_result()
        if prev is None:
            raise InternalError("Required prevResult missing")
        links = self.links
        host = links.host()
        interfaces: list[dict[str, Any]] = list(prev.get("interfaces") or ())
        bridge_entry = next((i for i in interfaces if i.get("name") == conf.bridge), None)
        container_entry = next((i for i in interfaces if i.get("name") == request.ifname and i.get("sandbox")),
                               None)
        if container_entry is not None and container_entry["sandbox"] != request.netns:
            raise InternalError(f"Sandbox in prevResult {container_entry['sandbox']} doesn't match configured netns: "
                                f"{request.netns}")
        if bridge_entry is None:
            raise InternalError(f"CNI created bridge {conf.bridge} in host namespace was not found")
        try:
            bridge = links.get_link(host, conf.bridge)
        except NotFoundError as exc:
            raise InternalError(f"CNI created bridge {conf.bridge} in host namespace was not found") from exc
        if bridge.kind != "bridge":
            raise InternalError(f"Interface {conf.bridge} does not have link type of bridge")
        if bridge_entry.get("mac") and bridge_entry["mac"] != bridge.mac:
            raise InternalError(f"Bridge interface {conf.bridge} Mac doesn't match: {bridge_entry['mac']}")
        if conf.promisc_mode != bridge.promiscuous:
            raise InternalError(f"Bridge interface {conf.bridge} configured Promisc Mode "
                                f"{go_bool(conf.promisc_mode)} doesn't match current state: "
                                f"{go_bool(bridge.promiscuous)} ")
        if container_entry is None:
            raise InternalError(f"CNI created interface in container {request.ifname} not found")
        try:
            container = links.get_link(ns, request.ifname)
        except NotFoundError as exc:
            raise InternalError(f"CNI created interface in container {request.ifname} not found") from exc
        if container.kind != "veth":
            raise InternalError(f"Error: Container interface {request.ifname} not of type veth")
        if container_entry.get("mac") and container_entry["mac"] != container.mac:
            raise InternalError(f"Interface {request.ifname} Mac {container_entry['mac']} doesn't match container "
                                f"Mac: {container.mac}")
        host_veths = [i for i in interfaces if not i.get("sandbox") and i.get("name") != conf.bridge]
        if not any(self._is_port_of(host, entry.get("name", ""), conf.bridge) for entry in host_veths):
            raise InternalError(f"CNI veth created for bridge {conf.bridge} was not found")
        self._check_addresses(ns, request.ifname, interfaces, list(prev.get("ips") or ()))
        self._check_routes(ns, request.ifname, list(prev.get("routes") or ()))

    def _is_port_of(self, host: Any, name: str, bridge: str) -> bool:
        from cnicore._errors import NotFoundError

        try:
            link = self.links.get_link(host, name)
        except NotFoundError:
            return False
        return link.kind == "veth" and link.master == bridge

    def _check_addresses(self, ns: Any, ifname: str, interfaces: list[dict[str, Any]],
                         ips: list[dict[str, Any]]) -> None:
        from cnicore._errors import InternalError

        present = {parse_interface(a) for a in self.links.list_addresses(ns, ifname)}
        for ip in ips:
            index = ip.get("interface")
            if index is None or not 0 <= index < len(interfaces) or interfaces[index].get("name") != ifname:
                continue
            if parse_interface(ip["address"]) not in present:
                raise InternalError(f"Failed to match addr {ip['address']} on interface {ifname}")

    def _check_routes(self, ns: Any, ifname: str, routes: list[dict[str, Any]]) -> None:
        from cnicore._errors import InternalError

        present = [(parse_network(dst), None if gw is None else parse_ip_value(gw))
                   for dst, gw in self.links.list_routes(ns)]
        for route in routes:
            dst = parse_network(route["dst"])
            gw = route.get("gw")
            wanted_gw = None if gw is None else parse_ip_value(gw)
            if not any(have == dst and (wanted_gw is None or have_gw == wanted_gw) for have, have_gw in present):
                raise InternalError(f"Failed to match route {route['dst']} via {gw or '<nil>'} dev {ifname}")

    # -- GC, STATUS --------------------------------------------------------------------------------

    def gc(self, request: Any) -> None:
        """GC: forwarded to the IPAM plugin (beyond the reference, whose bridge GC does nothing). Idempotent."""
        conf = decode_bridge_conf(request.config, request.args)
        if conf.ipam_type:
            self.ipam.gc(conf.ipam_type, request)

    def status(self, request: Any) -> None:
        """STATUS: delegated to the IPAM plugin when there is one. Read-only."""
        conf = decode_bridge_conf(request.config, request.args)
        if conf.ipam_type:
            self.ipam.status(conf.ipam_type, request)
