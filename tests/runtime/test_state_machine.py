"""A Hypothesis state machine: random attaches, detaches, checks and GCs against a model of what must exist."""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from runtime_helpers import reservations

from cnicore import AlreadyExistsError
from cnicore.backends import FakeFirewall, FakeLinkBackend
from cnicore.runtime import Runtime

CONTAINERS = ("c0", "c1", "c2")
IFNAMES = ("eth0", "eth1", "eth2", "net9")


class RuntimeMachine(RuleBasedStateMachine):
    """The model: the set of (container, ifname) attachments; everything on disk and in the kernel must match it."""

    @initialize()
    def setup(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cnt-runtime-sm-"))
        (self.root / "net.d").mkdir()
        self.data = self.root / "data"
        bridge = {"type": "bridge", "bridge": "cnt-br0", "isGateway": True,
                  "ipam": {"type": "host-local", "subnet": "10.5.0.0/24", "dataDir": str(self.data)}}
        (self.root / "net.d" / "10-sm.conflist").write_text(
            json.dumps({"cniVersion": "1.1.0", "name": "sm", "plugins": [bridge]}))
        self.kernel = FakeLinkBackend()
        for cid in CONTAINERS:
            self.kernel.add_namespace(f"/var/run/netns/{cid}")
        self.runtime = Runtime(config_dir=self.root / "net.d", plugin_path=[str(self.root / "bin")],
                               cache_dir=self.root / "cache", backend=self.kernel, firewall=FakeFirewall())
        self.model: set[tuple[str, str]] = set()

    def teardown(self) -> None:
        if hasattr(self, "runtime"):
            self.runtime.close()
            shutil.rmtree(self.root, ignore_errors=True)

    @rule(cid=st.sampled_from(CONTAINERS))
    def attach_any(self, cid: str) -> None:
        entry = self.runtime.attach_entry(cid, "sm", f"/var/run/netns/{cid}")
        used = {i for c, i in self.model if c == cid}
        expected = next(f"eth{n}" for n in itertools.count() if f"eth{n}" not in used)
        assert entry.ifname == expected
        self.model.add((cid, entry.ifname))

    @rule(cid=st.sampled_from(CONTAINERS), ifname=st.sampled_from(IFNAMES))
    def attach_named(self, cid: str, ifname: str) -> None:
        try:
            self.runtime.attach(cid, "sm", f"/var/run/netns/{cid}", ifname)
        except AlreadyExistsError:
            assert (cid, ifname) in self.model
            return
        assert (cid, ifname) not in self.model
        self.model.add((cid, ifname))

    @rule(cid=st.sampled_from(CONTAINERS), ifname=st.none() | st.sampled_from(IFNAMES))
    def detach(self, cid: str, ifname: str | None) -> None:
        self.runtime.detach(cid, "sm", ifname=ifname)
        self.model -= {(c, i) for c, i in self.model if c == cid and (ifname is None or i == ifname)}

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def check(self, data: st.DataObject) -> None:
        cid, ifname = data.draw(st.sampled_from(sorted(self.model)))
        self.runtime.check(cid, "sm", f"/var/run/netns/{cid}", ifname)

    @rule(live=st.sets(st.sampled_from(CONTAINERS)))
    def gc(self, live: set[str]) -> None:
        report = self.runtime.gc(sorted(live))
        assert report.errors == ()
        removed = {(a.container_id, a.ifname) for a in report.removed}
        assert removed == {(c, i) for c, i in self.model if c not in live}
        self.model -= removed
        assert set(report.valid["sm"]) == self.model

    @invariant()
    def everything_matches_the_model(self) -> None:
        if not hasattr(self, "runtime"):
            return
        cached = {(a.container_id, a.ifname): a for a in self.runtime.attachments(network="sm")}
        assert set(cached) == self.model
        owners = sorted(reservations(self.data, "sm").values())
        assert owners == sorted(f"{c}\r\n{i}" for c, i in self.model)
        for cid in CONTAINERS:
            links = {link.name for link in self.kernel.list_links(self.kernel.open_namespace(f"/var/run/netns/{cid}"))}
            assert links - {"lo"} == {i for c, i in self.model if c == cid}
        veths = [link for link in self.kernel.list_links(self.kernel.host_namespace()) if link.kind == "veth"]
        assert len(veths) == len(self.model)


TestRuntimeMachine = RuntimeMachine.TestCase
