"""Podman's default network (bridge, portmap, firewall, tuning) runs wholly in process on the fake kernel."""

from __future__ import annotations

from pathlib import Path

from runtime_helpers import write_conflist

from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.links import portmap_chain_name
from cnicore.runtime import Runtime

NS = "/var/run/netns/cnt-a"


def test_podman_default_chain_in_process(dirs: dict[str, Path], fake: FakeLinkBackend) -> None:
    plugins = [
        {"type": "bridge", "bridge": "cnt-podman0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
                  "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]], "dataDir": str(dirs["data"])}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "firewall"},
        {"type": "tuning", "dataDir": str(dirs["data"] / "tuning")},
    ]
    write_conflist(dirs["net.d"], "podman", plugins, version="0.4.0")
    firewall = FakeFirewall()
    with Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"])], cache_dir=dirs["cache"], backend=fake,
                 firewall=firewall, timeout=30) as runtime:
        # No plugin of these types on the plugin path: every one runs in process.
        for plugin_type in ("bridge", "portmap", "firewall", "tuning"):
            assert runtime._runner.target(plugin_type).in_process
        result = runtime.attach("c1", "podman", NS, capability_args={
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
        assert [str(ip.address) for ip in result.ips] == ["10.88.0.2/16"]
        chain = portmap_chain_name("podman", "c1")
        assert firewall.table_rules(4, "nat")[chain][-1].endswith("-j DNAT --to-destination 10.88.0.2:80")
        assert "-A CNI-FORWARD -s 10.88.0.2/32 -j ACCEPT" in firewall.table_rules(4, "filter")["CNI-FORWARD"]
        runtime.check("c1", "podman", NS)
        runtime.detach("c1", "podman")
        assert chain not in firewall.table_rules(4, "nat")
        assert "-A CNI-FORWARD -s 10.88.0.2/32 -j ACCEPT" not in firewall.table_rules(4, "filter")["CNI-FORWARD"]
