"""The loopback plugin: bring ``lo`` up in the container's namespace (and down on DEL).

It behaves as the reference plugin does, message for message:

* ADD ignores ``CNI_IFNAME`` (it is always ``lo``), sets ``lo`` up and refuses a
  loopback interface that carries any non-loopback address
  (``loopback interface found with non-loopback address "10.0.0.1"``). With a
  ``prevResult`` it returns that result unchanged; otherwise a result with the
  interface ``lo`` (MAC ``00:00:00:00:00:00``, sandbox = the namespace path) and
  the first IPv4 and first IPv6 address of ``lo`` (families present only), tied
  to interface 0.
* The result is stamped with the configuration's version but keeps the 1.x
  shape for every declared version, as the reference prints it (it hits the
  "same version" shortcut when printing). With no ``cniVersion`` at all it is
  converted to 0.1.0: ``{"cniVersion":"0.1.0","ip4":{"ip":"127.0.0.1/8"},
  "ip6":{"ip":"::1/128"},"dns":{}}``.
* DEL sets ``lo`` down; an empty ``CNI_NETNS`` or a namespace that no longer
  exists is a success (DEL must be repeatable).
* CHECK fails with ``loopback interface is down`` when ``lo`` is down.

One deliberate deviation, in the exec path only (see :func:`cnicore._plugin_main.main`):
a configuration with neither ``name`` nor ``cniVersion`` (the Mesos documentation's
``{"type": "loopback"}``) is accepted with 0.1.0 semantics, where today's
reference refuses it with code 7 ``missing network name``. With any declared
version the reference's rule applies.

Exec'd, with the auto backend and the right to administer the network,
loopback runs as a :class:`LoopbackExecHandler` (see :mod:`cnicore._plugin_main`):
the same decisions on addresses as plain numbers, taken from a route netlink
socket in the container's namespace, and the common results written through
the one result writer the result types use (:mod:`cnicore.spec._resultobj`),
so that the process never imports attrs, netaddr or the result types. Anything
else (a ``prevResult``, an address it does not print itself) goes through the
result types exactly as :class:`LoopbackPlugin` does.
"""

from __future__ import annotations

from cnicore._errors import InternalError, NamespaceNotFoundError
from cnicore._gofmt import go_fold
from cnicore._json import marshal_indent
from cnicore.spec._version import ALL_VERSIONS, CURRENT_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, Protocol

    from cnicore.links import LinkBackend, Namespace
    from cnicore.plugins._api import PluginRequest
    from cnicore.spec._environ import CNIEnvironment
    from cnicore.spec._result import AnyResult, Result

    class NamespaceLinks(Protocol):
        """The links of one namespace, as the exec'd loopback needs them (a context manager)."""

        def __enter__(self) -> NamespaceLinks: ...

        def __exit__(self, *exc: object) -> None: ...

        def set_link_up(self, name: str, up: bool = True) -> None:
            """Set the link up or down (:class:`~cnicore.NotFoundError` if there is none)."""

        def link_is_up(self, name: str) -> bool:
            """Whether the link is administratively up."""

        def addresses(self, name: str) -> tuple[RawAddress, ...]:
            """The link's addresses in the link port's order."""

#: An address as plain numbers: ``(4 or 6, the IP as an integer, the prefix length)``.
RawAddress = tuple[int, int, int]

__all__ = ["LOOPBACK_MAC", "LoopbackExecHandler", "LoopbackPlugin", "RawAddress", "result_text"]

#: The MAC address the loopback interface reports.
LOOPBACK_MAC = "00:00:00:00:00:00"
_LO = "lo"
_V4_MAPPED = 0xFFFF


def _is_loopback(version: int, ip: int) -> bool:
    # Go's net.IP.IsLoopback: 127.0.0.0/8 or ::1 (IPv4-mapped loopback counts as IPv4).
    if version == 6 and ip >> 32 == _V4_MAPPED:
        version, ip = 4, ip & 0xFFFFFFFF
    if version == 4:
        return ip >> 24 == 127
    return ip == 1


def _ip_text(version: int, ip: int) -> str:
    import netaddr  # type: ignore[import-untyped, unused-ignore]

    return str(netaddr.IPAddress(ip, version))


def _first_addresses(addresses: Iterable[RawAddress]) -> dict[int, RawAddress]:
    """The first address of each family on ``lo``; every address must be a loopback one."""
    listed = tuple(addresses)
    first: dict[int, RawAddress] = {}
    for family in (4, 6):
        for address in listed:
            version, ip, _prefixlen = address
            if version != family:
                continue
            if not _is_loopback(version, ip):
                raise InternalError(
                    f'loopback interface found with non-loopback address "{_ip_text(version, ip)}"')
            first.setdefault(family, address)
    return first


def _result(first: Mapping[int, RawAddress], netns: str, cni_version: str) -> Result:
    """The result of ADD without a prevResult, stamped with the configuration's version."""
    import netaddr

    from cnicore.spec._result import Interface, IPConfig, Result

    def network(address: RawAddress) -> netaddr.IPNetwork:
        version, ip, prefixlen = address
        return netaddr.IPNetwork(f"{netaddr.IPAddress(ip, version)}/{prefixlen}")

    # An absent version stays absent: printing then converts to 0.1.0, as the reference does.
    return Result(
        cni_version=cni_version or CURRENT_VERSION,
        interfaces=(Interface(name=_LO, mac=LOOPBACK_MAC, sandbox=netns),),
        ips=tuple(IPConfig(address=network(first[v]), interface=0) for v in (4, 6) if v in first),
    )


