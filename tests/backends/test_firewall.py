"""The masquerade firewall: the reference's chain names and rules, real and fake alike.

Real iptables runs inside a throwaway namespace (through nsenter), so no rule
ever lands in the machine's own tables. The reference bridge plugin, run with
ipMasq in throwaway namespaces, gives the rules we must reproduce byte for byte.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator

import netaddr
import pytest
from backends_support import Namespaces
from hypothesis import given
from hypothesis import strategies as st
from support import reference_plugin, require_tool

from cnicore._errors import InternalError
from cnicore.backends import FakeFirewall, IptablesFirewall
from cnicore.links import Firewall, Namespace, NftFirewall, masquerade_chain_name, masquerade_comment, masquerade_plan


@pytest.mark.parametrize(("network", "container", "prefix", "expected"), [
    ("test", "1234", "", "CNI-2bbe0c48b91a7d1b8a6753a8"),
    ("testalongnamethatdoesnotmakesense", "1234", "", "CNI-374f33fe84ab0ed84dcdebe3"),
    ("test", "1234", "PREFIX-", "CNI-PREFIX-2bbe0c48b91a7d1b8"),
    ("mynet", "dummy", "", "CNI-1b29d9511ed2bb3134d925d5"),
    ("mynet", "dummy", "DN-", "CNI-DN-1b29d9511ed2bb3134d92"),
])
def test_chain_name_vectors(network: str, container: str, prefix: str, expected: str) -> None:
    assert masquerade_chain_name(network, container, prefix) == expected


def test_plan_is_the_reference_layout() -> None:
    plan = masquerade_plan(netaddr.IPNetwork("10.1.2.2/24"), "mynet", "dummy")
    comment = 'name: "mynet" id: "dummy"'
    assert plan.comment == comment == masquerade_comment("mynet", "dummy")
    tag = ("-m", "comment", "--comment", comment)
    assert plan.chain_rules == (
        ("-d", "10.1.2.2/24", "-j", "ACCEPT", *tag),
        ("!", "-d", "224.0.0.0/4", "-j", "MASQUERADE", *tag),
    )
    assert plan.jump_rule == ("-s", "10.1.2.2", "-j", "CNI-1b29d9511ed2bb3134d925d5", *tag)
    assert plan.legacy_jump_rule == ("-s", "10.1.2.2/24", "-j", "CNI-1b29d9511ed2bb3134d925d5", *tag)
    v6 = masquerade_plan(netaddr.IPNetwork("2001:db8::2/64"), "mynet", "dummy")
    assert v6.version == 6 and v6.chain_rules[1][:3] == ("!", "-d", "ff00::/8")


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_chain_names_are_28_characters(network: str, container: str) -> None:
    name = masquerade_chain_name(network, container)
    assert len(name) == 28 and name.startswith("CNI-") and all(c in "0123456789abcdef" for c in name[4:])


def test_fake_firewall_setup_is_idempotent_and_teardown_complete() -> None:
    fw = FakeFirewall()
    assert isinstance(fw, Firewall)
    empty = fw.list_rules(4)
    address = netaddr.IPNetwork("10.1.2.2/24")
    fw.setup_masquerade(address, "mynet", "dummy")
    once = fw.list_rules(4)
    fw.setup_masquerade(address, "mynet", "dummy")
    assert fw.list_rules(4) == once
    assert "-N CNI-1b29d9511ed2bb3134d925d5" in once
    assert ('-A POSTROUTING -s 10.1.2.2/32 -m comment --comment "name: \\"mynet\\" id: \\"dummy\\"" '
            '-j CNI-1b29d9511ed2bb3134d925d5') in once
    fw.teardown_masquerade(address, "mynet", "dummy")
    fw.teardown_masquerade(address, "mynet", "dummy")
    assert fw.list_rules(4) == empty


@pytest.fixture
def firewall_ns() -> Iterator[Namespace]:
    """A throwaway namespace for real iptables rules."""
    if os.geteuid() != 0:
        pytest.skip("needs root (iptables in a throwaway namespace)")
    require_tool("iptables")
    require_tool("nsenter")
    spaces = Namespaces()
    try:
        yield Namespace(path=spaces.add())
    finally:
        spaces.cleanup()


ADDRESSES = [
    ("10.1.2.2/24", "mynet", "dummy"),
    ("10.1.2.3/24", "mynet", "other"),
    ("2001:db8::2/64", "mynet", "dummy"),
    ("192.168.7.9/16", 'we"ird', "c-1"),
]


@pytest.mark.root
def test_iptables_agrees_with_the_fake(firewall_ns: Namespace) -> None:
    real = IptablesFirewall(namespace=firewall_ns)
    fake = FakeFirewall()
    baseline = {v: set(real.list_rules(v)) for v in (4, 6)}
    for text, net, cid in ADDRESSES:
        for fw in (real, fake):
            fw.setup_masquerade(netaddr.IPNetwork(text), net, cid)
            fw.setup_masquerade(netaddr.IPNetwork(text), net, cid)  # idempotent
    for version in (4, 6):
        assert set(real.list_rules(version)) == set(fake.list_rules(version))
        assert len(real.list_rules(version)) == len(fake.list_rules(version))
    for text, net, cid in ADDRESSES[:1] + ADDRESSES[2:]:
        for fw in (real, fake):
            fw.teardown_masquerade(netaddr.IPNetwork(text), net, cid)
            fw.teardown_masquerade(netaddr.IPNetwork(text), net, cid)  # idempotent
    # "mynet"/"other" stays: tearing down one attachment leaves the others alone.
    assert set(real.list_rules(4)) == set(fake.list_rules(4))
    assert masquerade_chain_name("mynet", "other") in " ".join(real.list_rules(4))
    real.teardown_masquerade(netaddr.IPNetwork("10.1.2.3/24"), "mynet", "other")
    assert {v: set(real.list_rules(v)) for v in (4, 6)} == baseline


@pytest.mark.root
def test_teardown_removes_the_legacy_jump(firewall_ns: Namespace) -> None:
    real = IptablesFirewall(namespace=firewall_ns)
    baseline = real.list_rules(4)
    plan = masquerade_plan(netaddr.IPNetwork("10.1.2.2/24"), "mynet", "dummy")
    real.setup_masquerade(netaddr.IPNetwork("10.1.2.2/24"), "mynet", "dummy")
    # What plugins before v0.7 wrote: the jump with the whole prefix.
    subprocess.run(["nsenter", f"--net={firewall_ns.path}", "--", "iptables", "-w", "-t", "nat", "-A",
                    "POSTROUTING", *plan.legacy_jump_rule], check=True)
    real.teardown_masquerade(netaddr.IPNetwork("10.1.2.2/24"), "mynet", "dummy")
    assert real.list_rules(4) == baseline


@pytest.mark.root
@pytest.mark.reference
def test_same_rules_as_the_reference_bridge_plugin(firewall_ns: Namespace) -> None:
    """The reference bridge plugin's ipMasq rules equal ours; we can tear its rules down."""
    bridge = reference_plugin("bridge")
    reference_plugin("host-local")
    spaces = Namespaces()
    try:
        container = spaces.add()
        with tempfile.TemporaryDirectory(prefix="cnt-ipam-") as data_dir:
            conf = json.dumps({
                "cniVersion": "1.0.0", "name": "mynet", "type": "bridge", "bridge": "cnt-" + secrets.token_hex(4),
                "isGateway": True, "ipMasq": True,
                "ipam": {"type": "host-local", "subnet": "10.23.0.0/24", "dataDir": data_dir},
            })

            def run(command: str) -> dict[str, object]:
                env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "dummy", "CNI_NETNS": container,
                       "CNI_IFNAME": "eth0", "CNI_PATH": str(bridge.parent), "PATH": os.environ.get("PATH", "")}
                done = subprocess.run(["nsenter", f"--net={firewall_ns.path}", "--", str(bridge)], input=conf,
                                      env=env, capture_output=True, text=True, check=False)
                assert done.returncode == 0, done.stdout + done.stderr
                return json.loads(done.stdout) if done.stdout.strip() else {}

            ours = IptablesFirewall(namespace=firewall_ns)
            baseline = ours.list_rules(4)
            result = run("ADD")
            ips = result["ips"]
            assert isinstance(ips, list)
            address = netaddr.IPNetwork(ips[0]["address"])
            reference_rules = ours.list_rules(4)
            assert reference_rules != baseline
            # Our teardown removes the reference's rules...
            ours.teardown_masquerade(address, "mynet", "dummy")
            assert ours.list_rules(4) == baseline
            # ...and our setup writes exactly what the reference wrote.
            ours.setup_masquerade(address, "mynet", "dummy")
            assert ours.list_rules(4) == reference_rules
            fake = FakeFirewall()
            fake.setup_masquerade(address, "mynet", "dummy")
            assert set(fake.list_rules(4)) == set(reference_rules)
            # The reference DEL tears down what we set up.
            run("DEL")
            assert ours.list_rules(4) == baseline
    finally:
        spaces.cleanup()


