"""The one writer of CNI results, on plain values: the objects the reference marshals, key for key.

The result types (:mod:`cnicore.spec._result`) print through these functions,
and so does any exec'd plugin that writes its result without building them
(loopback does; see :mod:`cnicore.plugins._loopback`): the bytes come from one
place. Addresses arrive as the reference's text (``10.1.2.3/24``, ``10.1.2.1``);
numbers as integers. Key order is the reference's: 1.x objects pass through
``map[string]interface{}`` in the reference and print every key sorted (their
numbers as float64 would); 0.x objects print in struct order.

Standard library only, and nothing loaded before it is needed: an exec'd plugin
imports it on its way to stdout.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["dns_object", "go_float_int", "interface_object", "ip_object_020", "ip_object_040", "ip_object_100",
           "result_object_020", "result_object_040", "result_object_100", "result_object_as", "route_object"]

_EXACT_FLOAT = 2**53


def go_float_int(value: int) -> int:
    """An integer as Go prints it after a trip through float64 (1.x results pass through ``interface{}``)."""
    if -_EXACT_FLOAT <= value <= _EXACT_FLOAT:
        return value
    from decimal import Decimal  # rarely needed, and a millisecond to import for every exec'd plugin

    return int(Decimal(repr(float(value))))


def _sorted(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: obj[key] for key in sorted(obj)}


def dns_object(nameservers: Sequence[str] = (), domain: str = "", search: Sequence[str] = (),
               options: Sequence[str] = (), *, sort: bool) -> dict[str, Any]:
    """The ``dns`` object: only the fields that are set (sorted keys for 1.x: ``sort=True``)."""
    obj: dict[str, Any] = {}
    if nameservers:
        obj["nameservers"] = list(nameservers)
    if domain:
        obj["domain"] = domain
    if search:
        obj["search"] = list(search)
    if options:
        obj["options"] = list(options)
    return _sorted(obj) if sort else obj


def route_object(dst: str, gw: str | None = None, *, mtu: int = 0, advmss: int = 0, priority: int = 0,
                 table: int | None = None, scope: int | None = None, sort: bool) -> dict[str, Any]:
    """A ``routes`` entry (sorted keys and float64 numbers for 1.x: ``sort=True``)."""
    number = go_float_int if sort else int
    obj: dict[str, Any] = {"dst": dst}
    if gw is not None:
        obj["gw"] = gw
    if mtu:
        obj["mtu"] = number(mtu)
    if advmss:
        obj["advmss"] = number(advmss)
    if priority:
        obj["priority"] = number(priority)
    if table is not None:
        obj["table"] = number(table)
    if scope is not None:
        obj["scope"] = number(scope)
    return _sorted(obj) if sort else obj


def interface_object(name: str, mac: str = "", *, mtu: int = 0, sandbox: str = "", socket_path: str = "",
                     pci_id: str = "", current: bool = True) -> dict[str, Any]:
    """An ``interfaces`` entry: 1.x (``current``: sorted, every field) or 0.3.x/0.4.0 (name, mac, sandbox)."""
    obj: dict[str, Any] = {"name": name}
    if mac:
        obj["mac"] = mac
    if not current:
        if sandbox:
            obj["sandbox"] = sandbox
        return obj
    if mtu:
        obj["mtu"] = go_float_int(mtu)
    if sandbox:
        obj["sandbox"] = sandbox
    if socket_path:
        obj["socketPath"] = socket_path
    if pci_id:
        obj["pciID"] = pci_id
    return _sorted(obj)


def ip_object_100(address: str, gateway: str | None = None, interface: int | None = None) -> dict[str, Any]:
    """A 1.x ``ips`` entry (its keys happen to be in sorted order already)."""
    obj: dict[str, Any] = {"address": address}
    if gateway is not None:
        obj["gateway"] = gateway
    if interface is not None:
        obj["interface"] = go_float_int(interface)
    return obj


def ip_object_040(version: str, address: str, gateway: str | None = None,
                  interface: int | None = None) -> dict[str, Any]:
    """A 0.3.x/0.4.0 ``ips`` entry in struct order (``version`` is ``"4"`` or ``"6"``)."""
    obj: dict[str, Any] = {"version": version}
    if interface is not None:
        obj["interface"] = interface
    obj["address"] = address
    if gateway is not None:
        obj["gateway"] = gateway
    return obj


def ip_object_020(ip: str, gateway: str | None = None, routes: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A 0.1.0/0.2.0 ``ip4``/``ip6`` object; ``routes`` already written (:func:`route_object`, unsorted)."""
    obj: dict[str, Any] = {"ip": ip}
    if gateway is not None:
        obj["gateway"] = gateway
    if routes:
        obj["routes"] = list(routes)
    return obj


