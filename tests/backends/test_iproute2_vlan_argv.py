"""The iproute2 backend's bridge-port commands, checked by the argv it would run (no kernel needed).

The machine's kernel may lack bridge VLAN filtering, so the commands are
checked here against a recording stand-in for ``subprocess.run`` that answers
the read commands with canned ``-json`` output.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest

from cnicore._errors import InternalError, NotFoundError
from cnicore.backends import _iproute2
from cnicore.links import HOST_NAMESPACE, Namespace, PortVlan

PORT = "vethaaaaaaaa"


class Recorder:
    def __init__(self, vlans: Any, master: str | None = "cnt-br0") -> None:
        self.vlans = vlans
        self.master = master
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append(argv)
        out = ""
        if ("link" in argv or "address" in argv) and "show" in argv and "vlan" not in argv:
            entry: dict[str, Any] = {"ifindex": 7, "ifname": PORT, "flags": ["UP"], "mtu": 1500,
                                     "address": "0a:58:0a:00:00:02", "operstate": "UP",
                                     "linkinfo": {"info_kind": "veth"}}
            if self.master is not None:
                entry["master"] = self.master
                entry["linkinfo"].update(info_slave_kind="bridge", info_slave_data={"hairpin": False})
            out = json.dumps([entry])
        elif "vlan" in argv and "show" in argv:
            out = json.dumps(self.vlans)
        return subprocess.CompletedProcess(argv, 0, out, "")

    def writes(self) -> list[list[str]]:
        return [argv for argv in self.calls if "show" not in argv]


@pytest.fixture
def backend() -> _iproute2.IPRoute2LinkBackend:
    return _iproute2.IPRoute2LinkBackend(ip="/sbin/ip", nsenter="/usr/bin/nsenter")


def install(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> None:
    monkeypatch.setattr(_iproute2.subprocess, "run", recorder)


DEFAULT = [{"ifname": PORT, "vlans": [{"vlan": 1, "flags": ["PVID", "Egress Untagged"]}]}]


def test_set_port_vlans_argv(backend: _iproute2.IPRoute2LinkBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(DEFAULT)
    install(monkeypatch, recorder)
    bridge = backend._bridge
    backend.set_port_vlans(HOST_NAMESPACE, PORT, remove=(1, 7),
                           add=(PortVlan(vid=5, pvid=True, untagged=True), PortVlan(vid=10)))
    # VLAN 7 is not on the port: no command for it (removal of a missing VLAN is not an error).
    assert recorder.writes() == [
        [bridge, "vlan", "del", "dev", PORT, "vid", "1"],
        [bridge, "vlan", "add", "dev", PORT, "vid", "5", "pvid", "untagged"],
        [bridge, "vlan", "add", "dev", PORT, "vid", "10"],
    ]
    assert [bridge, "-json", "vlan", "show", "dev", PORT] in recorder.calls


def test_named_namespace_and_isolation_argv(backend: _iproute2.IPRoute2LinkBackend,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(DEFAULT)
    install(monkeypatch, recorder)
    monkeypatch.setattr(_iproute2.os.path, "exists", lambda _path: True)
    ns = Namespace(path="/var/run/netns/cnt-x")
    backend.set_port_vlans(ns, PORT, add=(PortVlan(vid=3, untagged=True),))
    backend.set_port_isolation(ns, PORT, True)
    backend.set_port_isolation(ns, PORT, False)
    assert recorder.writes() == [
        [backend._bridge, "-n", "cnt-x", "vlan", "add", "dev", PORT, "vid", "3", "untagged"],
        ["/sbin/ip", "-n", "cnt-x", "link", "set", "dev", PORT, "type", "bridge_slave", "isolated", "on"],
        ["/sbin/ip", "-n", "cnt-x", "link", "set", "dev", PORT, "type", "bridge_slave", "isolated", "off"],
    ]


@pytest.mark.parametrize("shape", ["list", "dict"])
def test_list_port_vlans_reads_both_json_shapes_and_ranges(backend: _iproute2.IPRoute2LinkBackend,
                                                           monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    vlans = [{"vlan": 1, "flags": ["PVID", "Egress Untagged"]}, {"vlan": 10, "vlanEnd": 12}]
    data: Any = [{"ifname": "other", "vlans": [{"vlan": 99}]}, {"ifname": PORT, "vlans": vlans}]
    if shape == "dict":
        data = {entry["ifname"]: entry["vlans"] for entry in data}
    install(monkeypatch, Recorder(data))
    assert backend.list_port_vlans(HOST_NAMESPACE, PORT) == (
        PortVlan(vid=1, pvid=True, untagged=True), PortVlan(vid=10), PortVlan(vid=11), PortVlan(vid=12))


def test_bad_output_and_non_ports(backend: _iproute2.IPRoute2LinkBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, Recorder([{"ifname": PORT, "vlans": [{"flags": []}]}]))
    with pytest.raises(InternalError, match="unexpected output of bridge -json"):
        backend.list_port_vlans(HOST_NAMESPACE, PORT)
    recorder = Recorder(DEFAULT, master=None)
    install(monkeypatch, recorder)
    for call in (lambda: backend.set_port_vlans(HOST_NAMESPACE, PORT, remove=(1,)),
                 lambda: backend.set_port_isolation(HOST_NAMESPACE, PORT, True),
                 lambda: backend.list_port_vlans(HOST_NAMESPACE, PORT)):
        with pytest.raises(NotFoundError, match="is not a bridge port"):
            call()
    assert recorder.writes() == []


def test_veth_within_the_host_needs_no_netns_argument(backend: _iproute2.IPRoute2LinkBackend,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(DEFAULT)
    install(monkeypatch, recorder)
    backend._peer_names = lambda: "vethbbbbbbbb"
    backend.create_veth(HOST_NAMESPACE, "cnt-br0.7", HOST_NAMESPACE, mtu=1400)
    assert recorder.writes()[0] == ["/sbin/ip", "link", "add", "name", "cnt-br0.7", "mtu", "1400", "txqueuelen", "0",
                                    "type", "veth", "peer", "name", "vethbbbbbbbb", "txqueuelen", "0", "mtu", "1400"]
    # Into another namespace, the container end is born there (`netns PATH`).
    monkeypatch.setattr(_iproute2.os.path, "exists", lambda _path: True)
    recorder.calls.clear()
    backend.create_veth(Namespace(path="/var/run/netns/cnt-c"), "eth0", HOST_NAMESPACE)
    assert recorder.writes()[0] == ["/sbin/ip", "link", "add", "name", "eth0", "netns", "/var/run/netns/cnt-c",
                                    "txqueuelen", "0", "type", "veth", "peer", "name", "vethbbbbbbbb", "txqueuelen",
                                    "0"]


def test_address_states_from_ip_json(backend: _iproute2.IPRoute2LinkBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = [{"ifindex": 2, "ifname": "eth0", "addr_info": [
        {"family": "inet", "local": "10.1.2.2", "prefixlen": 24},
        {"family": "inet6", "local": "2001:db8::2", "prefixlen": 64, "tentative": True},
        {"family": "inet6", "local": "2001:db8::3", "prefixlen": 64, "tentative": True, "dadfailed": True},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"},
    ]}]
    calls: list[list[str]] = []

    def run(argv: Sequence[str], **_kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, json.dumps(answer), "")

    monkeypatch.setattr(_iproute2.subprocess, "run", run)
    states = backend.list_address_states(HOST_NAMESPACE, "eth0")
    assert calls == [["/sbin/ip", "-json", "address", "show", "dev", "eth0"]]
    assert [(str(s.address), s.tentative, s.dad_failed) for s in states] == [
        ("10.1.2.2/24", False, False), ("2001:db8::2/64", True, False), ("2001:db8::3/64", True, True),
        ("fe80::1/64", False, False)]