def _simple_text(address: RawAddress) -> str | None:
    # Go's text of the addresses lo normally has, written without netaddr: IPv4 and ::1.
    version, ip, prefixlen = address
    if version == 4:
        return f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}/{prefixlen}"
    return f"::1/{prefixlen}" if ip == 1 else None


def result_text(first: Mapping[int, RawAddress], netns: str, cni_version: str) -> str | None:
    """What the skeleton prints for ``_result(first, netns, cni_version)``, or None where it cannot say.

    Written through the one result writer (:mod:`cnicore.spec._resultobj`, which
    the result types print through too) for the results loopback gives in
    practice (IPv4 and ``::1`` addresses), without building the result types;
    None for anything else, which then takes the result types.
    """
    from cnicore.spec import _resultobj as writer

    texts = {family: _simple_text(address) for family, address in first.items()}
    if None in texts.values():
        return None
    if cni_version:
        # The 1.x shape at the declared version (see cnicore.spec._result).
        interface = writer.interface_object(_LO, LOOPBACK_MAC, sandbox=netns)
        ips = [writer.ip_object_100(text, interface=0) for v in (4, 6) if (text := texts.get(v)) is not None]
        return marshal_indent(writer.result_object_100(cni_version, [interface], ips))
    if not texts:
        return None  # converting to 0.1.0 fails: the result types say how
    # No version: converted to 0.1.0, the ip4/ip6 shape (the first address of each family; lo has no
    # gateway and no route to carry over).
    ip4, ip6 = (None if texts.get(v) is None else writer.ip_object_020(str(texts[v])) for v in (4, 6))
    return marshal_indent(writer.result_object_020("0.1.0", ip4, ip6, writer.dns_object(sort=False)))


def _may_hold_prev_result(config: Mapping[str, Any]) -> bool:
    # Any spelling Go's case-insensitive match could take for prevResult (the result parser decides).
    return any(isinstance(key, str) and go_fold(key) == "prevresult" for key in config)


class LoopbackPlugin:
    """The loopback plugin over a :class:`~cnicore.links.LinkBackend`.

    Args:
        backend: where ``lo`` lives; the plugin never touches the kernel itself.
    """

    name = "loopback"
    supported_versions = ALL_VERSIONS

    def __init__(self, backend: LinkBackend) -> None:
        self._backend = backend

    def add(self, request: PluginRequest) -> AnyResult:
        """ADD: set ``lo`` up; return the prevResult or ``lo`` with its addresses.

        Raises :class:`~cnicore.InternalError` for a non-loopback address on ``lo``,
        :class:`~cnicore.NamespaceNotFoundError` when the namespace does not exist.
        """
        from cnicore.spec._result import parse_prev_result

        ns = self._backend.open_namespace(request.netns)
        self._backend.set_link_up(ns, _LO, True)
        addresses = self._backend.list_addresses(ns, _LO)
        first = _first_addresses((a.version, int(a.ip), a.prefixlen) for a in addresses)
        prev = parse_prev_result(request.config)
        if prev is not None:
            # The reference converts prevResult to the current version and prints it at the
            # configuration's version; doing the same keeps every quirk of that round trip.
            return prev.as_version(CURRENT_VERSION)
        return _result(first, request.netns, request.cni_version)

    def delete(self, request: PluginRequest) -> None:
        """DEL: set ``lo`` down. Idempotent; a missing or empty namespace succeeds."""
        if not request.netns:
            return
        try:
            ns = self._backend.open_namespace(request.netns)
            self._backend.set_link_up(ns, _LO, False)
        except NamespaceNotFoundError:
            return

    def check(self, request: PluginRequest) -> None:
        """CHECK: ``lo`` must be up (``loopback interface is down`` otherwise). Read-only."""
        ns: Namespace = self._backend.open_namespace(request.netns)
        if not self._backend.get_link(ns, _LO).admin_up:
            raise InternalError("loopback interface is down")


class LoopbackExecHandler:
    """The loopback plugin as the exec skeleton runs it (:func:`~cnicore.plugins._skel.run_exec`).

    The same behaviour as :class:`LoopbackPlugin`, on the decoded configuration
    and on a namespace's links as plain numbers (see the module docstring).

    Args:
        open_links: opens the links of the namespace at a path; raises
            :class:`~cnicore.NamespaceNotFoundError` when it does not exist.
    """

    name = "loopback"
    supported_versions = ALL_VERSIONS

    def __init__(self, open_links: Callable[[str], NamespaceLinks]) -> None:
        self._open = open_links

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See :class:`~cnicore.plugins._skel.ExecHandler`."""
        if command == "ADD":
            return self._add(env.netns, config, cni_version)
        if command == "DEL":
            if env.netns:
                try:
                    with self._open(env.netns) as links:
                        links.set_link_up(_LO, False)
                except NamespaceNotFoundError:
                    pass
        elif command == "CHECK":
            with self._open(env.netns) as links:
                up = links.link_is_up(_LO)
            if not up:
                raise InternalError("loopback interface is down")
        return None  # loopback has no GC or STATUS: nothing to do

    def _add(self, netns: str, config: dict[str, Any], cni_version: str) -> str:
        with self._open(netns) as links:
            links.set_link_up(_LO, True)
            addresses = links.addresses(_LO)
        first = _first_addresses(addresses)
        if _may_hold_prev_result(config):
            from cnicore.spec._result import parse_prev_result

            prev = parse_prev_result(config)
            if prev is not None:
                return prev.as_version(CURRENT_VERSION).as_version(cni_version).to_json()
        text = result_text(first, netns, cni_version)
        if text is None:
            text = _result(first, netns, cni_version).as_version(cni_version).to_json()
        return text
