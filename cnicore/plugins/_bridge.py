"""The bridge plugin: a veth pair from the container to a Linux bridge, addresses from IPAM.

It follows the reference plugin step by step, with its messages:

ADD
    1. Load the configuration (:class:`BridgeConfig`; a value of the wrong type is
       ``failed to load netconf: json: cannot unmarshal ...``), refuse IPAM with
       ``disableContainerInterface`` and hairpin together with promiscuous mode;
       ``isDefaultGateway`` implies ``isGateway``.
    2. Ensure the bridge (created with the MTU and VLAN filtering asked for,
       promiscuous if asked, ``accept_ra=0``, up).
    3. Create the veth pair: ``CNI_IFNAME`` in the container, ``veth`` + 8 hex
       digits in the host, attached to the bridge with the hairpin mode and port
       isolation (``portIsolation``) asked for. With ``vlan`` or ``vlanTrunk`` the
       bridge filters VLANs and the host veth's VLAN table is set: the kernel's
       default entry (VLAN 1, PVID, untagged) is removed when
       ``preserveDefaultVlan`` is false (it defaults to true, as in the
       reference); ``vlan`` is added as PVID and untagged (an access port), or
       every trunk VLAN (``{"id": n}`` or ``{"minID": a, "maxID": b}``, 1..4094)
       tagged (a trunk port): both together are refused at load time (``cannot
       set vlan and vlanTrunk at the same time``), as are bad trunks, with the
       reference's messages (``incorrect trunk minID parameter``...).
    4. With ``macspoofchk``, the nftables spoof check: only the container veth's
       MAC may enter the bridge through the host veth (``bridge nat`` table, see
       :mod:`cnicore.links._spoofcheck`).
    5. With IPAM (``ipam.type`` set): delegate ADD (in process for host-local, see
       :mod:`cnicore.plugins._delegate`); every ``ips[].interface`` becomes 2; the
       gateways are computed (``calcGateways``: network + 1 when missing and
       ``isGateway``; a default route per family for ``isDefaultGateway`` unless
       one with a gateway exists); in the container ``accept_dad``/``arp_notify``
       are set, addresses added, the link brought up, and, when there is an IPv6
       gateway, the plugin waits (up to 5 s) for the link's IPv6 addresses to
       leave DAD's tentative state before the routes are added (a route without
       ``gw`` goes through the first gateway of its family). With ``isGateway``
       the gateway goes on the bridge (one IPv4 address at most unless
       ``forceAddress``), the bridge's MAC is pinned and forwarding enabled; with
       a ``vlan`` it goes on ``<bridge>.<vlan>`` instead: a veth pair in the host
       whose peer is a bridge port in that VLAN, made on first use, shared and
       appended to the result's interfaces. With ``ipMasq`` the addresses are
       masqueraded through the :class:`~cnicore.links.Firewall` (the iptables
       layout), or the nftables firewall with ``ipMasqBackend: nftables``, or
       when ``ipMasqBackend`` is unset and only nftables is available (the
       reference's default; a firewall says so with ``available()``).
    6. Without IPAM, the container link is brought up (unless
       ``disableContainerInterface``); then the host end must reach oper-state up.
    7. The result: interfaces ``[bridge, host veth, container veth (sandbox)]``
       (plus ``<bridge>.<vlan>``), the IPAM addresses, routes and DNS (the
       configuration's ``dns`` wins when set).

    Unlike the reference, a failed ADD undoes everything it did, not only the IPAM
    reservation: the spoof check, the masquerade rules and the container's veth
    go too (the bridge and ``<bridge>.<vlan>``, which are shared, stay).

DEL
    Release IPAM (also when ``CNI_NETNS`` is empty or the namespace is gone),
    delete the container's link (a missing one is fine), tear the spoof check
    down (failures ignored, as the reference only logs them) and the
    masquerade: the iptables rules of the addresses the link had and the
    nftables rules of the attachment, whichever ``ipMasqBackend`` names (an
    earlier ADD may have used the other layout). Repeating DEL succeeds. As in
    the reference, the iptables rules are found from the addresses on the
    container's link, so a DEL after the link vanished by other means leaves
    those in place.

CHECK
    Needs ``prevResult``; runs the IPAM CHECK, then checks the bridge, the
    container's veth and the host veth against it, then the container's addresses
    and routes (section 3.6 of the reference notes gives the messages).

``macspoofchk`` and ``ipMasqBackend: nftables`` need an nftables firewall: given
to the plugin, or offered by its firewall (see :class:`BridgePlugin`); without
one they are refused with :class:`~cnicore.UnsupportedFieldError` (code 2,
naming the key and value) before anything changes.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import netaddr  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import (
    AlreadyExistsError,
    CNIError,
    InternalError,
    InvalidConfigError,
    NamespaceNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    UnsupportedFieldError,
)
from cnicore._gofmt import go_quote
from cnicore.links import (
    Address,
    BridgeSpec,
    Firewall,
    Link,
    LinkBackend,
    Namespace,
    NftFirewall,
    PortVlan,
    spoof_check_ref_id,
)
from cnicore.links import Route as LinkRoute
from cnicore.plugins._api import PluginRequest
from cnicore.plugins._bridgecore import (
    DEFAULT_BRIDGE,
    decode_bridge_conf,
    global_unicast,
    go_bool,
    go_errno_text,
    go_ipnet_value,
    plan_gateways,
)
from cnicore.plugins._delegate import IPAMDelegate
from cnicore.spec._result import DNS, Interface, IPConfig, Result, Route, parse_prev_result
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION

__all__ = ["DEFAULT_BRIDGE", "BridgeConfig", "BridgePlugin", "load_bridge_config"]

#: How long to wait (seconds, cumulative steps) for the host veth to become oper-up, as the reference.
_PORT_UP_WAITS: Final = (0.0, 0.05, 0.5, 1.0, 1.0)
#: DAD settling (the reference's ``SettleAddresses``): a poll every 50 ms for 5 s.
_DAD_POLL_INTERVAL: Final = 0.05
_DAD_POLLS: Final = 100
_DAD_TIMEOUT_NS: Final = 5_000_000_000
_CONTAINER_INDEX: Final = 2


# ----------------------------------------------------------------------------------------- config


@attrs.frozen(kw_only=True)
class BridgeConfig:
    """The bridge plugin's configuration (the reference's ``NetConf``), checked.

    ``vlan_trunk`` is ``None`` without ``vlanTrunk``, else the trunk's VLAN IDs,
    sorted and distinct (the reference's ``collectVlanTrunk``; an empty list gives
    ``()``, which still turns VLAN filtering on). ``ipam_type`` is ``""`` for layer-2
    mode. ``mac`` is the container MAC asked for (``runtimeConfig.mac`` over
    ``args.cni.mac`` over ``CNI_ARGS`` ``MAC``).
    """

    name: str
    cni_version: str
    bridge: str = DEFAULT_BRIDGE
    is_gateway: bool = False
    is_default_gateway: bool = False
    force_address: bool = False
    ip_masq: bool = False
    ip_masq_backend: str | None = None
    mtu: int = 0
    hairpin_mode: bool = False
    promisc_mode: bool = False
    vlan: int = 0
    vlan_trunk: tuple[int, ...] | None = None
    preserve_default_vlan: bool = True
    macspoofchk: bool = False
    enable_dad: bool = False
    disable_container_interface: bool = False
    port_isolation: bool = False
    mac: str = ""
    ipam_type: str = ""
    dns: DNS = attrs.field(factory=DNS)

    @property
    def layer3(self) -> bool:
        """True when an IPAM plugin hands out addresses."""
        return self.ipam_type != ""


def load_bridge_config(config: Mapping[str, Any], cni_args: str = "") -> BridgeConfig:
    """Read the bridge plugin's options from a decoded configuration and ``CNI_ARGS``.

    The typed face of :func:`~cnicore.plugins._bridgecore.decode_bridge_conf`, which decides.

    Raises:
        InvalidConfigError: a value of the wrong type (``failed to load netconf: ...``),
            a VLAN ID out of range, a bad trunk, ``vlan`` with a non-empty trunk, bad ``CNI_ARGS``.
    """
    conf = decode_bridge_conf(config, cni_args)
    return BridgeConfig(**conf.fields(), dns=DNS(**conf.dns))


# ----------------------------------------------------------------------------------------- plugin


def calc_gateways(result: Result, config: BridgeConfig) -> tuple[Result, dict[int, list[Address]]]:
    """The reference's ``calcGateways``: tie every IP to interface 2, fill gateways, add default routes.

    Returns the updated result and, per family, the gateway addresses (gateway IP
    with the prefix length of its container address) to put on the bridge. The
    typed face of :func:`~cnicore.plugins._bridgecore.plan_gateways`, which decides.
    """
    plan = plan_gateways([(str(ipc.address), None if ipc.gateway is None else str(ipc.gateway))
                          for ipc in result.ips],
                         [(str(route.dst), None if route.gw is None else str(route.gw)) for route in result.routes],
                         is_gateway=config.is_gateway, is_default_gateway=config.is_default_gateway)
    # A gateway IPAM gave stays the value it was; a computed one is parsed from the plan's text.
    ips = tuple(IPConfig(address=ipc.address, gateway=ipc.gateway if ipc.gateway is not None else gateway,
                         interface=_CONTAINER_INDEX)
                for ipc, gateway in zip(result.ips, plan.gateways, strict=True))
    routes = (*result.routes, *(Route(dst=dst, gw=gw) for dst, gw in plan.default_routes))
    gateways = {version: [Address.parse(text) for text in texts] for version, texts in plan.bridge_addresses.items()}
    return attrs.evolve(result, ips=ips, routes=routes), gateways


class BridgePlugin:
    """The bridge plugin over injected ports.

    Args:
        backend: links, addresses, routes and sysctls.
        firewall: masquerading in the iptables layout (``ipMasq``, the default
            ``ipMasqBackend``); may be a zero-argument callable returning one, so
            that callers that never masquerade never build one.
        ipam: how IPAM is delegated (default: :class:`IPAMDelegate`).
        sleep: how to wait (for the host veth, for DAD); tests pass a no-op or a clock.
        nftables: the nftables firewall (``macspoofchk``, ``ipMasqBackend: nftables``),
            or a callable returning one. By default, the one ``firewall.nftables()``
            returns when the firewall offers that method (the iptables and fake
            firewalls do, for the same namespace or fake kernel); without one, those
            options are refused with code 2.
    """

    name = "bridge"
    supported_versions = ALL_VERSIONS

    def __init__(self, backend: LinkBackend, firewall: Firewall | Callable[[], Firewall],
                 ipam: IPAMDelegate | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 nftables: NftFirewall | Callable[[], NftFirewall] | None = None) -> None:
        self._backend = backend
        self._firewall_source = firewall
        self._firewall: Firewall | None = None
        self._nft_source = nftables
        self._nft_firewall: NftFirewall | None = None
        self._ipam = ipam if ipam is not None else IPAMDelegate()
        self._sleep = sleep

    def _fw(self) -> Firewall:
        if self._firewall is None:
            source = self._firewall_source
            self._firewall = source if isinstance(source, Firewall) else source()
        return self._firewall

    def _nft(self, key: str, value: Any) -> NftFirewall:
        """The nftables firewall, or code 2 naming the option that needs it."""
        if self._nft_firewall is None:
            source = self._nft_source
            if source is None:
                offer = getattr(self._fw(), "nftables", None)
                if not callable(offer):
                    raise UnsupportedFieldError(
                        f"bridge: unsupported field {key} = {value!r}: no nftables firewall was given to the "
                        f"plugin (the {self._fw().name} firewall has none)", key=key, value=value)
                source = offer
            found = source if isinstance(source, NftFirewall) else source()
            self._nft_firewall = found
        return self._nft_firewall

    def _masq_backend(self, config: BridgeConfig) -> str:
        """``ipMasqBackend``, or the reference's default: iptables unless only nftables is available.

        A firewall tells through an ``available()`` method (the iptables and
        nftables firewalls check their binary); one without it counts as available.
        """
        if config.ip_masq_backend is not None:
            return config.ip_masq_backend
        available = getattr(self._fw(), "available", None)
        if not callable(available) or available():
            return "iptables"
        try:
            nft = self._nft("ipMasqBackend", None)
        except UnsupportedFieldError:
            return "iptables"  # no nftables firewall either: iptables reports its own failure
        nft_available = getattr(nft, "available", None)
        return "nftables" if not callable(nft_available) or nft_available() else "iptables"

    def _masquerader(self, config: BridgeConfig) -> Firewall:
        """The firewall that masquerades for ``config`` (see :meth:`_masq_backend`)."""
        if self._masq_backend(config) == "nftables":
            return self._nft("ipMasqBackend", "nftables")
        return self._fw()

    # -- ADD ---------------------------------------------------------------------------------------

    def add(self, request: PluginRequest) -> Result:
        """ADD: see the module notes. Not idempotent (a second ADD finds the interface taken)."""
        config = load_bridge_config(request.config, request.args)
        if config.layer3 and config.disable_container_interface:
            raise InternalError("cannot use IPAM when DisableContainerInterface flag is set")
        if config.is_default_gateway:
            config = attrs.evolve(config, is_gateway=True)
        if config.hairpin_mode and config.promisc_mode:
            raise InternalError("cannot set hairpin mode and promiscuous mode at the same time")
        # Options that need nftables are refused before anything changes when there is no nftables firewall.
        if config.macspoofchk:
            self._nft("macspoofchk", True)
        if config.layer3 and config.ip_masq:
            self._masquerader(config)
        undo: list[Callable[[], None]] = []
        try:
            result = self._add(config, request, undo)
        except BaseException:
            # Undo in reverse order; keep the original error (a failing undo leaves what GC/DEL reclaim).
            for step in reversed(undo):
                with contextlib.suppress(CNIError):
                    step()
            raise
        return result

    def _add(self, config: BridgeConfig, request: PluginRequest, undo: list[Callable[[], None]]) -> Result:
        backend = self._backend
        host = backend.host_namespace()
        bridge = self._ensure_bridge(host, config)
        try:
            container_ns = backend.open_namespace(request.netns)
        except NamespaceNotFoundError as exc:
            raise NamespaceNotFoundError(f"failed to open netns {go_quote(request.netns)}: {exc.msg}") from exc
        pair = backend.create_veth(container_ns, request.ifname, host, mtu=config.mtu or None,
                                   container_mac=config.mac or None)
        undo.append(lambda: backend.delete_link(container_ns, request.ifname))
        host_name = pair.host.name
        self._attach_port(host, host_name, config, vlan=config.vlan, trunk=config.vlan_trunk or (),
                          hairpin=config.hairpin_mode, isolated=config.port_isolation)

        result = Result(cni_version=CURRENT_VERSION, interfaces=(
            Interface(name=bridge.name, mac=bridge.mac),
            Interface(name=host_name, mac=pair.host.mac),
            Interface(name=request.ifname, mac=pair.container.mac, sandbox=request.netns),
        ))
        if config.macspoofchk:
            nft = self._nft("macspoofchk", True)
            ref_id = spoof_check_ref_id(request.container_id, request.ifname)
            undo.append(functools.partial(nft.teardown_mac_spoof_check, ref_id))
            nft.setup_mac_spoof_check(host_name, pair.container.mac, ref_id)
        if config.layer3:
            result = self._add_layer3(config, request, container_ns, bridge, result, undo)
        elif not config.disable_container_interface:
            backend.set_link_up(container_ns, request.ifname, True)

        # The host veth as the port check last saw it (its MAC may have changed since creation).
        host_link = (self._wait_port_up(host, host_name) if not config.disable_container_interface
                     else backend.get_link(host, host_name))
        bridge_link = backend.get_link(host, config.bridge)
        interfaces = (Interface(name=bridge_link.name, mac=bridge_link.mac),
                      Interface(name=host_name, mac=host_link.mac), *result.interfaces[2:])
        dns = config.dns if not config.dns.is_empty else result.dns
        return attrs.evolve(result, interfaces=interfaces, dns=dns)

    def _attach_port(self, host: Namespace, host_name: str, config: BridgeConfig, *, vlan: int,
                     trunk: tuple[int, ...], hairpin: bool, isolated: bool) -> None:
        """The reference's ``setupVeth``, host side: up, on the bridge, hairpin, isolation, VLANs."""
        backend = self._backend
        backend.set_link_up(host, host_name, True)
        self._quiet_sysctl(host, f"net/ipv6/conf/{host_name}/accept_ra", 0)
        try:
            backend.set_master(host, host_name, config.bridge)
        except CNIError as exc:
            raise InternalError(f"failed to connect {go_quote(host_name)} to bridge {config.bridge}: "
                                f"{exc.msg}") from exc
        try:
            backend.set_hairpin(host, host_name, hairpin)
        except CNIError as exc:
            raise InternalError(f"failed to setup hairpin mode for {host_name}: {exc.msg}") from exc
        if isolated:
            try:
                backend.set_port_isolation(host, host_name, True)
            except CNIError as exc:
                raise InternalError(f"failed to set isolation on {host_name}: {exc.msg}") from exc
        self._setup_port_vlans(host, host_name, config, vlan, trunk)

    def _setup_port_vlans(self, host: Namespace, host_name: str, config: BridgeConfig, vlan: int,
                          trunk: tuple[int, ...]) -> None:
        if vlan == 0 and not trunk:
            return
        if not config.preserve_default_vlan:
            try:
                self._backend.set_port_vlans(host, host_name, remove=(1,))
            except CNIError as exc:
                raise InternalError(f"failed to remove default vlan on interface {go_quote(host_name)}: "
                                    f"{exc.msg}") from exc
        # The access VLAN (PVID, untagged), or the trunk's, tagged: never both (the loader refuses it).
        add = ((PortVlan(vid=vlan, pvid=True, untagged=True),) if vlan else ()) + tuple(
            PortVlan(vid=vid) for vid in trunk)
        try:
            self._backend.set_port_vlans(host, host_name, add=add)
        except CNIError as exc:
            raise InternalError(f"failed to setup vlan tag on interface {go_quote(host_name)}: {exc.msg}") from exc

    def _ensure_bridge(self, host: Namespace, config: BridgeConfig) -> Link:
        spec = BridgeSpec(name=config.bridge, mtu=config.mtu or None, promiscuous=config.promisc_mode,
                          vlan_filtering=config.vlan != 0 or config.vlan_trunk is not None)
        try:
            link = self._backend.ensure_bridge(host, spec)
        except AlreadyExistsError as exc:
            raise AlreadyExistsError(f"failed to create bridge {go_quote(config.bridge)}: {exc.msg}") from exc
        # The plugin owns the bridge's routes: router advertisements must not add any.
        self._quiet_sysctl(host, f"net/ipv6/conf/{config.bridge}/accept_ra", 0)
        return link

    def _quiet_sysctl(self, ns: Namespace, key: str, value: int) -> None:
        # The reference ignores these failures (IPv6 disabled, for instance): so do we.
        with contextlib.suppress(NotFoundError, PermissionDeniedError, InvalidConfigError, InternalError):
            self._backend.write_sysctl(ns, key, value)

    def _add_layer3(self, config: BridgeConfig, request: PluginRequest, container_ns: Namespace, bridge: Link,
                    result: Result, undo: list[Callable[[], None]]) -> Result:
        backend = self._backend
        ipam_result = self._ipam.add(config.ipam_type, request)
        undo.append(lambda: self._ipam.delete(config.ipam_type, request))
        result = attrs.evolve(result, ips=ipam_result.ips, routes=ipam_result.routes, dns=ipam_result.dns)
        if not result.ips:
            raise InternalError("IPAM plugin returned missing IP config")
        ipam_routes = len(result.routes)
        result, gateways = calc_gateways(result, config)

        ifname = request.ifname
        if config.enable_dad:
            self._quiet_sysctl(container_ns, f"net/ipv6/conf/{ifname}/enhanced_dad", 1)
            self._quiet_sysctl(container_ns, f"net/ipv6/conf/{ifname}/accept_dad", 1)
        else:
            self._quiet_sysctl(container_ns, f"net/ipv6/conf/{ifname}/accept_dad", 0)
        self._quiet_sysctl(container_ns, f"net/ipv4/conf/{ifname}/arp_notify", 1)
        self._configure_interface(container_ns, ifname, result, synthetic_from=ipam_routes)

        if config.is_gateway:
            host = backend.host_namespace()
            vlan_link: Link | None = None
            for version in (4, 6):
                for gateway in gateways[version]:
                    if config.vlan == 0:
                        self._ensure_address(host, config.bridge, gateway, config, "failed to set bridge addr",
                                             mac=bridge.mac)
                        continue
                    # The gateway of a VLAN lives on <bridge>.<vlan>, a veth whose peer is an access port.
                    link = self._ensure_vlan_interface(host, config, bridge)
                    if vlan_link is None:
                        vlan_link = link
                        result = attrs.evolve(result, interfaces=(
                            *result.interfaces, Interface(name=link.name, mac=link.mac)))
                    self._ensure_address(host, link.name, gateway, config,
                                         "failed to set vlan interface for bridge with addr", mac=link.mac)
                if gateways[version]:
                    key = "net/ipv4/ip_forward" if version == 4 else "net/ipv6/conf/all/forwarding"
                    try:
                        backend.write_sysctl(host, key, 1)
                    except CNIError as exc:
                        raise InternalError(f"failed to enable forwarding: {exc.msg}") from exc
        if config.ip_masq:
            firewall = self._masquerader(config)
            addresses = [ipc.address for ipc in result.ips]
            undo.append(functools.partial(firewall.teardown_masquerades, addresses, config.name,
                                          request.container_id, ifname=ifname))
            firewall.setup_masquerades(addresses, config.name, request.container_id, ifname=ifname)
        return result

    def _ensure_vlan_interface(self, host: Namespace, config: BridgeConfig, bridge: Link) -> Link:
        """The reference's ``ensureVlanInterface``: ``<bridge>.<vlan>``, made once and shared.

        A veth pair in the host: ``<bridge>.<vlan>`` carries the gateway address, its
        peer (``veth`` + 8 hex digits) is a bridge port in the VLAN (PVID, untagged;
        the default VLAN goes unless ``preserveDefaultVlan``). Like the bridge, it
        outlives the containers (DEL leaves it, and so does a failed ADD).
        """
        backend = self._backend
        name = f"{config.bridge}.{config.vlan}"
        try:
            return backend.get_link(host, name)
        except NotFoundError:
            pass
        except CNIError as exc:
            raise InternalError(f"failed to create vlan interface: failed to find interface {go_quote(name)}: "
                                f"{exc.msg}") from exc
        try:
            pair = backend.create_veth(host, name, host, mtu=bridge.mtu)
            self._attach_port(host, pair.host.name, config, vlan=config.vlan, trunk=(), hairpin=False,
                              isolated=False)
            backend.set_link_up(host, name, True)
            return backend.get_link(host, name)
        except CNIError as exc:
            raise InternalError(f"failed to create vlan interface: faild to create vlan gateway {go_quote(name)}: "
                                f"{exc.msg}") from exc

    def _configure_interface(self, ns: Namespace, ifname: str, result: Result, synthetic_from: int) -> None:
        """The reference's ``ipam.ConfigureIface``: addresses, link up, DAD, routes.

        Routes from index ``synthetic_from`` on are the default routes ``calc_gateways``
        added (their Go value prints differently in error messages).
        """
        backend = self._backend
        first_gateway: dict[int, netaddr.IPAddress] = {}
        ipv6_enabled = False
        for ipc in result.ips:
            if ipc.interface is None:
                continue
            if not 0 <= ipc.interface < len(result.interfaces) or result.interfaces[ipc.interface].name != ifname:
                raise InternalError(f"failed to add IP addr {ipc.address} to {go_quote(ifname)}: "
                                    "invalid interface index")
            if ipc.family == 6 and not ipv6_enabled:
                for name in ("lo", ifname):
                    key = f"net/ipv6/conf/{name}/disable_ipv6"
                    with contextlib.suppress(CNIError):
                        if backend.read_sysctl(ns, key) != "0":
                            backend.write_sysctl(ns, key, 0)
                ipv6_enabled = True
            try:
                backend.add_address(ns, ifname, Address.parse(ipc.address))
            except CNIError as exc:
                raise InternalError(f"failed to add IP addr {ipc.address} to {go_quote(ifname)}: {exc.msg}") from exc
            if ipc.gateway is not None:
                first_gateway.setdefault(ipc.gateway.version, ipc.gateway)
        try:
            backend.set_link_up(ns, ifname, True)
        except CNIError as exc:
            raise InternalError(f"failed to set {go_quote(ifname)} UP: {exc.msg}") from exc
        if 6 in first_gateway:
            self._settle_addresses(ns, ifname)
        for index, route in enumerate(result.routes):
            gateway = route.gw if route.gw is not None else first_gateway.get(route.family)
            try:
                backend.add_route(ns, LinkRoute(dst=route.dst, gateway=gateway, device=ifname,
                                                metric=route.priority or None))
            except CNIError as exc:
                dst = go_ipnet_value(str(route.dst), synthetic=index >= synthetic_from)
                raise InternalError(f"failed to add route '{dst} via {gateway or '<nil>'} dev {ifname}': "
                                    f"{go_errno_text(exc.msg)}") from exc

    def _settle_addresses(self, ns: Namespace, ifname: str) -> None:
        """The reference's ``SettleAddresses``: wait until no IPv6 address of the link is tentative.

        Polled every 50 ms for 5 s (link-local addresses included); an address DAD
        failed for ends the wait at once.
        """
        for attempt in range(_DAD_POLLS + 1):
            try:
                states = [s for s in self._backend.list_address_states(ns, ifname) if s.address.version == 6]
            except CNIError as exc:
                raise InternalError(f"failed to settle addresses for {go_quote(ifname)}: could not list "
                                    f"addresses: {exc.msg}") from exc
            failed = next((s for s in states if s.dad_failed), None)
            if failed is not None:
                raise InternalError(f"failed to settle addresses for {go_quote(ifname)}: link {ifname} has "
                                    f"address {failed.address.ip} in DADFAILED state")
            if not any(s.tentative for s in states):
                return
            if attempt < _DAD_POLLS:
                self._sleep(_DAD_POLL_INTERVAL)
        # The reference formats its time.Duration with %d: nanoseconds, followed by "seconds".
        raise InternalError(f"failed to settle addresses for {go_quote(ifname)}: link {ifname} still has "
                            f"tentative addresses after {_DAD_TIMEOUT_NS} seconds")

    def _ensure_address(self, host: Namespace, name: str, gateway: Address, config: BridgeConfig,
                        context: str, *, mac: str) -> None:
        """The reference's ``ensureAddr``: the gateway on ``name``, one IPv4 address there unless forced.

        ``mac`` is the link's MAC as it was before this ADD attached its port (the
        reference's link object from before), pinned at the end.
        """
        backend = self._backend
        existing = backend.list_addresses(host, name)
        for address in existing:
            if address.version != gateway.version:
                continue
            if address == gateway:
                return
            if gateway.version == 4 or gateway.ip in address.network or address.ip in gateway.network:
                if not config.force_address:
                    raise InternalError(f"{context}: {go_quote(name)} already has an IP address different "
                                        f"from {gateway}")
                backend.delete_address(host, name, address)
        try:
            backend.add_address(host, name, gateway)
        except AlreadyExistsError:
            pass
        except CNIError as exc:
            raise InternalError(f"{context}: could not add IP address to {go_quote(name)}: {exc.msg}") from exc
        # Pin the MAC: a bridge's otherwise follows the lowest port MAC and changes as ports come and go. The
        # bridge's own (as the reference, from before this ADD's port joined), not the port's it has taken since.
        backend.set_mac(host, name, mac)

    def _wait_port_up(self, host: Namespace, name: str) -> Link:
        """The host veth once oper-up (checked at 0, 50, 500, 1000 and 1000 ms, as the reference)."""
        state = "unknown"
        for wait in _PORT_UP_WAITS:
            if wait:
                self._sleep(wait)
            link = self._backend.get_link(host, name)
            state = link.oper_state
            if state == "up":
                return link
        raise InternalError(f"bridge port in error state: {state}")

    # -- DEL ---------------------------------------------------------------------------------------

    def delete(self, request: PluginRequest) -> None:
        """DEL: release IPAM, delete the container's link, tear the spoof check and masquerade down. Idempotent."""
        config = load_bridge_config(request.config, request.args)
        if not request.netns:
            self._ipam_delete(config, request)
            return
        addresses: tuple[Address, ...] = ()
        try:
            ns = self._backend.open_namespace(request.netns)
            addresses = tuple(a for a in self._backend.list_addresses(ns, request.ifname) if global_unicast(str(a.ip)))
            self._backend.delete_link(ns, request.ifname)
        except NamespaceNotFoundError:
            self._ipam_delete(config, request)
            return
        except NotFoundError:
            pass  # the link is gone already: DEL must be repeatable
        self._ipam_delete(config, request)
        if config.macspoofchk:
            # As the reference: a failure here is reported by nobody (it only logs it).
            with contextlib.suppress(CNIError):
                self._nft("macspoofchk", True).teardown_mac_spoof_check(
                    spoof_check_ref_id(request.container_id, request.ifname))
        if config.layer3 and config.ip_masq:
            self._teardown_masquerade(config, request, addresses)

    def _teardown_masquerade(self, config: BridgeConfig, request: PluginRequest,
                             addresses: tuple[Address, ...]) -> None:
        """Both layouts go, whichever the configuration names (an older ADD may have used the other).

        The iptables rules are found by the addresses the container's link had (none
        if it was gone); the nftables ones by the attachment's hash. A failure of the
        layout the configuration does not use is ignored (that tool may well be
        missing), as the reference ignores it where that tool is unsupported; so is
        the nftables layout when the plugin has no nftables firewall.
        """
        networks = [address.interface for address in addresses]
        backend = self._masq_backend(config)
        layouts: list[tuple[bool, Callable[[], Firewall]]] = [
            (backend == "iptables", self._fw),
            (backend == "nftables", lambda: self._nft("ipMasqBackend", "nftables")),
        ]
        for configured, firewall in layouts:
            try:
                chosen = firewall()
            except UnsupportedFieldError:
                continue  # no nftables firewall: there is nothing this plugin could have set up there
            try:
                chosen.teardown_masquerades(networks, config.name, request.container_id, ifname=request.ifname)
            except CNIError:
                if configured:
                    raise

    def _ipam_delete(self, config: BridgeConfig, request: PluginRequest) -> None:
        if config.layer3:
            self._ipam.delete(config.ipam_type, request)

    # -- CHECK -------------------------------------------------------------------------------------

    def check(self, request: PluginRequest) -> None:
        """CHECK: see the module notes. Read-only."""
        config = load_bridge_config(request.config, request.args)
        prev = parse_prev_result(request.config)
        if prev is None:
            raise InternalError("Required prevResult missing")
        if config.layer3:
            self._ipam.check(config.ipam_type, request)
        converted = prev.as_version(CURRENT_VERSION)
        assert isinstance(converted, Result)
        result = converted
        backend = self._backend
        host = backend.host_namespace()
        bridge_entry = next((i for i in result.interfaces if i.name == config.bridge), None)
        container_entry = next((i for i in result.interfaces if i.name == request.ifname and i.sandbox), None)
        if container_entry is not None and container_entry.sandbox != request.netns:
            raise InternalError(f"Sandbox in prevResult {container_entry.sandbox} doesn't match configured netns: "
                                f"{request.netns}")
        if bridge_entry is None:
            raise InternalError(f"CNI created bridge {config.bridge} in host namespace was not found")
        try:
            bridge = backend.get_link(host, config.bridge)
        except NotFoundError as exc:
            raise InternalError(f"CNI created bridge {config.bridge} in host namespace was not found") from exc
        if bridge.kind != "bridge":
            raise InternalError(f"Interface {config.bridge} does not have link type of bridge")
        if bridge_entry.mac and bridge_entry.mac != bridge.mac:
            raise InternalError(f"Bridge interface {config.bridge} Mac doesn't match: {bridge_entry.mac}")
        if config.promisc_mode != bridge.promiscuous:
            raise InternalError(f"Bridge interface {config.bridge} configured Promisc Mode "
                                f"{go_bool(config.promisc_mode)} doesn't match current state: "
                                f"{go_bool(bridge.promiscuous)} ")
        if container_entry is None:
            raise InternalError(f"CNI created interface in container {request.ifname} not found")
        ns = backend.open_namespace(request.netns)
        try:
            container = backend.get_link(ns, request.ifname)
        except NotFoundError as exc:
            raise InternalError(f"CNI created interface in container {request.ifname} not found") from exc
        if container.kind != "veth":
            raise InternalError(f"Error: Container interface {request.ifname} not of type veth")
        if container_entry.mac and container_entry.mac != container.mac:
            raise InternalError(f"Interface {request.ifname} Mac {container_entry.mac} doesn't match container Mac: "
                                f"{container.mac}")
        host_veths = [i for i in result.interfaces if not i.sandbox and i.name != config.bridge]
        if not any(self._is_port_of(host, entry.name, config.bridge) for entry in host_veths):
            raise InternalError(f"CNI veth created for bridge {config.bridge} was not found")
        self._check_addresses(ns, request.ifname, result)
        self._check_routes(ns, request.ifname, result)

    def _is_port_of(self, host: Namespace, name: str, bridge: str) -> bool:
        try:
            link = self._backend.get_link(host, name)
        except NotFoundError:
            return False
        return link.kind == "veth" and link.master == bridge

    def _check_addresses(self, ns: Namespace, ifname: str, result: Result) -> None:
        present = set(self._backend.list_addresses(ns, ifname))
        for ipc in result.ips:
            entry = result.interface_of(ipc)
            if entry is None or entry.name != ifname:
                continue
            if Address.parse(ipc.address) not in present:
                raise InternalError(f"Failed to match addr {ipc.address} on interface {ifname}")

    def _check_routes(self, ns: Namespace, ifname: str, result: Result) -> None:
        routes = self._backend.list_routes(ns)
        for route in result.routes:
            if not any(r.dst == route.dst and r.dst.prefixlen == route.dst.prefixlen
                       and (route.gw is None or r.gateway == route.gw) for r in routes):
                raise InternalError(f"Failed to match route {route.dst} via {route.gw or '<nil>'} dev {ifname}")

    # -- GC ----------------------------------------------------------------------------------------

    def gc(self, request: PluginRequest) -> None:
        """GC: forwarded to the IPAM plugin, which releases what no valid attachment holds. Idempotent.

        Beyond the reference, whose bridge GC does nothing (``FIXME``): the spec asks
        a plugin to forward GC to its delegates, and without it a runtime's GC could
        never reach the addresses a bridge network leaked.
        """
        config = load_bridge_config(request.config, request.args)
        if config.layer3:
            self._ipam.gc(config.ipam_type, request)

    # -- STATUS ------------------------------------------------------------------------------------

    def status(self, request: PluginRequest) -> None:
        """STATUS: delegated to the IPAM plugin when there is one. Read-only."""
        config = load_bridge_config(request.config, request.args)
        if config.layer3:
            self._ipam.status(config.ipam_type, request)

    def close(self) -> None:
        """Release what the IPAM delegate holds open. Idempotent."""
        self._ipam.close()
