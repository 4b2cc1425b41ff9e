"""The executed bridge: the bridge engine over plain ports, at the cost of the standard library.

A runtime executes the bridge once per container and command; the typed
:class:`~cnicore.plugins.BridgePlugin` would first import attrs, netaddr and the
link port. :class:`BridgeExecHandler` runs the very same engine
(:class:`~cnicore.plugins._bridgecore.BridgeEngine`) over ports on plain values:

* links: :class:`~cnicore.backends._linkops.PlainLinkPort`, the netlink
  backend's own operations answering strings;
* firewalls: :class:`~cnicore.backends._iptmasq.IptablesMasquerader` and
  :class:`~cnicore.backends._nftmasq.NftMasquerader`, the iptables and nftables
  firewalls' own masquerade on strings (a DEL tears both layouts down); the MAC
  spoof check (``macspoofchk``), which the default podman and Mesos
  configurations never use, is the typed nftables firewall's, loaded only then;
* IPAM: :class:`ExecIpam`, host-local in process by the delegation rule every
  caller follows (:func:`~cnicore.plugins._ipamexec.host_local_in_process`),
  as host-local's exec handler (the allocator's engine on the file store's
  core), else the plugin on ``CNI_PATH`` executed
  (:func:`~cnicore.plugins._ipamexec.exec_ipam`).

The result is written by the one result writer (:mod:`cnicore.spec._resultobj`)
in the version asked for; 0.1.0/0.2.0 results and ``prevResult`` (CHECK) go
through the result types, loaded then. :mod:`cnicore._plugin_main` uses this
handler when the plugin may administer the network and no backend is named
(``CNICORE_BACKEND`` unset or ``auto``); otherwise the typed plugin runs on the
backend asked for.
"""

from __future__ import annotations

import time

from cnicore.plugins._bridgecore import BridgeEngine
from cnicore.plugins._ipamexec import exec_ipam, host_local_in_process
from cnicore.plugins._meta import PlainRequest
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from cnicore.plugins._bridgecore import LinkPort, Masquerader, NftPort
    from cnicore.plugins._hostlocal import HostLocalExecHandler
    from cnicore.spec._environ import CNIEnvironment

__all__ = ["BridgeExecHandler", "ExecIpam"]


class ExecIpam:
    """The engine's IPAM port for the executed bridge (ADD's result as a 1.x object).

    host-local runs in process when :func:`host_local_in_process` says so, as
    :class:`~cnicore.plugins._hostlocal.HostLocalExecHandler` (the same engine
    and store the executed host-local runs); any other plugin is executed.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *, timeout: float = 60.0) -> None:
        self._environ = environ
        self._timeout = timeout
        self._host_local: HostLocalExecHandler | None = None

    def _local(self, ipam_type: str, request: PlainRequest) -> HostLocalExecHandler | None:
        if not host_local_in_process(ipam_type, request.path):
            return None
        if self._host_local is None:
            from cnicore.plugins._hostlocal import HostLocalExecHandler

            self._host_local = HostLocalExecHandler()
        return self._host_local

    def _run(self, ipam_type: str, command: str, request: PlainRequest) -> str | bytes | None:
        local = self._local(ipam_type, request)
        if local is not None:
            # The result as 1.1.0, whatever the configuration's version: the engine reads 1.x.
            return local.handle(command, request.env, dict(request.config), request.config_bytes, CURRENT_VERSION)
        return exec_ipam(ipam_type, command, stdin=request.config_bytes, container_id=request.container_id,
                         netns=request.netns, ifname=request.ifname, args=request.args, path=request.path,
                         environ=self._environ, timeout=self._timeout)

    def add(self, ipam_type: str, request: PlainRequest) -> dict[str, Any]:
        """IPAM ADD; the result as a 1.x object. Not idempotent."""
        out = self._run(ipam_type, "ADD", request)
        if isinstance(out, str):
            from cnicore._json import decode

            found: dict[str, Any] = decode(out, what="host-local's result")
            return found
        # An executed plugin's result, in the configuration's version: read and converted by the result types.
        from cnicore.plugins._delegate import exec_result

        return exec_result(out or b"", request.cni_version).to_object()

    def delete(self, ipam_type: str, request: PlainRequest) -> None:
        """IPAM DEL. Idempotent."""
        self._run(ipam_type, "DEL", request)

    def check(self, ipam_type: str, request: PlainRequest) -> None:
        """IPAM CHECK. Read-only."""
        self._run(ipam_type, "CHECK", request)

    def gc(self, ipam_type: str, request: PlainRequest) -> None:
        """IPAM GC. Idempotent."""
        self._run(ipam_type, "GC", request)

    def status(self, ipam_type: str, request: PlainRequest) -> None:
        """IPAM STATUS (host-local has none). Read-only."""
        self._run(ipam_type, "STATUS", request)

    def close(self) -> None:
        """Close the in-process host-local's stores. Idempotent."""
        if self._host_local is not None:
            self._host_local.close()


