"""The nftables masquerade layout: the reference's hashes, comments and per-attachment rules.

The installed reference plugins (1.1.1) predate ``ipMasqBackend: nftables``, so the
vectors here are the ones the reference's own unit test pins (hashes, comments,
rule text); the rules are applied to a throwaway namespace's real nftables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import netaddr
import pytest
from backends_support import Namespaces
from support import require_tool

from cnicore.backends import FakeFirewall, NftablesFirewall
from cnicore.links import (
    Firewall,
    Namespace,
    NftFirewall,
    nft_instance_hash,
    nft_masquerade_comment,
    nft_masquerade_rule,
    spoof_check_plan,
)

CONTAINERS = [
    ("unit-test", "eth0", "one", "192.168.1.1/24", "6fd94d501e58f0aa-287fc69eff0574a2"),
    ("unit-test", "eth0", "two", "192.168.1.2/24", "6fd94d501e58f0aa-d750b2c8f0f25d5f"),
    ("unit-test", "eth0", "three", "192.168.99.5/24", "6fd94d501e58f0aa-a4d4adb82b669cfe"),
    ("alternate", "net1", "three", "10.0.0.5/24", "82783ef24bdc7036-acb19d111858e348"),
]


@pytest.mark.parametrize(("net", "ifname", "cid", "addr", "expected"), CONTAINERS)
def test_hash_and_comment_vectors(net: str, ifname: str, cid: str, addr: str, expected: str) -> None:
    assert nft_instance_hash(net, ifname, cid) == expected
    assert nft_masquerade_comment(net, ifname, cid) == f"{expected}, net: {net}, if: {ifname}, id: {cid}"


def test_rule_text_and_comment_limits() -> None:
    assert nft_masquerade_rule(netaddr.IPNetwork("192.168.1.1/24")) == (
        "ip saddr == 192.168.1.1 ip daddr != 192.168.1.0/24 masquerade")
    assert nft_masquerade_rule(netaddr.IPNetwork("2001:db8::5/64")) == (
        "ip6 saddr == 2001:db8::5 ip6 daddr != 2001:db8::/64 masquerade")
    long = nft_masquerade_comment("n" * 200, "eth0", 'a"b')
    assert len(long) == 128 and '"' not in long


@pytest.fixture
def nft_ns() -> Iterator[Namespace]:
    if os.geteuid() != 0:
        pytest.skip("needs root (nftables in a throwaway namespace)")
    require_tool("nft")
    require_tool("nsenter")
    spaces = Namespaces()
    try:
        yield Namespace(path=spaces.add())
    finally:
        spaces.cleanup()


@pytest.mark.root
def test_setup_and_teardown_in_a_namespace(nft_ns: Namespace) -> None:
    fw = NftablesFirewall(namespace=nft_ns)
    assert isinstance(fw, Firewall)
    assert fw.list_table() == ""
    for net, ifname, cid, addr, _ in CONTAINERS:
        fw.setup_masquerade(netaddr.IPNetwork(addr), net, cid, ifname=ifname)
    fw.setup_masquerade(netaddr.IPNetwork("192.168.1.2/24"), "unit-test", "two", ifname="eth0")  # idempotent
    comments = [nft_masquerade_comment(net, ifname, cid) for net, ifname, cid, _, _ in CONTAINERS]
    assert sorted(fw.list_rules()) == sorted(comments)
    table = fw.list_table()
    assert "type nat hook postrouting priority srcnat" in table
    assert "ip daddr 224.0.0.0/4 return" in table and "ip6 daddr ff00::/8 return" in table
    assert "goto masq_checks" in table
    assert 'ip saddr 10.0.0.5 ip daddr != 10.0.0.0/24 masquerade comment "82783ef24bdc7036-acb19d111858e348' in table
    # A new container reusing "one"'s address; tearing "one" down leaves "four"'s rule.
    fw.setup_masquerade(netaddr.IPNetwork("192.168.1.1/24"), "unit-test", "four", ifname="eth0")
    fw.teardown_masquerade(netaddr.IPNetwork("192.168.1.1/24"), "unit-test", "one", ifname="eth0")
    fw.teardown_masquerade(netaddr.IPNetwork("192.168.1.1/24"), "unit-test", "one", ifname="eth0")
    remaining = fw.list_rules()
    assert nft_masquerade_comment("unit-test", "eth0", "four") in remaining
    assert comments[0] not in remaining and len(remaining) == 4
    assert fw.list_table().count("goto masq_checks") == 1


@pytest.mark.root
def test_an_attachments_addresses_go_together_and_replace_stale_ones(nft_ns: Namespace) -> None:
    fw, fake = NftablesFirewall(namespace=nft_ns), FakeFirewall().nftables()
    v4, v6 = netaddr.IPNetwork("10.1.2.2/24"), netaddr.IPNetwork("2001:db8::2/64")
    comment = nft_masquerade_comment("net", "eth0", "c1")
    for firewall in (fw, fake):
        firewall.setup_masquerades([v4, v6], "net", "c1", ifname="eth0")
    assert fw.list_rules() == fake.list_rules() == (comment, comment)
    table = fw.list_table()
    assert "ip saddr 10.1.2.2 ip daddr != 10.1.2.0/24 masquerade" in table
    assert "ip6 saddr 2001:db8::2 ip6 daddr != 2001:db8::/64 masquerade" in table
    # A new ADD of the same attachment (after a crash, say) replaces what the last one left.
    moved = netaddr.IPNetwork("10.1.2.7/24")
    for firewall in (fw, fake):
        firewall.setup_masquerades([moved], "net", "c1", ifname="eth0")
    assert fw.list_rules() == fake.list_rules() == (comment,)
    assert "ip saddr 10.1.2.7 " in fw.list_table() and "10.1.2.2" not in fw.list_table()
    assert [text for _comment, text in fake.masquerade_rules()] == [nft_masquerade_rule(moved)]
    for firewall in (fw, fake):
        firewall.teardown_masquerades([], "net", "c1", ifname="eth0")  # by the hash: no address needed
    assert fw.list_rules() == fake.list_rules() == ()


def _normal(items: list[dict[str, Any]]) -> list[Any]:
    """``nft -j list`` objects without handles (numbered differently by the kernel and the fake)."""
    out: list[Any] = []
    for item in items:
        for kind, value in item.items():
            if kind in ("table", "chain", "rule"):
                out.append((kind, {k: v for k, v in value.items() if k != "handle"}))
    return out


@pytest.mark.root
def test_spoof_check_agrees_with_the_fake(nft_ns: Namespace) -> None:
    fw, fake = NftablesFirewall(namespace=nft_ns), FakeFirewall().nftables()
    assert isinstance(fw, NftFirewall) and fw.list_spoof_check() == []
    for firewall in (fw, fake):
        firewall.teardown_mac_spoof_check("nothing-eth0")  # nothing there: fine
        firewall.setup_mac_spoof_check("veth0a0b0c0d", "0a:58:0a:00:00:02", "c1-eth0")
        firewall.setup_mac_spoof_check('we"ird-if', "0a:58:0a:00:00:03", "c.2_x-net1")
        # Again for c1, with a new veth and MAC (an ADD after a crash): replaced, not duplicated.
        firewall.setup_mac_spoof_check("veth0a0b0c0e", "0a:58:0a:00:00:04", "c1-eth0")
    real = _normal(fw.list_spoof_check())
    assert real == _normal(fake.list_spoof_check())
    base = [value for kind, value in real if kind == "rule" and value["chain"] == "PREROUTING"]
    assert [rule["expr"][0]["match"]["right"] for rule in base] == ['we"ird-if', "veth0a0b0c0e"]
    mac_rules = [value for kind, value in real if kind == "rule" and value["chain"] == "cni-br-iface-c1-eth0-mac"]
    assert [rule["expr"] for rule in mac_rules] == [list(r.expr) for r in spoof_check_plan(
        "veth0a0b0c0e", "0a:58:0a:00:00:04", "c1-eth0").rules[2:]]
    for firewall in (fw, fake):
        firewall.teardown_mac_spoof_check("c1-eth0")
        firewall.teardown_mac_spoof_check("c1-eth0")
    left = _normal(fw.list_spoof_check())
    assert left == _normal(fake.list_spoof_check())
    assert [value["name"] for kind, value in left if kind == "chain"] == [
        "PREROUTING", "cni-br-iface-c.2_x-net1", "cni-br-iface-c.2_x-net1-mac"]
