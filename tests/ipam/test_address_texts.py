"""Odd address and CIDR texts in host-local configurations: ours read them as the reference does.

One parser reads every address and CIDR text (:mod:`cnicore.spec._goint`). There
used to be two: the store layer read subnets with the standard library's
``ipaddress`` and the spec layer with Go's rules, and they disagreed where Go's
``net`` package is unusual: an IPv4-mapped IPv6 subnet (``ipaddress`` made it an
IPv6 network to allocate from; Go keeps a 16-byte mask on a 4-byte address, which
``Range.Canonicalize`` refuses), a prefix with many leading zeros (Go's ``dtoi``
takes ``/0000000024``; the spec parser refused it, and ``ipaddress``'s caller
crashed on a few thousand zeros). Each case here runs the reference
host-local, our executed handler and the library on the same configuration:
same success and addresses, or same message (and, through exec, the same code).
The cases marked ``DISAGREED`` are those where the two former parsers answered
differently.

Two texts are read as today's upstream reads them, not as the Debian 1.1.1 build
(Go 1.19.8) does; :func:`test_where_the_debian_build_predates_upstream` pins
both answers.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import support

from cnicore import CNIError
from cnicore.ipam import HostLocalIPAM
from cnicore.plugins._hostlocal import HostLocalExecHandler
from cnicore.plugins._skel import run_exec

pytestmark = pytest.mark.reference

_ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/cni/bin"}
_LONG_ZEROS = "10.9.0.0/" + "0" * 5000 + "24"

# (ipam keys beyond type and dataDir, CNI_ARGS, extra top-level keys)
CASES: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    # subnets
    ({"subnet": "10.9.0.0/24"}, "", {}),
    ({"subnet": "10.9.0.0/024"}, "", {}),
    ({"subnet": "10.9.0.0/0000000024"}, "", {}),  # DISAGREED: Go's dtoi takes any number of leading zeros
    ({"subnet": _LONG_ZEROS}, "", {}),  # DISAGREED: the standard-library path raised ValueError (int digits limit)
    ({"subnet": "::ffff:10.9.0.0/120"}, "", {}),  # DISAGREED: IPv6 net vs IPv4 /24; Go: IP and mask mismatch
    ({"subnet": "::ffff:10.9.0.0/127"}, "", {}),  # DISAGREED: Go counts the 128-bit mask: too small, as /31
    ({"subnet": "::ffff:10.9.0.0/96"}, "", {}),  # DISAGREED
    ({"subnet": "010.9.0.0/24"}, "", {}),
    ({"subnet": " 10.9.0.0/24"}, "", {}),
    ({"subnet": "10.9.0.0/24 "}, "", {}),
    ({"subnet": "10.9.0.0/ 24"}, "", {}),
    ({"subnet": "10.9.0.0/+24"}, "", {}),
    ({"subnet": "10.9.0.0/-24"}, "", {}),
    ({"subnet": "10.9.0.0/33"}, "", {}),
    ({"subnet": "10.9.0.0/\u0662\u0664"}, "", {}),  # Arabic-Indic digits
    ({"subnet": "10.9.0.0/8"}, "", {}),
    ({"subnet": "fe80::%eth0/64"}, "", {}),
    ({"subnet": "FD00:9::/64"}, "", {}),
    ({"subnet": "fd00:9:0:0:0:0:0:0/64"}, "", {}),
    ({"subnet": "10.9.0.0.0/24"}, "", {}),
    ({"subnet": "1.2.3.4/32"}, "", {}),
    # a zero network address: the reference's start is malformed (no address is ever allocated)
    ({"subnet": "0.0.0.0/0"}, "", {}),
    ({"subnet": "::/0"}, "", {}),
    ({"subnet": "0.0.0.0/24"}, "", {}),
    ({"subnet": "::/120"}, "", {}),
    ({"ranges": [[{"subnet": "10.9.0.0/24"}, {"subnet": "0.0.0.0/24"}]]}, "", {}),
    ({"ranges": [[{"subnet": "0.0.0.0/24"}], [{"subnet": "10.9.0.0/24"}]]}, "", {}),
    # range bounds and gateways
    ({"subnet": "10.9.0.0/24", "rangeStart": "::ffff:10.9.0.7"}, "", {}),
    ({"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.07"}, "", {}),
    ({"subnet": "10.9.0.0/24", "rangeStart": " 10.9.0.7"}, "", {}),
    ({"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.7%eth0"}, "", {}),
    ({"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.7/24"}, "", {}),
    ({"subnet": "10.9.0.0/24", "rangeEnd": "::ffff:10.9.0.3"}, "", {}),
    ({"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.9", "rangeEnd": "10.9.0.3"}, "", {}),
    ({"subnet": "10.9.0.0/24", "gateway": "::ffff:10.9.0.9"}, "", {}),
    ({"subnet": "10.9.0.0/24", "gateway": "10.9.0.09"}, "", {}),
    ({"subnet": "10.9.0.0/24", "gateway": "10.9.0.300"}, "", {}),
    ({"subnet": "10.9.0.0/24", "gateway": "fd00::1"}, "", {}),
    ({"subnet": "fd00:9::/64", "rangeStart": "FD00:9::0005"}, "", {}),
    # requested addresses
    ({"subnet": "10.9.0.0/24"}, "IP=10.9.0.05", {}),
    ({"subnet": "10.9.0.0/24"}, "IP=::ffff:10.9.0.5/120", {}),
    ({"subnet": "10.9.0.0/24"}, "IP=::ffff:10.9.0.5", {}),
    ({"subnet": "10.9.0.0/24"}, "IP= 10.9.0.5", {}),
    ({"subnet": "10.9.0.0/24"}, "IP=10.9.0.5/24", {}),
    ({"subnet": "10.9.0.0/24"}, "IP=10.9.0.5/0024", {}),
    ({"subnet": "10.9.0.0/24"}, "IP=10.9.0.5%eth0", {}),
    ({"subnet": "10.9.0.0/24"}, "IP=10.9.0.1", {}),
    ({"subnet": "10.9.0.0/24"}, "", {"args": {"cni": {"ips": ["::ffff:10.9.0.6"]}}}),
    ({"subnet": "10.9.0.0/24"}, "", {"args": {"cni": {"ips": ["10.9.0.006"]}}}),
    ({"subnet": "10.9.0.0/24"}, "", {"runtimeConfig": {"ips": ["10.9.0.8/000024"]}}),
    ({"subnet": "10.9.0.0/24"}, "", {"runtimeConfig": {"ips": ["10.9.0.8 "]}}),
    # routes
    ({"subnet": "10.9.0.0/24", "routes": [{"dst": "::ffff:1.2.3.0/120", "gw": "10.9.0.1"}]}, "", {}),
    ({"subnet": "10.9.0.0/24", "routes": [{"dst": "1.2.3.0/0024"}]}, "", {}),
    ({"subnet": "10.9.0.0/24", "routes": [{"dst": "1.2.3.0/24", "gw": "010.9.0.1"}]}, "", {}),
]


def _config(data_dir: Path, ipam: dict[str, Any], extra: dict[str, Any]) -> bytes:
    return json.dumps({"cniVersion": "1.0.0", "name": "texts",
                       "ipam": {"type": "host-local", "dataDir": str(data_dir), **ipam}, **extra}).encode()


def _outcome(code: int, out: bytes) -> tuple[bool, Any]:
    doc = json.loads(out)
    if code:
        return False, (doc["code"], doc["msg"])
    return True, ([(ip["address"], ip.get("gateway")) for ip in doc["ips"]], doc.get("routes"))


@pytest.mark.parametrize(("ipam", "cni_args", "extra"), CASES,
                         ids=[f"{i}-{json.dumps(c[0])[:40]}-{c[1]}" for i, c in enumerate(CASES)])
def test_odd_texts_are_read_as_the_reference_reads_them(tmp_path: Path, ipam: dict[str, Any], cni_args: str,
                                                        extra: dict[str, Any]) -> None:
    plugin = support.reference_plugin("host-local")
    env = {**_ENV, "CNI_ARGS": cni_args, "CNI_PATH": str(plugin.parent)}
    done = subprocess.run([str(plugin)], input=_config(tmp_path / "go", ipam, extra), env=env, capture_output=True,
                          check=False)
    expected = _outcome(done.returncode, done.stdout)

    out = io.BytesIO()
    handler = HostLocalExecHandler()
    try:
        code = run_exec(handler, environ=env, stdin=io.BytesIO(_config(tmp_path / "exec", ipam, extra)), stdout=out,
                        stderr=io.BytesIO(), reference_codes=True)
    finally:
        handler.close()
    assert _outcome(code, out.getvalue()) == expected

    with HostLocalIPAM() as library:
        try:
            allocation = library.add(_config(tmp_path / "lib", ipam, extra), "c1", "eth0", cni_args)
        except CNIError as exc:
            assert not expected[0] and exc.msg == expected[1][1]
        else:
            assert expected[0]
            assert [(str(ip.address), str(ip.gateway)) for ip in allocation.ips] == expected[1][0]


def test_where_the_debian_build_predates_upstream(tmp_path: Path) -> None:
    # Go 1.19's net.ParseIP took IPv6 groups of more than four hex digits when leading zeros made them up; Go's
    # parser since (netip, which net.ParseIP uses) refuses them: ours follows current Go.
    # The Debian build's ip.NextIP sized its result by the big.Int's bytes, so a low IPv6 network (::a09:0/120)
    # got IPv4 gateway and start addresses and handed out 10.9.0.x; upstream's NextIP keeps the family's width
    # (pkg/ip/cidr.go): ours allocates from the IPv6 subnet. (A network address of all zeros is the exception we
    # keep: see the 0.0.0.0/0 cases above and cnicore.ipam._engine.PlainRange.)
    plugin = support.reference_plugin("host-local")
    env = {**_ENV, "CNI_PATH": str(plugin.parent)}
    cases = [
        ({"subnet": "fd00:9::00000/64"}, (True, ([("fd00:9::2/64", "fd00:9::1")], None)),
         (False, (999, "invalid CIDR address: fd00:9::00000/64"))),
        ({"subnet": "::10.9.0.0/120"}, (True, ([("10.9.0.2/24", "10.9.0.1")], None)),
         (True, ([("::a09:2/120", "::a09:1")], None))),
    ]
    for i, (ipam, debian, ours) in enumerate(cases):
        done = subprocess.run([str(plugin)], input=_config(tmp_path / f"go{i}", ipam, {}), env=env,
                              capture_output=True, check=False)
        assert _outcome(done.returncode, done.stdout) == debian
        out = io.BytesIO()
        handler = HostLocalExecHandler()
        try:
            code = run_exec(handler, environ=env, stdin=io.BytesIO(_config(tmp_path / f"exec{i}", ipam, {})),
                            stdout=out, stderr=io.BytesIO(), reference_codes=True)
        finally:
            handler.close()
        assert _outcome(code, out.getvalue()) == ours
