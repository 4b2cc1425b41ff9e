"""The bridge engine on plain values (:mod:`cnicore.plugins._bridgecore`): its imports, its decisions on strings.

The typed ``BridgeConfig``/``calc_gateways`` are adapters over these functions; their
own tests (test_bridge*, test_gateways) and the differential ones against the reference
bridge (test_reference) run through here too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore import InvalidConfigError
from cnicore.plugins._bridgecore import (
    decode_bridge_conf,
    global_unicast,
    go_errno_text,
    go_ipnet_value,
    plan_gateways,
)

# What the engine must never pull in: the typed world and the link port.
TYPED = ("attr", "attrs", "netaddr", "typing", "cnicore.links", "cnicore.spec._result", "cnicore.backends",
         "cnicore.plugins._bridge", "cnicore.plugins._api", "subprocess", "socket")


def test_engine_imports_the_standard_library_only() -> None:
    code = ("import sys; before = set(sys.modules); import cnicore.plugins._bridgecore, cnicore._linkplan; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {code}"],
                          capture_output=True, text=True, check=True)
    loaded = done.stdout.split()
    assert "cnicore.plugins._bridgecore" in loaded
    assert [m for m in loaded if any(m == n or m.startswith(n + ".") for n in TYPED)] == []


def _conf(**extra: object) -> dict[str, object]:
    return {"cniVersion": "1.0.0", "name": "n", "type": "bridge", **extra}


def test_decode_defaults_and_values() -> None:
    conf = decode_bridge_conf(_conf())
    assert (conf.bridge, conf.mtu, conf.preserve_default_vlan, conf.vlan_trunk, conf.ipam_type) == (
        "cni0", 0, True, None, "")
    assert conf.dns == {"nameservers": (), "domain": "", "search": (), "options": ()}
    conf = decode_bridge_conf(_conf(BRIDGE="br9", mtu=1400, preserveDefaultVlan=None, ipam={"type": "host-local"},
                                    dns={"nameservers": ["10.0.0.53"], "domain": "d"}),
                              "IgnoreUnknown=1;MAC=0a:58:0a:00:00:07")
    # Keys fold as Go folds them; a null leaves a pre-set bool as it was.
    assert (conf.bridge, conf.mtu, conf.preserve_default_vlan, conf.ipam_type, conf.mac) == (
        "br9", 1400, True, "host-local", "0a:58:0a:00:00:07")
    assert conf.dns["nameservers"] == ("10.0.0.53",)
    assert decode_bridge_conf(_conf(preserveDefaultVlan=False)).preserve_default_vlan is False
    # Go reads an int only from an integer literal: 1400.0 (json.dumps's spelling of the float) is refused.
    with pytest.raises(InvalidConfigError) as info:
        decode_bridge_conf(_conf(mtu=1400.0))
    assert info.value.msg == ("failed to load netconf: json: cannot unmarshal number 1400.0 into Go struct field "
                              "NetConf.mtu of type int")


def test_decode_mac_precedence() -> None:
    conf = decode_bridge_conf(_conf(runtimeConfig={"mac": "0a:58:0a:00:00:09"}, args={"cni": {"mac": "x"}}),
                              "IgnoreUnknown=1;MAC=y")
    assert conf.mac == "0a:58:0a:00:00:09"
    assert decode_bridge_conf(_conf(args={"cni": {"mac": "x"}}), "IgnoreUnknown=1;MAC=y").mac == "x"


@pytest.mark.parametrize(("extra", "msg", "key"), [
    ({"mtu": 1.5}, "cannot unmarshal number 1.5 into Go struct field NetConf.mtu of type int", "mtu"),
    ({"dns": {"nameservers": [1]}}, "cannot unmarshal number into Go struct field DNS.dns.nameservers of type string",
     "dns.nameservers"),
    ({"args": {"cni": {"mac": 5}}},
     "cannot unmarshal number into Go struct field BridgeArgs.args.cni.mac of type string", "args.cni.mac"),
    ({"runtimeConfig": {"mac": 5}}, "cannot unmarshal number into Go struct field .runtimeConfig.mac of type string",
     "runtimeConfig.mac"),
    ({"ipMasqBackend": 3}, "cannot unmarshal number into Go struct field NetConf.ipMasqBackend of type string",
     "ipMasqBackend"),
])
def test_decode_errors_name_key_and_value(extra: dict[str, object], msg: str, key: str) -> None:
    with pytest.raises(InvalidConfigError) as caught:
        decode_bridge_conf(_conf(**extra))
    assert caught.value.msg == "failed to load netconf: json: " + msg
    assert caught.value.key == key


def test_plan_gateways_on_strings() -> None:
    plan = plan_gateways([("10.1.2.3/24", None), ("2001:db8::5/64", "2001:db8::9")], [],
                         is_gateway=True, is_default_gateway=True)
    assert plan.gateways == ["10.1.2.1", "2001:db8::9"]
    assert plan.default_routes == [("0.0.0.0/0", "10.1.2.1"), ("::/0", "2001:db8::9")]
    assert plan.bridge_addresses == {4: ["10.1.2.1/24"], 6: ["2001:db8::9/64"]}
    # A /0 with a gateway is the default already (whatever its host part); one without a gateway is not.
    plan = plan_gateways([("10.1.2.3/24", None)], [("10.9.9.9/0", "10.1.2.254"), ("::/0", None)],
                         is_gateway=True, is_default_gateway=True)
    assert plan.default_routes == []
    plan = plan_gateways([("10.1.2.3/24", None)], [("0.0.0.0/0", None)], is_gateway=False, is_default_gateway=False)
    assert (plan.gateways, plan.default_routes, plan.bridge_addresses) == ([None], [], {4: [], 6: []})


def test_go_texts() -> None:
    assert go_ipnet_value("10.1.2.3/24", synthetic=False) == "{10.1.2.0 ffffff00}"
    assert go_ipnet_value("0.0.0.0/0", synthetic=True) == "{0.0.0.0 00000000000000000000ffff00000000}"
    assert go_ipnet_value("2001:db8::/32", synthetic=True) == "{2001:db8:: ffffffff000000000000000000000000}"
    assert go_errno_text("RTNETLINK answers (File exists)") == "file exists"
    assert go_errno_text("no errno here") == "no errno here"
    assert go_errno_text("nested (a (b))") == "nested (a (b))"
    assert [global_unicast(ip) for ip in ("10.0.0.1", "127.0.0.1", "169.254.1.1", "224.0.0.1", "0.0.0.0",
                                          "255.255.255.255", "2001:db8::1", "fe80::1", "ff02::1", "::", "::1")] == [
        True, False, False, False, False, False, True, False, False, False, False]


def test_masquerade_layouts_on_strings() -> None:
    from cnicore._linkplan import masquerade_rules, nft_masquerade_rule

    rules = masquerade_rules("2001:db8::2/64", "mynet", "dummy")
    assert (rules.version, rules.table, len(rules.chain)) == (6, "nat", 28)
    assert rules.chain_rules[0][:2] == ("-d", "2001:db8::2/64")
    assert rules.chain_rules[1][:3] == ("!", "-d", "ff00::/8")
    assert rules.jump_rule[:4] == ("-s", "2001:db8::2", "-j", rules.chain)
    assert rules.legacy_jump_rule[:2] == ("-s", "2001:db8::2/64")
    assert rules.comment == 'name: "mynet" id: "dummy"'
    assert nft_masquerade_rule("192.168.1.1/24") == "ip saddr == 192.168.1.1 ip daddr != 192.168.1.0/24 masquerade"


_V4 = st.integers(0, 2**32 - 1)
_V6 = st.integers(0, 2**128 - 1).filter(lambda v: v >> 32 != 0xFFFF)  # mapped addresses are Go's IPv4


@given(st.one_of(st.tuples(st.just(4), _V4, st.integers(0, 32)), st.tuples(st.just(6), _V6, st.integers(0, 128))))
def test_address_helpers_agree_with_the_standard_library(case: tuple[int, int, int]) -> None:
    # The engine reads addresses with Go's parser on integers (cnicore.spec._goint); the standard library's
    # ipaddress is the oracle here for what both read the same way (no IPv4-mapped forms, which Go reads as IPv4).
    import ipaddress

    version, value, prefix = case
    interface = (ipaddress.IPv6Interface if version == 6 else ipaddress.IPv4Interface)((value, prefix))
    text = f"{interface.ip}/{prefix}"
    width = 8 if version == 4 else 32
    assert go_ipnet_value(text, synthetic=False) == (f"{{{interface.network.network_address} "
                                                    f"{int(interface.network.netmask):0{width}x}}}")
    ip = interface.ip
    expected = not (ip.is_unspecified or ip.is_loopback or ip.is_multicast or ip.is_link_local
                    or (version == 4 and int(ip) == 0xFFFFFFFF))
    assert global_unicast(str(ip)) is expected
    plan = plan_gateways([(text, None)], [], is_gateway=True, is_default_gateway=False)
    if int(interface.network.network_address) + 1 < 2 ** (32 if version == 4 else 128):
        gateway = interface.network.network_address + 1
        if version == 6 and int(gateway) >> 32 == 0xFFFF:
            return  # Go prints such a gateway as IPv4
        assert plan.gateways == [str(gateway)]
        assert plan.bridge_addresses[version] == [f"{gateway}/{prefix}"]
