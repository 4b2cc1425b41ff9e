"""The loopback plugin in process on the fake backend, and through the exec skeleton."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from cnicore import InternalError, NamespaceNotFoundError
from cnicore.backends import FakeLinkBackend
from cnicore.links import Address
from cnicore.plugins import LoopbackPlugin, PluginRequest, run_plugin
from cnicore.spec import ALL_VERSIONS

NS = "/var/run/netns/cnt-lo"


def _request(command: str, config: dict[str, Any], netns: str = NS) -> PluginRequest:
    version = config.get("cniVersion", "")
    return PluginRequest(command=command, container_id="c1", netns=netns, ifname="eth0", config=config,
                         config_bytes=json.dumps(config).encode(), cni_version=version)


@pytest.fixture
def backend() -> FakeLinkBackend:
    fake = FakeLinkBackend()
    fake.add_namespace(NS)
    return fake


def _exec(plugin: LoopbackPlugin, command: str, config: dict[str, Any] | bytes, netns: str = NS) -> tuple[int, str]:
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    out = io.BytesIO()
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": netns, "CNI_IFNAME": "mynetlo",
           "CNI_PATH": "/opt/cni/bin"}
    code = run_plugin(plugin, environ=env, stdin=io.BytesIO(data), stdout=out, stderr=io.BytesIO(),
                      allow_legacy_nameless=True, reference_codes=True)
    return code, out.getvalue().decode()


def test_add_sets_lo_up_and_reports_its_addresses(backend: FakeLinkBackend) -> None:
    plugin = LoopbackPlugin(backend)
    result = plugin.add(_request("ADD", {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}))
    ns = backend.open_namespace(NS)
    assert backend.get_link(ns, "lo").admin_up
    assert json.loads(result.to_json()) == {
        "cniVersion": "1.0.0",
        "interfaces": [{"mac": "00:00:00:00:00:00", "name": "lo", "sandbox": NS}],
        "ips": [{"address": "127.0.0.1/8", "interface": 0}, {"address": "::1/128", "interface": 0}],
    }


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_declared_versions_keep_the_current_shape(backend: FakeLinkBackend, version: str) -> None:
    code, out = _exec(LoopbackPlugin(backend), "ADD", {"cniVersion": version, "name": "lo", "type": "loopback"})
    assert code == 0
    doc = json.loads(out)
    assert doc["cniVersion"] == version
    # The reference prints the 1.x shape at every version: no ip4, no ips[].version.
    assert "ip4" not in doc
    assert doc["ips"] == [{"address": "127.0.0.1/8", "interface": 0}, {"address": "::1/128", "interface": 0}]


def test_only_present_families_are_reported(backend: FakeLinkBackend) -> None:
    ns = backend.open_namespace(NS)
    backend.write_sysctl(ns, "net/ipv6/conf/lo/disable_ipv6", 1)
    result = LoopbackPlugin(backend).add(_request("ADD", {"cniVersion": "1.1.0", "name": "lo"}))
    assert [str(ip.address) for ip in result.ips] == ["127.0.0.1/8"]


def test_legacy_nameless_config_answers_in_the_010_shape(backend: FakeLinkBackend) -> None:
    code, out = _exec(LoopbackPlugin(backend), "ADD", b'{"type": "loopback"}')
    assert code == 0
    assert json.loads(out) == {"cniVersion": "0.1.0", "ip4": {"ip": "127.0.0.1/8"}, "ip6": {"ip": "::1/128"},
                               "dns": {}}


def test_nameless_config_with_a_version_is_refused_as_the_reference_does(backend: FakeLinkBackend) -> None:
    code, out = _exec(LoopbackPlugin(backend), "ADD", b'{"type": "loopback", "cniVersion": "0.4.0"}')
    assert code == 1
    assert json.loads(out) == {"code": 7, "msg": "missing network name"}
    assert not backend.get_link(backend.open_namespace(NS), "lo").admin_up


def test_non_loopback_address_is_refused(backend: FakeLinkBackend) -> None:
    ns = backend.open_namespace(NS)
    backend.set_link_up(ns, "lo", True)
    backend.add_address(ns, "lo", Address.parse("10.9.9.9/32"))
    with pytest.raises(InternalError, match=r'loopback interface found with non-loopback address "10\.9\.9\.9"'):
        LoopbackPlugin(backend).add(_request("ADD", {"cniVersion": "1.0.0", "name": "lo"}))
    code, out = _exec(LoopbackPlugin(backend), "ADD", {"cniVersion": "1.0.0", "name": "lo"})
    assert (code, json.loads(out)["code"]) == (1, 999)


def test_prev_result_is_passed_through(backend: FakeLinkBackend) -> None:
    prev = {"cniVersion": "0.4.0", "interfaces": [{"name": "eth0", "sandbox": NS}],
            "ips": [{"version": "4", "address": "10.1.2.3/24", "interface": 0}], "dns": {}}
    code, out = _exec(LoopbackPlugin(backend), "ADD", {"cniVersion": "0.4.0", "name": "lo", "prevResult": prev})
    assert code == 0
    assert json.loads(out) == prev


def test_del_sets_lo_down_and_is_repeatable(backend: FakeLinkBackend) -> None:
    plugin = LoopbackPlugin(backend)
    config = {"cniVersion": "1.0.0", "name": "lo"}
    plugin.add(_request("ADD", config))
    plugin.delete(_request("DEL", config))
    plugin.delete(_request("DEL", config))
    assert not backend.get_link(backend.open_namespace(NS), "lo").admin_up
    plugin.delete(_request("DEL", config, netns=""))
    plugin.delete(_request("DEL", config, netns="/var/run/netns/cnt-gone"))


def test_check_fails_when_lo_is_down(backend: FakeLinkBackend) -> None:
    plugin = LoopbackPlugin(backend)
    config = {"cniVersion": "1.0.0", "name": "lo"}
    with pytest.raises(InternalError, match=r"^loopback interface is down$"):
        plugin.check(_request("CHECK", config))
    plugin.add(_request("ADD", config))
    plugin.check(_request("CHECK", config))


def test_add_in_a_missing_namespace_fails(backend: FakeLinkBackend) -> None:
    with pytest.raises(NamespaceNotFoundError):
        LoopbackPlugin(backend).add(_request("ADD", {"cniVersion": "1.0.0", "name": "lo"},
                                             netns="/var/run/netns/cnt-gone"))
