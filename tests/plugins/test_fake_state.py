"""The persisted fake kernel (``CNICORE_FAKE_STATE``): JSON data only, and only a file of this user's.

Executed plugins may run as root on the fake: the file they load must never be able to run code (it is data,
rebuilt through the model's validators), and a file somebody else can write is refused before it is read.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import run_exec

from cnicore import IOFailureError
from cnicore._plugin_main import FakeState
from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.links import Address, BridgeSpec, Route

NS = "/var/run/netns/cnt-fake-state"
BRIDGE = {"cniVersion": "1.0.0", "name": "fsnet", "type": "bridge", "bridge": "fsbr0", "isGateway": True,
          "ipMasq": True, "ipam": {"type": "host-local", "subnet": "10.29.0.0/24"}}


def _populated() -> tuple[FakeLinkBackend, FakeFirewall]:
    backend, firewall = FakeLinkBackend(), FakeFirewall()
    ns = backend.add_namespace(NS)
    host = backend.host_namespace()
    backend.ensure_bridge(host, BridgeSpec(name="fsbr0"))
    backend.create_veth(ns, "eth0", host)
    backend.add_address(ns, "eth0", Address.parse("10.29.0.2/24"))
    backend.add_address(ns, "eth0", Address.parse("2001:db8::2/64"))
    backend.set_link_up(ns, "eth0")
    backend.set_link_up(ns, "lo")
    backend.add_route(ns, Route(dst="10.30.0.0/16", gateway="10.29.0.1"))
    backend.write_sysctl(host, "net/ipv4/ip_forward", "1")
    backend.set_master(host, backend.list_links(host)[-1].name, "fsbr0")
    return backend, firewall


def test_the_model_round_trips_through_json_data() -> None:
    backend, firewall = _populated()
    import netaddr

    firewall.setup_masquerades([netaddr.IPNetwork("10.29.0.2/24")], "fsnet", "c1")
    firewall.nftables().setup_masquerades([netaddr.IPNetwork("10.29.0.3/24")], "fsnet", "c2")
    from cnicore.links._rules import RuleEdit, RuleOp

    firewall.edit_rules([RuleEdit(version=4, table="filter", chains=("CNI-FORWARD",),
                                  ops=(RuleOp(op="append", chain="FORWARD", rule=("-j", "CNI-FORWARD")),))])
    links, rules = backend.export_state(), firewall.export_state()
    text = json.dumps({"links": links, "firewall": rules})
    again = json.loads(text)
    backend2 = FakeLinkBackend.import_state(again["links"])
    firewall2 = FakeFirewall.import_state(again["firewall"])
    assert backend2.export_state() == links and firewall2.export_state() == rules
    ns = backend2.open_namespace(NS)
    assert [str(a) for a in backend2.list_addresses(ns, "eth0")] == ["10.29.0.2/24", "2001:db8::2/64"]
    assert backend2.list_routes(ns) == backend.list_routes(backend.open_namespace(NS))
    assert firewall2.list_rules(4) == firewall.list_rules(4)
    assert firewall2.list_rules(4, "filter") == firewall.list_rules(4, "filter")
    assert "-A FORWARD -j CNI-FORWARD" in firewall2.list_rules(4, "filter")
    # The rebuilt model behaves as the original: deleting the container end takes the host end along.
    backend2.delete_link(ns, "eth0")
    assert [link.name for link in backend2.list_links(backend2.host_namespace())] == ["lo", "fsbr0"]


@pytest.mark.parametrize("damage", [
    lambda d: d["links"]["namespaces"][0]["links"][0].update(mtu="1500"),
    lambda d: d["links"]["namespaces"][0]["links"][0].update(addresses=["not an address"]),
    lambda d: d["links"]["namespaces"][0].update(routes=[{"dst": "10.0.0.0/8"}]),
    lambda d: d["links"].update(format="other"),
    lambda d: d["firewall"]["chains"].update({"4": {"POSTROUTING": [1]}}),
    lambda d: d.pop("firewall"),
])
def test_damaged_state_is_refused_as_an_error(tmp_path: Path, damage: Any) -> None:
    path = tmp_path / "kernel.state"
    with FakeState(str(path)) as state:
        state.backend, state.firewall = _populated()
    document = json.loads(path.read_bytes())
    damage(document)
    path.write_text(json.dumps(document))
    with pytest.raises(IOFailureError, match="not a fake kernel's state"), FakeState(str(path)):
        pass


class _Payload:
    """Unpickling this runs code: it touches a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _refused(outcome: Any) -> dict[str, Any]:
    assert outcome.returncode == 1 and "Traceback" not in outcome.stderr, outcome
    error = json.loads(outcome.stdout)  # one error object
    assert error["code"] == 5 and "fake kernel state" in error["msg"], error
    return error  # type: ignore[no-any-return]


