"""The port's plain-data values: what they accept, what they refuse, and with which error."""

from __future__ import annotations

import netaddr
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore._errors import InvalidConfigError, InvalidEnvironmentError
from cnicore.links import Address, BridgeSpec, Route, check_sysctl_key, check_sysctl_value, normalize_mac


@given(st.ip_addresses(), st.data())
def test_address_round_trip(ip: object, data: st.DataObject) -> None:
    ip = netaddr.IPAddress(str(ip))
    prefixlen = data.draw(st.integers(0, 32 if ip.version == 4 else 128))
    address = Address.parse(f"{ip}/{prefixlen}")
    assert Address.parse(str(address)) == address
    assert address.ip == ip and address.prefixlen == prefixlen
    assert address.interface.ip == ip and address.network == address.interface.cidr


def test_address_keeps_the_host_part() -> None:
    assert Address.parse("10.1.2.2/24") != Address.parse("10.1.2.3/24")
    assert str(Address.parse("10.1.2.2")) == "10.1.2.2/32"
    with pytest.raises(InvalidConfigError):
        Address(ip="10.0.0.1", prefixlen=33)
    with pytest.raises(InvalidConfigError):
        Address.parse("not an address")


def test_route_rules() -> None:
    assert Route(dst="10.1.2.9/24", device="eth0").dst == netaddr.IPNetwork("10.1.2.0/24")
    with pytest.raises(InvalidConfigError, match="needs a device or a gateway"):
        Route(dst="10.0.0.0/8")
    with pytest.raises(InvalidConfigError, match="not of the family"):
        Route(dst="10.0.0.0/8", gateway="2001:db8::1")
    with pytest.raises(InvalidConfigError, match="no scope"):
        Route(dst="2001:db8::/64", device="eth0", scope="link")
    with pytest.raises(InvalidConfigError):
        Route(dst="10.0.0.0/8", device="eth0", scope="site")  # type: ignore[arg-type]
    with pytest.raises(InvalidEnvironmentError):
        Route(dst="10.0.0.0/8", device="x" * 16)


def test_bridge_names_are_checked() -> None:
    with pytest.raises(InvalidEnvironmentError):
        BridgeSpec(name="a/b")


@pytest.mark.parametrize(("key", "path"), [
    ("net/ipv4/ip_forward", "net/ipv4/ip_forward"),
    ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
    ("/proc/sys/net/ipv6/conf/all/forwarding", "net/ipv6/conf/all/forwarding"),
    ("net/ipv6/conf/cni0.100/accept_ra", "net/ipv6/conf/cni0.100/accept_ra"),
    ("net/ipv4/conf/eth0/arp_notify", "net/ipv4/conf/eth0/arp_notify"),
])
def test_sysctl_keys(key: str, path: str) -> None:
    assert check_sysctl_key(key).path == path


@pytest.mark.parametrize("key", [
    "kernel/hostname", "net/ipv4/conf/eth0/rp_filter", "net/ipv6/conf/eth0/../../../../kernel/x",
    "net/ipv4/ip_forward/x", "net/core/somaxconn",
])
def test_other_sysctls_are_refused(key: str) -> None:
    with pytest.raises((InvalidConfigError, InvalidEnvironmentError)):
        check_sysctl_key(key)


def test_sysctl_values_and_macs() -> None:
    assert check_sysctl_value(1) == "1" and check_sysctl_value(" -1 ") == "-1"
    for bad in ("yes", True, "1; reboot", ""):
        with pytest.raises(InvalidConfigError):
            check_sysctl_value(bad)  # type: ignore[arg-type]
    assert normalize_mac("0A-58-0A-F4-01-06") == "0a:58:0a:f4:01:06"
    with pytest.raises(InvalidConfigError):
        normalize_mac("zz:zz")
