"""The exec'd loopback's own handler: byte for byte what LoopbackPlugin prints, on the same kernel state.

The handler (cnicore.plugins._loopback.LoopbackExecHandler) takes the addresses as
plain numbers and writes the common results itself; LoopbackPlugin builds the
result types. Both run here through the exec skeleton against fake kernels in the
same state, and must agree on every byte and exit status. The written results are
also checked against the result types directly, over generated addresses.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import netaddr
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore._plugin_main import loopback_exec_handler
from cnicore.backends import FakeLinkBackend
from cnicore.links import Address
from cnicore.plugins import LoopbackPlugin, run_plugin
from cnicore.plugins._loopback import LoopbackExecHandler, RawAddress, _result, result_text
from cnicore.plugins._skel import run_exec
from cnicore.spec import ALL_VERSIONS

NS = "/var/run/netns/cnt-lo-exec"
VERSIONS = ("", *ALL_VERSIONS)


class PortLinks:
    """A namespace's links as the handler asks for them, read from a link backend (the fake here)."""

    def __init__(self, backend: FakeLinkBackend, path: str) -> None:
        self.backend = backend
        self.ns = backend.open_namespace(path)

    def __enter__(self) -> PortLinks:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def set_link_up(self, name: str, up: bool = True) -> None:
        self.backend.set_link_up(self.ns, name, up)

    def link_is_up(self, name: str) -> bool:
        return self.backend.get_link(self.ns, name).admin_up

    def addresses(self, name: str) -> tuple[RawAddress, ...]:
        return tuple((a.version, int(a.ip), a.prefixlen) for a in self.backend.list_addresses(self.ns, name))


Setup = Callable[[FakeLinkBackend], None]


def _kernel(setup: Setup | None) -> FakeLinkBackend:
    fake = FakeLinkBackend()
    fake.add_namespace(NS)
    if setup is not None:
        setup(fake)
    return fake


def _environ(command: str, netns: str) -> dict[str, str]:
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_NETNS": netns, "CNI_IFNAME": "lo",
            "CNI_PATH": "/opt/cni/bin"}


def _both(commands: list[str], config: bytes, *, setup: Setup | None = None,
          netns: str = NS) -> list[tuple[tuple[int, bytes], tuple[int, bytes]]]:
    """Each command run by LoopbackPlugin and by the handler, on two fake kernels in the same state."""
    ours, theirs = _kernel(setup), _kernel(setup)
    handler = LoopbackExecHandler(lambda path: PortLinks(theirs, path))
    outcomes = []
    for command in commands:
        runs = []
        for run in (lambda **kw: run_plugin(LoopbackPlugin(ours), **kw), lambda **kw: run_exec(handler, **kw)):
            out = io.BytesIO()
            code = run(environ=_environ(command, netns), stdin=io.BytesIO(config), stdout=out, stderr=io.BytesIO(),
                       allow_legacy_nameless=True, reference_codes=True)
            runs.append((code, out.getvalue()))
        outcomes.append((runs[0], runs[1]))
    assert [link.admin_up for link in ours.list_links(ours.open_namespace(NS))] == \
        [link.admin_up for link in theirs.list_links(theirs.open_namespace(NS))]
    return outcomes


def _assert_same(commands: list[str], config: bytes | dict[str, Any], **kwargs: Any) -> list[tuple[int, bytes]]:
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    outcomes = _both(commands, data, **kwargs)
    for plugin, handler in outcomes:
        assert handler == plugin
    return [plugin for plugin, _ in outcomes]


def _add(address: str) -> Setup:
    def setup(fake: FakeLinkBackend) -> None:
        ns = fake.open_namespace(NS)
        fake.set_link_up(ns, "lo", True)
        fake.add_address(ns, "lo", Address.parse(address))
    return setup