@pytest.mark.root
def test_one_attachment_with_several_addresses_shares_its_chain(firewall_ns: Namespace) -> None:
    real = IptablesFirewall(namespace=firewall_ns)
    fake = FakeFirewall()
    baseline = {v: real.list_rules(v) for v in (4, 6)}
    addresses = [netaddr.IPNetwork(a) for a in ("10.1.2.2/24", "10.1.3.2/24", "2001:db8::2/64")]
    for fw in (real, fake):
        fw.setup_masquerades(addresses[:1], "mynet", "c1")
        # A later setup of more addresses adds to the chain: the restore never re-declares (flushes) it.
        fw.setup_masquerades(addresses, "mynet", "c1")
        fw.setup_masquerades(addresses, "mynet", "c1")
    for version in (4, 6):
        assert sorted(real.list_rules(version)) == sorted(fake.list_rules(version))
    chain = masquerade_chain_name("mynet", "c1")
    assert [r for r in real.list_rules(4) if r.startswith(f"-A {chain} ")] == [
        f'-A {chain} -d 10.1.2.0/24 -m comment --comment "name: \\"mynet\\" id: \\"c1\\"" -j ACCEPT',
        f'-A {chain} ! -d 224.0.0.0/4 -m comment --comment "name: \\"mynet\\" id: \\"c1\\"" -j MASQUERADE',
        f'-A {chain} -d 10.1.3.0/24 -m comment --comment "name: \\"mynet\\" id: \\"c1\\"" -j ACCEPT',
    ]
    for fw in (real, fake):
        fw.teardown_masquerades(addresses, "mynet", "c1")
        fw.teardown_masquerades(addresses, "mynet", "c1")
    assert {v: real.list_rules(v) for v in (4, 6)} == baseline


