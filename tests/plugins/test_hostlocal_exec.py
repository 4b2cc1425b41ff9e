"""The exec'd host-local's handler and result writer: byte for byte what HostLocalPlugin prints.

The handler (cnicore.plugins._hostlocal.HostLocalExecHandler) writes ADD's result
without the result types. Here the writer is held against the result types over
generated allocations at every version, and the handler against the plugin on
the same configurations, each through the exec skeleton with its own store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork
from plugin_helpers import run_host_local

from cnicore import InvalidConfigError
from cnicore.ipam import HostLocalIPAM
from cnicore.ipam._allocator import AllocatedIP
from cnicore.ipam._config import Route as IPAMRoute
from cnicore.ipam._dns import DNS as IPAMDNS
from cnicore.ipam._hostlocal import Allocation
from cnicore.plugins._hostlocal import allocation_result, allocation_text
from cnicore.spec import ALL_VERSIONS
from cnicore.testing import ip_addresses, ip_networks

VERSIONS = ("", *ALL_VERSIONS)
_MAPPED = st.tuples(st.integers(0, 2**32 - 1), st.integers(96, 128)).map(
    lambda t: IPNetwork((0xFFFF << 32 | t[0], t[1]), version=6))
_NUMBERS = st.none() | st.just(0) | st.integers(-(2**63), 2**63 - 1) | st.integers(-1000, 1000)
_TEXT = st.text(max_size=5)


@st.composite
def allocations(draw: st.DrawFn) -> Allocation:
    addresses = draw(st.lists(ip_networks() | _MAPPED, max_size=4))
    ips = tuple(AllocatedIP(address=address, gateway=draw(ip_addresses(address.version)), range_set_index=i)
                for i, address in enumerate(addresses))
    routes = tuple(IPAMRoute(dst=draw(ip_networks() | _MAPPED), gw=draw(st.none() | ip_addresses()),
                             mtu=draw(_NUMBERS), advmss=draw(_NUMBERS), priority=draw(_NUMBERS), table=draw(_NUMBERS),
                             scope=draw(_NUMBERS))
                   for _ in range(draw(st.integers(0, 3))))
    names = st.lists(_TEXT, max_size=2).map(tuple)
    dns = IPAMDNS(nameservers=draw(names), domain=draw(_TEXT), search=draw(names), options=draw(names))
    return Allocation(ips=ips, routes=routes, dns=dns)


@given(allocations(), st.sampled_from(VERSIONS))
def test_written_results_are_the_result_types_text(allocation: Allocation, version: str) -> None:
    text = allocation_text(allocation, version)
    try:
        expected = allocation_result(allocation).as_version(version).to_json()
    except Exception:  # the result types refuse it (0.2.0 without an address, a bad number): so must the writer
        assert text is None
        return
    if text is not None:
        assert text == expected
    else:
        # Only nothing to convert to 0.1.0/0.2.0 is left to the result types (numbers a float64 rounds included,
        # the one writer prints every route).
        assert not allocation.ips and version in ("", "0.1.0", "0.2.0")


def test_an_unknown_version_is_left_to_the_result_types() -> None:
    allocation = Allocation(ips=(AllocatedIP(address=IPNetwork("10.0.0.2/24"), gateway=IPAddress("10.0.0.1"),
                                             range_set_index=0),))
    assert allocation_text(allocation, "9.9.9") is None
    assert allocation_text(allocation, "1.0.0") is not None


def _environ(command: str, container: str = "c1", ifname: str = "eth0") -> dict[str, str]:
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": "/var/run/netns/x",
            "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin"}


def _run(kind: str, environ: dict[str, str], config: dict[str, Any], data_dir: Path) -> tuple[int, str]:
    return run_host_local(kind, environ, config, data_dir)


def _config(version: str, **ipam: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"name": "hl-net", "type": "bridge", "ipam": {"type": "host-local", **ipam}}
    if version:
        config["cniVersion"] = version
    return config


@pytest.mark.parametrize("version", VERSIONS)
def test_handler_and_plugin_agree_through_the_skeleton(version: str, tmp_path: Path) -> None:
    config = _config(version, ranges=[[{"subnet": "10.9.0.0/29", "gateway": "10.9.0.1"}],
                                      [{"subnet": "fd00:9::/125"}]],
                     routes=[{"dst": "0.0.0.0/0"}, {"dst": "fd00::/8", "gw": "fd00:9::1", "mtu": 1400}],
                     resolvConf=str(tmp_path / "missing.conf"))
    steps = [("ADD", "c1"), ("ADD", "c2"), ("CHECK", "c1"), ("DEL", "c1"), ("DEL", "c1"), ("CHECK", "c1"),
             ("ADD", "c3"), ("GC", ""), ("STATUS", ""), ("VERSION", "")]
    for command, container in steps:
        environ = _environ(command, container)
        plugin = _run("plugin", environ, config, tmp_path / "plugin")
        handler = _run("handler", environ, config, tmp_path / "handler")
        assert handler == plugin, (command, container)
    assert sorted(p.name for p in (tmp_path / "handler" / "hl-net").iterdir()) == \
        sorted(p.name for p in (tmp_path / "plugin" / "hl-net").iterdir())


@pytest.mark.parametrize("config", [_config("1.0.0", subnet="10.9.0.0/30"), _config("0.4.0", subnet="bogus"),
                                    _config("1.0.0", subnet="10.9.0.0/24", rangeStart="10.9.1.1"),
                                    {"name": "n", "cniVersion": "1.0.0", "ipam": {"type": "host-local"}}])
def test_handler_and_plugin_agree_on_failures(config: dict[str, Any], tmp_path: Path) -> None:
    for container in ("c1", "c2", "c3"):  # a /30 has room for one address: exhaustion
        environ = _environ("ADD", container)
        assert _run("handler", environ, config, tmp_path / "h") == _run("plugin", environ, config, tmp_path / "p")


@pytest.mark.parametrize("kind", ["handler", "plugin"])
def test_an_interface_name_that_is_not_utf8_is_refused_and_nothing_is_reserved(kind: str, tmp_path: Path) -> None:
    # Stricter than the reference (see cnicore.spec._validate.validate_interface_name): code 4 naming the variable,
    # before the store is opened.
    config = _config("1.0.0", subnet="10.9.0.0/24")
    code, out = _run(kind, _environ("ADD", ifname=os.fsdecode(b"eth\xff")), config, tmp_path / "data")
    assert (code, json.loads(out)) == (1, {"code": 4, "msg": "interface name is not valid UTF-8",
                                           "details": "eth\\xff"})
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("kind", ["plugin", "handler"])
def test_a_missing_resolv_conf_fails_before_the_store_is_opened(kind: str, tmp_path: Path) -> None:
    # As in the reference (tests/plugins/test_reference.py compares the two): the file is read before the store
    # is opened, so the failed ADD leaves nothing, not even the network's directory and lock file.
    missing = tmp_path / "missing.conf"
    config = _config("1.0.0", subnet="10.9.0.0/24", resolvConf=str(missing))
    code, out = _run(kind, _environ("ADD"), config, tmp_path / "data")
    assert (code, json.loads(out)) == (1, {"code": 999, "msg": f"open {missing}: no such file or directory"})
    assert not (tmp_path / "data").exists()
    with HostLocalIPAM() as ipam, pytest.raises(InvalidConfigError) as caught:
        ipam.add({**config, "ipam": {**config["ipam"], "dataDir": str(tmp_path / "data")}}, "c1", "eth0")
    assert (caught.value.code, caught.value.key, caught.value.value) == (7, "ipam.resolvConf", str(missing))
    assert not (tmp_path / "data").exists()
    missing.write_text("nameserver 10.9.0.53\n")  # once it exists, the same ADD succeeds
    code, out = _run(kind, _environ("ADD"), config, tmp_path / "data")
    assert code == 0 and json.loads(out)["dns"] == {"nameservers": ["10.9.0.53"]}
    assert sorted(p.name for p in (tmp_path / "data" / "hl-net").iterdir()) == \
        ["10.9.0.2", "last_reserved_ip.0", "lock"]