class _ExecFirewalls:
    """The engine's firewall port: iptables on strings; the typed nftables firewall when an option needs it."""

    def __init__(self, backends: Callable[[str], Any]) -> None:
        self._backends = backends
        self._iptables: Masquerader | None = None
        self._nft: NftPort | None = None

    def iptables(self) -> Masquerader:
        if self._iptables is None:
            self._iptables = self._backends("cnicore.backends._iptmasq").IptablesMasquerader()
        return self._iptables

    def nftables(self, key: str, value: Any) -> NftPort:
        if self._nft is None:
            # Masquerading on strings; the MAC spoof check (rare: macspoofchk) is the typed nftables firewall's,
            # the one the typed plugin gets from its iptables firewall.
            self._nft = self._backends("cnicore.backends._nftmasq").NftMasquerader(
                lambda: self._backends("cnicore.backends").IptablesFirewall().nftables())
        return self._nft


class _LazyLinks:
    """The plain link port, imported on first use: a DEL without a namespace, GC and STATUS never load it."""

    def __init__(self, backends: Callable[[str], Any]) -> None:
        self._backends = backends
        self._port: LinkPort | None = None

    def __getattr__(self, name: str) -> Any:
        if self._port is None:
            self._port = self._backends("cnicore.backends._linkops").PlainLinkPort()
        return getattr(self._port, name)

    def close(self) -> None:
        """Close the port's sockets, if it was ever made. Idempotent."""
        port: Any = self._port  # the plain port (cnicore.backends._linkops.PlainLinkPort) has close()
        if port is not None:
            port.close()


class BridgeExecHandler:
    """The bridge behind the exec skeleton (:func:`~cnicore.plugins._skel.run_exec`): the engine on plain ports.

    Args:
        backends: imports a backend module by name (the core never imports
            :mod:`cnicore.backends` statically).
        environ: the base environment for an executed IPAM plugin.
        sleep: how to wait (for the host veth, for DAD).
    """

    name = "bridge"
    supported_versions = ALL_VERSIONS

    def __init__(self, backends: Callable[[str], Any], environ: Mapping[str, str] | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._ipam = ExecIpam(environ)
        self._links = _LazyLinks(backends)
        self._engine = BridgeEngine(self._links, _ExecFirewalls(backends), self._ipam, sleep)

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See :class:`~cnicore.plugins._skel.ExecHandler`."""
        request = PlainRequest(env, config, config_bytes, cni_version)
        engine = self._engine
        if command == "ADD":
            return _result_text(engine.add(request, CURRENT_VERSION), cni_version)
        if command == "DEL":
            engine.delete(request)
        elif command == "CHECK":
            engine.check(request, lambda: _prev_result(config))
        elif command == "GC":
            engine.gc(request)
        elif command == "STATUS":
            engine.status(request)
        return None

    def close(self) -> None:
        """Release what the IPAM and link ports hold. Idempotent."""
        try:
            self._ipam.close()
        finally:
            self._links.close()


def _result_text(result: dict[str, Any], cni_version: str) -> str:
    """The engine's 1.x result as printed for ``cni_version`` (by the one result writer where it can)."""
    from cnicore.spec._resultobj import result_object_as

    written = result_object_as(result, cni_version)
    if written is None:
        from cnicore.spec._result import parse_result

        return parse_result(result, CURRENT_VERSION).as_version(cni_version).to_json()
    from cnicore._json import marshal_indent

    return marshal_indent(written)


def _prev_result(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """``prevResult`` as a 1.x object (CHECK only): read on plain values (:mod:`cnicore.spec._resultread`); a
    0.x one, which converts across families, goes through the result types' conversion."""
    from cnicore.spec._resultread import plain_result_object, read_prev_result

    prev = read_prev_result(config)
    if prev is None:
        return None
    if prev["family"] == "100":
        return plain_result_object(prev, CURRENT_VERSION)
    from cnicore.spec._result import result_from_plain

    return result_from_plain(prev).as_version(CURRENT_VERSION).to_object()