@pytest.mark.root
def test_setup_and_teardown_run_two_processes_per_family(firewall_ns: Namespace,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from cnicore.backends import _tools

    real_spawn = _tools._spawn
    ran: list[str] = []

    def spawn(argv: list[str], data: bytes, timeout: float) -> _tools.ToolRun:
        ran.append(os.path.basename(argv[3]))  # nsenter --net=PATH -- TOOL ...
        return real_spawn(argv, data, timeout)

    monkeypatch.setattr(_tools, "_spawn", spawn)
    fw = IptablesFirewall(namespace=firewall_ns)
    address = netaddr.IPNetwork("10.1.2.2/24")
    fw.setup_masquerades([address], "mynet", "c1")
    assert ran == ["iptables-save", "iptables-restore"]
    ran.clear()
    fw.setup_masquerades([address], "mynet", "c1")  # all there: nothing to restore
    assert ran == ["iptables-save"]
    ran.clear()
    fw.teardown_masquerades([address], "mynet", "c1")
    assert ran == ["iptables-save", "iptables-restore"]


@pytest.mark.root
def test_a_refused_teardown_changes_nothing(firewall_ns: Namespace) -> None:
    """The restore is one transaction: a chain still jumped to cannot go, and then nothing goes."""
    fw = IptablesFirewall(namespace=firewall_ns)
    one, two = netaddr.IPNetwork("10.1.2.2/24"), netaddr.IPNetwork("10.1.3.2/24")
    fw.setup_masquerades([one, two], "mynet", "c1")
    before = fw.list_rules(4)
    with pytest.raises(InternalError, match="iptables-restore"):
        fw.teardown_masquerades([one], "mynet", "c1")  # two's jump still uses the chain
    assert fw.list_rules(4) == before
    fw.teardown_masquerades([one, two], "mynet", "c1")
    assert not [r for r in fw.list_rules(4) if "mynet" in r]


def test_the_iptables_firewall_offers_its_nftables_side() -> None:
    fw = IptablesFirewall(namespace=Namespace(path="/var/run/netns/cnt-none"), nsenter="/usr/bin/nsenter")
    nft = fw.nftables()
    assert isinstance(nft, NftFirewall) and nft.name == "nftables"
    fake = FakeFirewall()
    assert fake.nftables() is fake.nftables() and isinstance(fake.nftables(), NftFirewall)


@pytest.mark.root
def test_rule_edits_agree_with_the_fake(firewall_ns: Namespace) -> None:
    from cnicore.links import RuleEdit, RuleOp, firewall_add_edits, firewall_del_edits, isolation_edits

    real = IptablesFirewall(namespace=firewall_ns)
    fake = FakeFirewall()
    addresses = {4: ["10.1.2.3/32", "10.1.2.4/32"], 6: ["2001:db8::3/128"]}
    steps = [
        firewall_add_edits(addresses, "CNI-ADMIN"),
        firewall_add_edits(addresses, "CNI-ADMIN"),  # everything there already: nothing added twice
        isolation_edits("cnt-br0", [4, 4, 6]),
        [RuleEdit(version=4, table="nat", chains=("CNT-X",),
                  ops=(RuleOp("append", "CNT-X", ("-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination",
                                                  "10.1.2.3:8080")),))],
        firewall_del_edits({4: ["10.1.2.3/32"], 6: ["2001:db8::3/128"]}),
        firewall_del_edits({4: ["10.1.2.3/32"]}),  # deleting what is gone does nothing
    ]
    for edits in steps:
        for fw in (real, fake):
            fw.edit_rules(edits)
        for version, table in ((4, "filter"), (6, "filter"), (4, "nat")):
            ours, theirs = fake.table_rules(version, table), real.table_rules(version, table)
            assert {c: r for c, r in theirs.items() if r or c in ours} == {c: r for c, r in ours.items()
                                                                         if r or c in theirs}
    forward = real.table_rules(4, "filter")
    assert forward["FORWARD"][:2] == (
        '-A FORWARD -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" '
        "-j CNI-ISOLATION-STAGE-1",
        '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD')
    assert forward["CNI-FORWARD"] == (
        '-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN',
        "-A CNI-FORWARD -d 10.1.2.4/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A CNI-FORWARD -s 10.1.2.4/32 -j ACCEPT")
    assert real.table_rules(4, "nat")["CNT-X"] == (
        "-A CNT-X -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.2.3:8080",)
