"""Results for humans: interfaces, addresses, routes and DNS as indented lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnicore.spec import AnyResult, Interface, Interface040


def describe_result(result: AnyResult) -> list[str]:
    """A result as indented lines for a terminal: interfaces, addresses, routes and DNS."""
    from cnicore.spec import Result020, go_cidr_text, go_ip_text

    lines = [f"cniVersion {result.cni_version}"]
    if isinstance(result, Result020):
        for label, config in (("ip4", result.ip4), ("ip6", result.ip6)):
            if config is None:
                continue
            gateway = f"  gateway {go_ip_text(config.gateway)}" if config.gateway is not None else ""
            lines.append(f"{label}: {go_cidr_text(config.ip)}{gateway}")
            lines.extend(f"  route {_route_text(route)}" for route in config.routes)
    else:
        if result.interfaces:
            lines.append("interfaces:")
            interfaces: Sequence[Interface | Interface040] = result.interfaces
            width = max(len(i.name) for i in interfaces)
            for index, interface in enumerate(interfaces):
                where = f"sandbox {interface.sandbox}" if interface.sandbox else "host"
                mac = f"  mac {interface.mac}" if interface.mac else ""
                mtu = getattr(interface, "mtu", 0)
                extra = f"  mtu {mtu}" if mtu else ""
                lines.append(f"  [{index}] {interface.name:<{width}}{mac}{extra}  {where}")
        if result.ips:
            lines.append("addresses:")
            for ip in result.ips:
                text = f"  {go_cidr_text(ip.address)}"
                if ip.gateway is not None:
                    text += f"  gateway {go_ip_text(ip.gateway)}"
                owner = result.interface_of(ip)  # type: ignore[arg-type]  # each class takes its own ips
                if owner is not None:
                    text += f"  on {owner.name}"
                elif ip.interface is not None:
                    text += f"  on interface [{ip.interface}]"
                lines.append(text)
        if result.routes:
            lines.append("routes:")
            lines.extend(f"  {_route_text(route)}" for route in result.routes)
    dns = result.dns
    if not dns.is_empty:
        lines.append("dns:")
        if dns.nameservers:
            lines.append(f"  nameservers {' '.join(dns.nameservers)}")
        if dns.domain:
            lines.append(f"  domain {dns.domain}")
        if dns.search:
            lines.append(f"  search {' '.join(dns.search)}")
        if dns.options:
            lines.append(f"  options {' '.join(dns.options)}")
    return lines


def _route_text(route: Any) -> str:
    from cnicore.spec import go_cidr_text, go_ip_text

    text = go_cidr_text(route.dst)
    if route.gw is not None:
        text += f" via {go_ip_text(route.gw)}"
    for name in ("mtu", "advmss", "priority"):
        if getattr(route, name):
            text += f" {name} {getattr(route, name)}"
    for name in ("table", "scope"):
        if getattr(route, name) is not None:
            text += f" {name} {getattr(route, name)}"
    return text
