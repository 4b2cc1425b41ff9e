"""The bridge plugin: a veth pair from the container to a Linux bridge, addresses from IPAM.

The steps below are decided once, on plain values, by the engine
(:class:`~cnicore.plugins._bridgecore.BridgeEngine`); this module is its typed
face: :class:`BridgePlugin` runs the engine over any typed link backend
(:class:`TypedLinkPort`), the typed firewalls and the IPAM delegate, and
:class:`BridgeConfig` and :func:`calc_gateways` adapt the engine's decoder and
gateway plan. It follows the reference plugin step by step, with its messages:

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

import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import netaddr  # type: ignore[import-untyped, unused-ignore]

from cnicore._errors import UnsupportedFieldError
from cnicore.links import (
    Address,
    BridgeSpec,
    Firewall,
    Link,
    LinkBackend,
    Namespace,
    NftFirewall,
    PortVlan,
)
from cnicore.links import Route as LinkRoute
from cnicore.plugins._api import PluginRequest
from cnicore.plugins._bridgecore import (
    CONTAINER_INDEX,
    DEFAULT_BRIDGE,
    BridgeEngine,
    LinkInfo,
    decode_bridge_conf,
    plan_gateways,
)
from cnicore.plugins._delegate import IPAMDelegate
from cnicore.spec._result import DNS, IPConfig, Result, Route, parse_prev_result, parse_result
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION

__all__ = ["DEFAULT_BRIDGE", "BridgeConfig", "BridgePlugin", "load_bridge_config"]



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
                         interface=CONTAINER_INDEX)
                for ipc, gateway in zip(result.ips, plan.gateways, strict=True))
    routes = (*result.routes, *(Route(dst=dst, gw=gw) for dst, gw in plan.default_routes))
    gateways = {version: [Address.parse(text) for text in texts] for version, texts in plan.bridge_addresses.items()}
    return attrs.evolve(result, ips=ips, routes=routes), gateways


class TypedLinkPort:
    """The engine's plain link port over any typed :class:`~cnicore.links.LinkBackend` (netlink, iproute2,
    pyroute2, fake): namespaces pass through, values become strings and :class:`LinkInfo`."""

    def __init__(self, backend: LinkBackend) -> None:
        self.backend = backend

    @staticmethod
    def _info(link: Link) -> LinkInfo:
        return LinkInfo(name=link.name, kind=link.kind, mac=link.mac, mtu=link.mtu, master=link.master,
                        oper_state=link.oper_state, promiscuous=link.promiscuous)

    def host(self) -> Namespace:
        return self.backend.host_namespace()

    def open_namespace(self, path: str) -> Namespace:
        return self.backend.open_namespace(path)

    def ensure_bridge(self, ns: Namespace, name: str, *, mtu: int | None, promiscuous: bool,
                      vlan_filtering: bool) -> LinkInfo:
        return self._info(self.backend.ensure_bridge(ns, BridgeSpec(name=name, mtu=mtu, promiscuous=promiscuous,
                                                                    vlan_filtering=vlan_filtering)))

    def create_veth(self, ns: Namespace, ifname: str, host: Namespace, *, mtu: int | None,
                    container_mac: str | None) -> tuple[LinkInfo, LinkInfo]:
        pair = self.backend.create_veth(ns, ifname, host, mtu=mtu, container_mac=container_mac)
        return self._info(pair.host), self._info(pair.container)

    def get_link(self, ns: Namespace, name: str) -> LinkInfo:
        return self._info(self.backend.get_link(ns, name))

    def delete_link(self, ns: Namespace, name: str) -> None:
        self.backend.delete_link(ns, name)

    def set_link_up(self, ns: Namespace, name: str, up: bool) -> None:
        self.backend.set_link_up(ns, name, up)

    def set_master(self, ns: Namespace, name: str, master: str) -> None:
        self.backend.set_master(ns, name, master)

    def set_hairpin(self, ns: Namespace, name: str, on: bool) -> None:
        self.backend.set_hairpin(ns, name, on)

    def set_port_isolation(self, ns: Namespace, name: str, on: bool) -> None:
        self.backend.set_port_isolation(ns, name, on)

    def set_port_vlans(self, ns: Namespace, name: str, *, remove: tuple[int, ...] = (),
                       add: tuple[tuple[int, bool, bool], ...] = ()) -> None:
        self.backend.set_port_vlans(ns, name, remove=remove,
                                    add=tuple(PortVlan(vid=vid, pvid=pvid, untagged=untagged)
                                              for vid, pvid, untagged in add))

    def set_mac(self, ns: Namespace, name: str, mac: str) -> None:
        self.backend.set_mac(ns, name, mac)

    def read_sysctl(self, ns: Namespace, key: str) -> str:
        return self.backend.read_sysctl(ns, key)

    def write_sysctl(self, ns: Namespace, key: str, value: int) -> None:
        self.backend.write_sysctl(ns, key, value)

    def list_addresses(self, ns: Namespace, name: str) -> list[str]:
        return [str(address) for address in self.backend.list_addresses(ns, name)]

    def list_address_states(self, ns: Namespace, name: str) -> list[tuple[str, bool, bool]]:
        return [(str(state.address), state.tentative, state.dad_failed)
                for state in self.backend.list_address_states(ns, name)]

    def add_address(self, ns: Namespace, name: str, address: str) -> None:
        self.backend.add_address(ns, name, Address.parse(address))

    def delete_address(self, ns: Namespace, name: str, address: str) -> None:
        self.backend.delete_address(ns, name, Address.parse(address))

    def add_route(self, ns: Namespace, dst: str, gateway: str | None, device: str, metric: int | None) -> None:
        self.backend.add_route(ns, LinkRoute(dst=dst, gateway=gateway, device=device, metric=metric))

    def list_routes(self, ns: Namespace) -> list[tuple[str, str | None]]:
        return [(str(route.dst), None if route.gateway is None else str(route.gateway))
                for route in self.backend.list_routes(ns)]


class _TypedMasquerader:
    """A typed :class:`~cnicore.links.Firewall` as the engine's masquerader (address strings)."""

    def __init__(self, firewall: Firewall) -> None:
        self.firewall = firewall

    def available(self) -> bool:
        # A firewall tells through an ``available()`` method (the iptables and nftables firewalls check their
        # binary); one without it counts as available.
        check = getattr(self.firewall, "available", None)
        return not callable(check) or bool(check())

    def setup(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        self.firewall.setup_masquerades([netaddr.IPNetwork(a) for a in addresses], network_name, container_id,
                                        ifname=ifname)

    def teardown(self, addresses: list[str], network_name: str, container_id: str, ifname: str) -> None:
        self.firewall.teardown_masquerades([netaddr.IPNetwork(a) for a in addresses], network_name, container_id,
                                           ifname=ifname)


class _TypedNft(_TypedMasquerader):
    firewall: NftFirewall

    def setup_mac_spoof_check(self, host_ifname: str, mac: str, ref_id: str) -> None:
        self.firewall.setup_mac_spoof_check(host_ifname, mac, ref_id)

    def teardown_mac_spoof_check(self, ref_id: str) -> None:
        self.firewall.teardown_mac_spoof_check(ref_id)


class _TypedIpam:
    """The :class:`IPAMDelegate` as the engine's IPAM port (ADD's result as a 1.x object)."""

    def __init__(self, delegate: IPAMDelegate) -> None:
        self.delegate = delegate

    def add(self, ipam_type: str, request: PluginRequest) -> dict[str, Any]:
        return self.delegate.add(ipam_type, request).to_object()

    def delete(self, ipam_type: str, request: PluginRequest) -> None:
        self.delegate.delete(ipam_type, request)

    def check(self, ipam_type: str, request: PluginRequest) -> None:
        self.delegate.check(ipam_type, request)

    def gc(self, ipam_type: str, request: PluginRequest) -> None:
        self.delegate.gc(ipam_type, request)

    def status(self, ipam_type: str, request: PluginRequest) -> None:
        self.delegate.status(ipam_type, request)


class BridgePlugin:
    """The bridge plugin over injected ports: the typed face of the engine
    (:class:`~cnicore.plugins._bridgecore.BridgeEngine`), which decides.

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
        self._engine = BridgeEngine(TypedLinkPort(backend), self, _TypedIpam(self._ipam), sleep)

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

    # The engine's firewall port.

    def iptables(self) -> _TypedMasquerader:
        """The iptables-layout firewall as the engine's masquerader."""
        return _TypedMasquerader(self._fw())

    def nftables(self, key: str, value: Any) -> _TypedNft:
        """The nftables firewall as the engine's port, or code 2 naming the option that needs it."""
        return _TypedNft(self._nft(key, value))

    # -- commands ----------------------------------------------------------------------------------

    def add(self, request: PluginRequest) -> Result:
        """ADD: see the module notes. Not idempotent (a second ADD finds the interface taken)."""
        added = parse_result(self._engine.add(request, CURRENT_VERSION), CURRENT_VERSION)
        assert isinstance(added, Result)
        return added

    def delete(self, request: PluginRequest) -> None:
        """DEL: release IPAM, delete the container's link, tear the spoof check and masquerade down. Idempotent."""
        self._engine.delete(request)

    def check(self, request: PluginRequest) -> None:
        """CHECK: see the module notes. Read-only."""
        def prev_result() -> dict[str, Any] | None:
            prev = parse_prev_result(request.config)
            return None if prev is None else prev.as_version(CURRENT_VERSION).to_object()

        self._engine.check(request, prev_result)

    def gc(self, request: PluginRequest) -> None:
        """GC: forwarded to the IPAM plugin, which releases what no valid attachment holds. Idempotent.

        Beyond the reference, whose bridge GC does nothing (``FIXME``): the spec asks
        a plugin to forward GC to its delegates, and without it a runtime's GC could
        never reach the addresses a bridge network leaked.
        """
        self._engine.gc(request)

    def status(self, request: PluginRequest) -> None:
        """STATUS: delegated to the IPAM plugin when there is one. Read-only."""
        self._engine.status(request)

    def close(self) -> None:
        """Release what the IPAM delegate holds open. Idempotent."""
        self._ipam.close()