def test_a_pickle_is_never_loaded(tmp_path: Path, plugin_bin: Path) -> None:
    state = tmp_path / "kernel.state"
    marker = tmp_path / "code-ran"
    state.write_bytes(pickle.dumps(_Payload(marker)))
    state.chmod(0o600)
    env = {"CNICORE_BACKEND": "fake", "CNICORE_FAKE_STATE": str(state)}
    _refused(run_exec(plugin_bin / "bridge", "ADD", BRIDGE, netns=NS, path=[plugin_bin], extra_env=env))
    assert not marker.exists()
    with pytest.raises(IOFailureError, match="not a fake kernel's state"), FakeState(str(state)):
        pass
    assert not marker.exists()


@pytest.mark.parametrize("how", ["group-writable", "world-writable", "foreign-owner", "open-directory",
                                 "fifo", "symlink"])
def test_a_state_file_others_can_write_is_refused(tmp_path: Path, plugin_bin: Path, how: str) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    state = folder / "kernel.state"
    with FakeState(str(state)) as kernel:
        kernel.backend.add_namespace(NS)
    before = state.read_bytes()
    if how == "group-writable":
        state.chmod(0o620)
    elif how == "world-writable":
        state.chmod(0o602)
    elif how == "foreign-owner":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the file to another user")
        os.chown(state, 65534, 65534)
    elif how == "open-directory":
        folder.chmod(0o777)  # anyone may replace the file (not sticky)
    elif how == "fifo":
        state.unlink()
        os.mkfifo(state, 0o600)
    else:
        target = tmp_path / "elsewhere"
        target.write_bytes(before)
        state.unlink()
        state.symlink_to(target)
    env = {"CNICORE_BACKEND": "fake", "CNICORE_FAKE_STATE": str(state)}
    _refused(run_exec(plugin_bin / "loopback", "ADD", {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"},
                      netns=NS, path=[plugin_bin], extra_env=env))
    with pytest.raises(IOFailureError, match="fake kernel state"), FakeState(str(state)):
        pass
    if how not in ("fifo", "symlink"):
        assert state.read_bytes() == before  # refused, not rewritten


def test_a_sticky_shared_directory_is_fine(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)  # as /tmp: others cannot replace what this user made there
    with FakeState(str(folder / "kernel.state")) as kernel:
        kernel.backend.add_namespace(NS)
    with FakeState(str(folder / "kernel.state")) as kernel:
        assert kernel.backend.namespaces() == (NS,)


def test_every_part_of_the_model_is_persisted() -> None:
    # A field added to the model but not to its JSON form would be lost between execs: pin the field lists.
    import dataclasses

    from cnicore.backends import _fake

    backend, firewall = _populated()
    exported = backend.export_state()
    namespace = exported["namespaces"][0]
    assert set(namespace) == {f.name for f in dataclasses.fields(_fake._FakeNamespace)}
    assert set(namespace["links"][0]) == {f.name for f in dataclasses.fields(_fake._FakeLink)}
    assert set(vars(backend)) == {"_lock", "_namespaces", "_peer_names"}  # (peer names: a test's seam only)
    assert set(vars(firewall)) == {"_iptables_available", "_lock", "_chains", "_tables", "_nft"}
    assert set(vars(firewall.nftables())) == {"_lock", "_last_handle", "_masq", "_bridge_chains",
                                              "_bridge_chain_handles"}
    assert set(firewall.export_state()["nft"]) == {"last_handle", "masq", "bridge_chains", "bridge_chain_handles"}
