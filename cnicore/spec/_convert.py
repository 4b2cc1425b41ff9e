"""Converting results between CNI versions, with the reference's rules and messages.

The conversion graph (the reference's registered converters)::

    0.1.0 <-> 0.2.0                      same data, new version
    0.1.0/0.2.0  ->  0.3.0/0.3.1/0.4.0   ip4 -> ips[] version "4", ip6 -> version "6";
                                         ip4.routes then ip6.routes become routes[] (every field kept)
    0.3.x/0.4.0 <-> 0.3.x/0.4.0          same data, new version
    0.3.x/0.4.0  ->  0.1.0/0.2.0         the FIRST "4" and FIRST "6" entry (by their version text)
                                         become ip4/ip6; each route goes to ip4.routes (IPv4 dst) or
                                         ip6.routes (IPv6 dst) when that exists, else is dropped, and
                                         keeps only dst and gw; interfaces dropped; with neither ip4
                                         nor ip6: "cannot convert: no valid IP addresses"
    0.x          ->  1.0.0/1.1.0         via 0.4.0; ips[].version dropped
    1.0.0 <-> 1.1.0                      same data, new version
    1.x          ->  0.3.x/0.4.0         version "4"/"6" from the address family; interfaces lose
                                         mtu, socketPath and pciID
    1.x          ->  0.1.0/0.2.0         via 0.4.0

Converting to the version a result already has returns the very same object
(no re-typing: a 1.x-shaped result stamped 0.4.0 stays 1.x-shaped). The empty
version means 0.1.0. Anything else fails with ``no converter for CNI result
version <from> to <to>``.

Failures are :class:`~cnicore.InternalError` (code 999): the reference returns
them as plain Go errors, which a plugin reports as code 999.
"""

from __future__ import annotations

from cnicore._errors import DecodingError, InternalError
from cnicore.spec._result import (
    AnyResult,
    Interface,
    Interface040,
    IPConfig,
    IPConfig020,
    IPConfig040,
    Result,
    Result020,
    Result040,
    Route,
)
from cnicore.spec._version import result_family

__all__ = ["convert_result"]


def convert_result(result: AnyResult, version: str) -> AnyResult:
    """``result`` as ``version`` (the reference's ``GetAsVersion``/``Convert``).

    Args:
        result: any result.
        version: the target version; ``""`` means ``0.1.0``.

    Returns:
        ``result`` itself when it already has ``version``, else a new result of
        the target family (:class:`Result020`, :class:`Result040` or :class:`Result`).

    Raises:
        InternalError: ``cannot convert: no valid IP addresses`` (to 0.1.0/0.2.0
            without any IPv4/IPv6 entry) or ``no converter for CNI result version X to Y``.
    """
    target = version or "0.1.0"
    if result.cni_version == target:
        return result
    try:
        to_family = result_family(target)
    except DecodingError:
        raise InternalError(f"no converter for CNI result version {result.cni_version} to {target}",
                            key="cniVersion", value=target) from None
    # Dispatch on the shape of the object, not its version text (see the module docstring).
    if isinstance(result, Result020):
        if to_family == "020":
            return Result020(cni_version=target, ip4=result.ip4, ip6=result.ip6, dns=result.dns)
        as_040 = _from_02x(result, "0.4.0" if to_family == "100" else target)
        return as_040 if to_family == "040" else _from_04x(as_040, target)
    if isinstance(result, Result040):
        if to_family == "040":
            return Result040(cni_version=target, interfaces=result.interfaces, ips=result.ips,
                             routes=result.routes, dns=result.dns)
        return _to_02x(result, target) if to_family == "020" else _from_04x(result, target)
    if to_family == "100":
        return Result(cni_version=target, interfaces=result.interfaces, ips=result.ips, routes=result.routes,
                      dns=result.dns)
    if to_family == "040":
        return _to_04x(result, target)
    return _to_02x(_to_04x(result, "0.4.0"), target)


def _from_02x(result: Result020, version: str) -> Result040:
    ips: list[IPConfig040] = []
    routes: list[Route] = []
    for config, ip_version in ((result.ip4, "4"), (result.ip6, "6")):
        if config is not None:
            ips.append(IPConfig040(version=ip_version, address=config.ip, gateway=config.gateway))
            routes.extend(config.routes)
    return Result040(cni_version=version, ips=ips, routes=routes, dns=result.dns)


def _to_02x(result: Result040, version: str) -> Result020:
    ip4: IPConfig020 | None = None
    ip6: IPConfig020 | None = None
    for ip in result.ips:
        if ip.version == "4" and ip4 is None:
            ip4 = IPConfig020(ip=ip.address, gateway=ip.gateway)
        elif ip.version == "6" and ip6 is None:
            ip6 = IPConfig020(ip=ip.address, gateway=ip.gateway)
    if ip4 is None and ip6 is None:
        raise InternalError("cannot convert: no valid IP addresses")
    routes4: list[Route] = []
    routes6: list[Route] = []
    for route in result.routes:
        # 0.2.0 routes have only dst and gw.
        slim = Route(dst=route.dst, gw=route.gw)
        if route.dst.version == 4:
            if ip4 is not None:
                routes4.append(slim)
        elif ip6 is not None:
            routes6.append(slim)
    if ip4 is not None:
        ip4 = IPConfig020(ip=ip4.ip, gateway=ip4.gateway, routes=routes4)
    if ip6 is not None:
        ip6 = IPConfig020(ip=ip6.ip, gateway=ip6.gateway, routes=routes6)
    return Result020(cni_version=version, ip4=ip4, ip6=ip6, dns=result.dns)


def _from_04x(result: Result040, version: str) -> Result:
    return Result(
        cni_version=version,
        interfaces=[Interface(name=i.name, mac=i.mac, sandbox=i.sandbox) for i in result.interfaces],
        ips=[IPConfig(address=ip.address, gateway=ip.gateway, interface=ip.interface) for ip in result.ips],
        routes=result.routes,
        dns=result.dns,
    )


def _to_04x(result: Result, version: str) -> Result040:
    return Result040(
        cni_version=version,
        interfaces=[Interface040(name=i.name, mac=i.mac, sandbox=i.sandbox) for i in result.interfaces],
        ips=[IPConfig040(version="4" if ip.address.version == 4 else "6", address=ip.address, gateway=ip.gateway,
                         interface=ip.interface) for ip in result.ips],
        routes=result.routes,
        dns=result.dns,
    )