def result_object_100(cni_version: str, interfaces: Sequence[dict[str, Any]] = (),
                      ips: Sequence[dict[str, Any]] = (), routes: Sequence[dict[str, Any]] = (),
                      dns: dict[str, Any] | None = None) -> dict[str, Any]:
    """A 1.x result: every key sorted, ``dns`` only when set, empty lists left out."""
    obj: dict[str, Any] = {"cniVersion": cni_version}
    if dns:
        obj["dns"] = dns
    if interfaces:
        obj["interfaces"] = list(interfaces)
    if ips:
        obj["ips"] = list(ips)
    if routes:
        obj["routes"] = list(routes)
    return obj


def result_object_040(cni_version: str, interfaces: Sequence[dict[str, Any]] = (),
                      ips: Sequence[dict[str, Any]] = (), routes: Sequence[dict[str, Any]] = (),
                      dns: dict[str, Any] | None = None) -> dict[str, Any]:
    """A 0.3.x/0.4.0 result in struct order: empty lists left out, ``dns`` always present."""
    obj: dict[str, Any] = {"cniVersion": cni_version}
    if interfaces:
        obj["interfaces"] = list(interfaces)
    if ips:
        obj["ips"] = list(ips)
    if routes:
        obj["routes"] = list(routes)
    obj["dns"] = dns if dns is not None else {}
    return obj


def result_object_020(cni_version: str, ip4: dict[str, Any] | None = None, ip6: dict[str, Any] | None = None,
                      dns: dict[str, Any] | None = None) -> dict[str, Any]:
    """A 0.1.0/0.2.0 result in struct order; ``dns`` always present."""
    obj: dict[str, Any] = {"cniVersion": cni_version}
    if ip4 is not None:
        obj["ip4"] = ip4
    if ip6 is not None:
        obj["ip6"] = ip6
    obj["dns"] = dns if dns is not None else {}
    return obj


def result_object_as(result: dict[str, Any], cni_version: str) -> dict[str, Any] | None:
    """A 1.x result object written by this module (:func:`result_object_100`), written for ``cni_version``.

    1.0.0/1.1.0: the same object, stamped ``cni_version``. 0.3.x/0.4.0: the
    0.4.0 object (each address's ``version`` from its family; interfaces keep
    name, MAC and sandbox; routes and DNS in struct order). 0.1.0/0.2.0, whose
    conversion picks addresses and may fail with the reference's message, and
    any other version: None (the result types convert those; see
    :mod:`cnicore.spec._convert`).
    """
    if cni_version in ("1.0.0", "1.1.0"):
        return {**result, "cniVersion": cni_version}
    if cni_version not in ("0.3.0", "0.3.1", "0.4.0"):
        return None
    interfaces = [interface_object(i["name"], i.get("mac", ""), sandbox=i.get("sandbox", ""), current=False)
                  for i in result.get("interfaces") or ()]
    ips = [ip_object_040("6" if ":" in ip["address"] else "4", ip["address"], ip.get("gateway"), ip.get("interface"))
           for ip in result.get("ips") or ()]
    routes = [route_object(r["dst"], r.get("gw"), mtu=r.get("mtu", 0), advmss=r.get("advmss", 0),
                           priority=r.get("priority", 0), table=r.get("table"), scope=r.get("scope"), sort=False)
              for r in result.get("routes") or ()]
    dns = result.get("dns") or {}
    return result_object_040(cni_version, interfaces, ips, routes,
                             dns_object(dns.get("nameservers", ()), dns.get("domain", ""), dns.get("search", ()),
                                        dns.get("options", ()), sort=False))