def _no_ipv6(fake: FakeLinkBackend) -> None:
    fake.write_sysctl(fake.open_namespace(NS), "net/ipv6/conf/lo/disable_ipv6", 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_add_check_del_agree_at_every_version(version: str) -> None:
    config = {"cniVersion": version, "name": "lo-net", "type": "loopback"} if version else {"type": "loopback"}
    got = _assert_same(["CHECK", "ADD", "CHECK", "ADD", "DEL", "DEL", "CHECK", "GC", "STATUS", "VERSION"], config)
    assert got[1][0] == 0 and b"127.0.0.1/8" in got[1][1]


@pytest.mark.parametrize("setup", [_add("127.0.0.2/8"), _add("127.9.0.1/16"), _add("::ffff:127.0.0.5/104"),
                                   _add("10.9.9.9/32"), _add("2001:db8::1/64"), _add("::ffff:10.0.0.1/128"),
                                   _no_ipv6],
                         ids=["second-v4", "other-v4-subnet", "mapped-loopback", "non-loopback-v4",
                              "non-loopback-v6", "mapped-non-loopback", "no-ipv6"])
@pytest.mark.parametrize("version", ["", "0.2.0", "0.4.0", "1.1.0"])
def test_unusual_addresses_agree(setup: Setup, version: str) -> None:
    config = {"cniVersion": version, "name": "lo-net"} if version else {"type": "loopback"}
    _assert_same(["ADD", "CHECK", "DEL"], config, setup=setup)


def test_no_address_at_all_agrees() -> None:
    def bare(fake: FakeLinkBackend) -> None:
        _no_ipv6(fake)
        ns = fake.open_namespace(NS)
        fake.set_link_up(ns, "lo", True)
        fake.delete_address(ns, "lo", Address.parse("127.0.0.1/8"))
        assert fake.list_addresses(ns, "lo") == ()

    for config in ({"type": "loopback"}, {"cniVersion": "1.0.0", "name": "n"}):
        _assert_same(["ADD"], config, setup=bare)


@pytest.mark.parametrize("prev_key", ["prevResult", "PREVRESULT", "prevre\u017fult"])
@pytest.mark.parametrize("version", ["0.2.0", "0.4.0", "1.0.0"])
def test_prev_result_agrees(prev_key: str, version: str) -> None:
    prev = {"cniVersion": version, "ips": [{"version": "4", "address": "10.1.2.3/24", "interface": 0}],
            "ip4": {"ip": "10.1.2.3/24"}, "dns": {"nameservers": ["1.1.1.1"]}}
    got = _assert_same(["ADD"], {"cniVersion": version, "name": "n", prev_key: prev})
    assert b"10.1.2.3" in got[0][1]
    _assert_same(["ADD"], {"cniVersion": version, "name": "n", prev_key: None})
    _assert_same(["ADD"], {"cniVersion": version, "name": "n", prev_key: {"cniVersion": "9.9.9"}})


@pytest.mark.parametrize("config", [b"garbage", b"[1]", b'{"name": "bad name", "cniVersion": "1.0.0"}',
                                    b'{"name": "x", "cniVersion": "9.9.9"}', b'{"name": "x", "cniVersion": "0.3.1"}',
                                    b'{"type": "loopback", "cniVersion": "0.4.0"}'])
def test_bad_input_agrees(config: bytes) -> None:
    _assert_same(["ADD", "CHECK", "DEL", "GC"], config)


def test_missing_namespace_agrees() -> None:
    config = {"cniVersion": "1.0.0", "name": "n"}
    got = _assert_same(["ADD", "CHECK", "DEL"], config, netns="/var/run/netns/cnt-gone")
    assert [code for code, _ in got] == [1, 1, 0]
    assert json.loads(got[0][1])["msg"] == 'failed to Statfs "/var/run/netns/cnt-gone": no such file or directory'
    _assert_same(["DEL"], config, netns="")


_V4_LOOPBACK = st.tuples(st.just(4), st.integers(127 << 24, (128 << 24) - 1), st.integers(0, 32))
_V6_ANY = st.tuples(st.just(6), st.sampled_from([1, 0xFFFF_7F00_0001, 2, 0x2001_0DB8 << 96]), st.integers(0, 128))


@given(st.dictionaries(st.sampled_from([4, 6]), st.one_of(_V4_LOOPBACK, _V6_ANY)),
       st.sampled_from(VERSIONS), st.sampled_from([NS, "/proc/42/ns/net", ""]))
def test_written_results_are_the_result_types_text(first: dict[int, RawAddress], version: str, netns: str) -> None:
    first = {family: address for family, address in first.items() if address[0] == family}
    text = result_text(first, netns, version)
    try:
        expected = _result(first, netns, version).as_version(version).to_json()
    except Exception:  # the result types refuse it (say, 0.1.0 without any address): so must the writer
        assert text is None
        return
    if text is not None:
        assert text == expected
    else:
        # Only what the writer does not know how to print is left to the result types.
        assert not first or any(v == 6 and ip != 1 for v, ip, _ in first.values())


def test_exec_handler_is_chosen_by_backend_and_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    import cnicore.backends as backends

    monkeypatch.setattr(backends, "has_net_admin", lambda: True)
    assert isinstance(loopback_exec_handler({}), LoopbackExecHandler)
    assert isinstance(loopback_exec_handler({"CNICORE_BACKEND": " Auto "}), LoopbackExecHandler)
    for chosen in ("iproute2", "netlink", "fake"):
        assert loopback_exec_handler({"CNICORE_BACKEND": chosen}) is None
    monkeypatch.setattr(backends, "has_net_admin", lambda: False)
    assert loopback_exec_handler({}) is None


def test_non_loopback_message_names_the_address_as_netaddr_prints_it() -> None:
    # The text comes from netaddr, as the port path's Address.ip prints it.
    got = _assert_same(["ADD"], {"cniVersion": "1.0.0", "name": "n"}, setup=_add("2001:db8:0:0:1::1/64"))
    ip = netaddr.IPAddress("2001:db8:0:0:1::1")
    assert json.loads(got[0][1])["msg"] == f'loopback interface found with non-loopback address "{ip}"'
