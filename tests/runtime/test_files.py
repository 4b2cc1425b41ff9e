"""The container's hosts, hostname and resolv.conf, built from ADD results as the Mesos isolator builds them."""

from __future__ import annotations

import os
import stat
import string
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore import InvalidInputError, IOFailureError, NotFoundError
from cnicore.ipam import parse_resolv_conf
from cnicore.runtime._files import HOST_NAME_MAX, ContainerFiles, container_files, merged_dns
from cnicore.spec import (
    DNS,
    AnyResult,
    Interface,
    Interface040,
    IPConfig,
    IPConfig020,
    IPConfig040,
    Result,
    Result020,
    Result040,
    convert_result,
    parse_result,
)
from cnicore.testing import results

# What host-local answers at 0.2.0 for the Mesos page's mybridge0 network: an address and "dns": {}.
MESOS_020 = '{"cniVersion": "0.2.0", "ip4": {"ip": "10.23.0.2/24", "gateway": "10.23.0.1"}, "dns": {}}'
# What the bridge plugin answers at 1.1.0: the bridge, the host end of the veth, the container end.
BRIDGE_110 = """{"cniVersion": "1.1.0",
 "interfaces": [{"name": "mybr0", "mac": "0a:58:0a:17:00:01"},
                {"name": "veth1234", "mac": "0e:00:00:00:00:01"},
                {"name": "eth0", "mac": "0e:00:00:00:00:02", "sandbox": "/var/run/netns/c1"}],
 "ips": [{"interface": 2, "address": "10.23.0.5/24", "gateway": "10.23.0.1"}],
 "dns": {"nameservers": ["10.23.0.1"], "search": ["svc.example"]}}"""


@pytest.fixture
def host_resolv(tmp_path: Path) -> str:
    path = tmp_path / "host-resolv.conf"
    path.write_text("# the host's\nnameserver 192.0.2.53\nsearch host.example\n")
    return str(path)


def test_the_mesos_example_result_gives_the_isolators_files(host_resolv: str) -> None:
    files = container_files({"mybridge0": parse_result(MESOS_020)}, hostname="c1", host_resolv_conf=host_resolv)
    assert files.hosts == "127.0.0.1 localhost\n10.23.0.2 c1\n"
    assert files.hostname == "c1\n"
    # host-local's "dns": {} has no nameserver: the container gets the host's resolver, verbatim.
    assert files.resolv_conf == Path(host_resolv).read_text()


def test_a_current_result_is_read_too_and_its_dns_rendered(host_resolv: str) -> None:
    files = container_files([parse_result(BRIDGE_110)], hostname="web-1", host_resolv_conf=host_resolv)
    assert files.hosts == "127.0.0.1 localhost\n10.23.0.5 web-1\n"
    assert files.resolv_conf == "search svc.example\nnameserver 10.23.0.1\n"


def test_the_first_ipv4_follows_attach_order_and_skips_networks_without_one() -> None:
    v6_only = Result(ips=[IPConfig(address="fd00::5/64")])
    first = Result040(cni_version="0.4.0", ips=[IPConfig040(address="fd01::7/64"), IPConfig040(address="10.1.0.7/16")])
    second = Result020(cni_version="0.2.0", ip4=IPConfig020(ip="10.2.0.9/16"))
    files = container_files({"a": v6_only, "b": first, "c": second}, hostname="h", host_resolv_conf=None)
    assert files.hosts == "127.0.0.1 localhost\n10.1.0.7 h\n"
    reordered = container_files({"c": second, "a": v6_only, "b": first}, hostname="h", host_resolv_conf=None)
    assert reordered.hosts == "127.0.0.1 localhost\n10.2.0.9 h\n"


def test_an_address_of_a_host_side_interface_is_not_the_containers() -> None:
    result = Result(
        interfaces=[Interface(name="mybr0"), Interface(name="eth0", sandbox="/proc/1/ns/net")],
        ips=[IPConfig(address="10.23.0.1/24", interface=0), IPConfig(address="10.23.0.8/24", interface=1)],
    )
    files = container_files([result], hostname="h", host_resolv_conf=None)
    assert files.hosts == "127.0.0.1 localhost\n10.23.0.8 h\n"
    old = Result040(cni_version="0.3.1", interfaces=[Interface040(name="mybr0")],
                    ips=[IPConfig040(address="10.9.0.1/24", interface=0)])
    assert container_files([old], hostname="h", host_resolv_conf=None).hosts == "127.0.0.1 localhost\n"


def test_no_ipv4_anywhere_leaves_only_localhost() -> None:
    result = Result020(cni_version="0.1.0", ip6=IPConfig020(ip="2001:db8::2/64"))
    files = container_files([result, Result()], hostname="h", host_resolv_conf=None)
    assert files.hosts == "127.0.0.1 localhost\n"


def test_dns_per_network_from_the_result_else_its_default_merged_in_order() -> None:
    with_dns = Result(dns=DNS(nameservers=["10.0.0.53"], domain="a.example", search=["a.example"],
                              options=["ndots:2"]))
    without = Result(dns=DNS(search=["ignored.example"]))  # no nameserver: the whole dns is not used
    also = Result020(cni_version="0.2.0", dns=DNS(nameservers=["10.0.1.53", "10.0.0.53"]))
    defaults = {"second": DNS(nameservers=["192.0.2.1"], domain="b.example", options=["rotate"]),
                "first": DNS(nameservers=["192.0.2.99"])}  # not used: the first network's result has nameservers
    files = container_files({"first": with_dns, "second": without, "third": also}, hostname="h",
                            default_dns=defaults, host_resolv_conf=None)
    assert files.resolv_conf == (
        "domain b.example\n"
        "search a.example\n"
        "options ndots:2 rotate\n"
        "nameserver 10.0.0.53\n"
        "nameserver 192.0.2.1\n"
        "nameserver 10.0.1.53\n"
        "nameserver 10.0.0.53\n"
    )


def test_a_default_for_every_network() -> None:
    default = DNS(nameservers=["192.0.2.1"], search=["corp.example"])
    files = container_files([Result(), Result(dns=DNS(nameservers=["10.0.0.1"]))], hostname="h",
                            default_dns=default, host_resolv_conf=None)
    assert files.resolv_conf == "search corp.example\nnameserver 192.0.2.1\nnameserver 10.0.0.1\n"


def test_search_and_options_without_any_nameserver_fall_back_to_the_host(host_resolv: str) -> None:
    files = container_files([Result()], hostname="h", default_dns=DNS(search=["x.example"]),
                            host_resolv_conf=host_resolv)
    assert files.resolv_conf == Path(host_resolv).read_text()
    assert container_files([Result()], hostname="h", host_resolv_conf=None).resolv_conf is None


def test_a_missing_host_resolv_conf_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(NotFoundError) as info:
        container_files([Result()], hostname="h", host_resolv_conf=missing)
    assert missing in info.value.msg and info.value.key == "host_resolv_conf"
    # Not needed when a network gives nameservers.
    container_files([parse_result(BRIDGE_110)], hostname="h", host_resolv_conf=missing)


def test_an_unreadable_host_resolv_conf_is_an_io_failure(tmp_path: Path) -> None:
    with pytest.raises(IOFailureError):
        container_files([Result()], hostname="h", host_resolv_conf=str(tmp_path))  # a directory


def test_per_network_defaults_need_named_results() -> None:
    with pytest.raises(InvalidInputError) as info:
        container_files([Result()], hostname="h", default_dns={"n": DNS(nameservers=["1.1.1.1"])},
                        host_resolv_conf=None)
    assert info.value.key == "default_dns"


@pytest.mark.parametrize("hostname", ["", "a b", "a\nb", "tab\there", "x" * (HOST_NAME_MAX + 1), "\x00",
                                      "é" * 33])
def test_host_names_that_would_corrupt_the_files_are_refused(hostname: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        container_files([], hostname=hostname, host_resolv_conf=None)
    assert info.value.key == "hostname" and info.value.code == 7


def test_the_longest_host_name_is_accepted() -> None:
    name = "h" * HOST_NAME_MAX
    assert container_files([], hostname=name, host_resolv_conf=None).hostname == name + "\n"


@pytest.mark.parametrize(("dns", "key"), [
    (DNS(nameservers=["10.0.0.1\nnameserver 6.6.6.6"]), "net.dns.nameservers[0]"),
    (DNS(nameservers=["10.0.0.1", ""]), "net.dns.nameservers[1]"),
    (DNS(nameservers=["10.0.0.1"], search=["a b"]), "net.dns.search[0]"),
    (DNS(nameservers=["10.0.0.1"], options=["x\ty"]), "net.dns.options[0]"),
    (DNS(nameservers=["10.0.0.1"], domain="evil\n"), "net.dns.domain"),
])
def test_dns_entries_that_cannot_be_written_are_refused_naming_the_key(dns: DNS, key: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        container_files({"net": Result(dns=dns)}, hostname="h", host_resolv_conf=None)
    assert info.value.key == key


def test_things_that_are_not_results_are_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        container_files([Result(), {"cniVersion": "1.0.0"}], hostname="h", host_resolv_conf=None)  # type: ignore[list-item]
    assert info.value.key == "results[1]"
    with pytest.raises(InvalidInputError):
        container_files("not results", hostname="h", host_resolv_conf=None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ writing


def test_write_creates_the_three_files_world_readable(tmp_path: Path) -> None:
    files = ContainerFiles(hosts="127.0.0.1 localhost\n", hostname="h\n", resolv_conf="nameserver 10.0.0.1\n")
    old_umask = os.umask(0o077)
    try:
        paths = files.write(tmp_path / "c1" / "files")
    finally:
        os.umask(old_umask)
    directory = tmp_path / "c1" / "files"
    assert sorted(p.name for p in paths) == ["hostname", "hosts", "resolv.conf"]
    assert sorted(os.listdir(directory)) == ["hostname", "hosts", "resolv.conf"]  # no temp file left
    assert (directory / "hosts").read_text() == files.hosts
    assert (directory / "hostname").read_text() == files.hostname
    assert (directory / "resolv.conf").read_text() == files.resolv_conf
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_replaces_each_file_whole_so_a_reader_keeps_a_complete_version(tmp_path: Path) -> None:
    ContainerFiles(hosts="old hosts\n", hostname="old\n", resolv_conf="nameserver 10.0.0.1\n").write(tmp_path)
    with open(tmp_path / "hosts") as reader:
        ContainerFiles(hosts="new hosts\n", hostname="new\n", resolv_conf="nameserver 10.0.0.2\n").write(tmp_path)
        # Renamed over, never truncated in place: the reader's file is still the whole old one.
        assert reader.read() == "old hosts\n"
    assert (tmp_path / "hosts").read_text() == "new hosts\n"


def test_write_without_resolv_conf_removes_a_stale_one_and_is_idempotent(tmp_path: Path) -> None:
    ContainerFiles(hosts="a\n", hostname="h\n", resolv_conf="nameserver 10.0.0.1\n").write(tmp_path)
    files = ContainerFiles(hosts="a\n", hostname="h\n", resolv_conf=None)
    files.write(tmp_path)
    files.write(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["hostname", "hosts"]


def test_write_into_something_that_is_not_a_directory_is_an_io_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(IOFailureError):
        ContainerFiles(hosts="a\n", hostname="h\n", resolv_conf=None).write(blocker)
    with pytest.raises(IOFailureError):
        ContainerFiles(hosts="a\n", hostname="h\n", resolv_conf=None).write(blocker / "sub")


# ------------------------------------------------------------------------------------------ properties

_WORDS = st.text(alphabet=string.ascii_letters + string.digits + ".:-_", min_size=1, max_size=12)
_CLEAN_DNS = st.builds(DNS, nameservers=st.lists(_WORDS, max_size=3), domain=st.just("") | _WORDS,
                       search=st.lists(_WORDS, max_size=3), options=st.lists(_WORDS, max_size=3))


def _with_dns(result: AnyResult, dns: DNS) -> AnyResult:
    return attrs.evolve(result, dns=dns)


_CLEAN_RESULTS = st.builds(_with_dns, results(), _CLEAN_DNS)


def _oracle_first_ipv4(chain: list[AnyResult]) -> str | None:
    # Independently: bring every result to the current shape and look at its ips.
    for result in chain:
        current = convert_result(result, "1.1.0")
        assert isinstance(current, Result)
        for ip in current.ips:
            if ip.address.version != 4:
                continue
            index = ip.interface
            if index is not None and 0 <= index < len(current.interfaces) and not current.interfaces[index].sandbox:
                continue
            return str(ip.address.ip)
    return None


@given(st.lists(_CLEAN_RESULTS, max_size=4), _WORDS)
def test_hosts_names_the_first_container_ipv4_of_any_version(chain: list[AnyResult], hostname: str) -> None:
    files = container_files(chain, hostname=hostname, host_resolv_conf=None)
    lines = files.hosts.splitlines(keepends=True)
    assert lines[0] == "127.0.0.1 localhost\n"
    expected = _oracle_first_ipv4(chain)
    assert lines[1:] == ([] if expected is None else [f"{expected} {hostname}\n"])
    assert files.hostname == hostname + "\n"


@given(st.lists(_CLEAN_RESULTS, max_size=4), st.none() | _CLEAN_DNS)
def test_resolv_conf_parses_back_to_the_merge_of_each_networks_dns(chain: list[AnyResult],
                                                                    default: DNS | None) -> None:
    used = [r.dns if r.dns.nameservers else default for r in chain]
    used_dns = [d for d in used if d is not None]
    files = container_files(chain, hostname="h", default_dns=default, host_resolv_conf=None)
    nameservers = [n for d in used_dns for n in d.nameservers]
    if not nameservers:
        assert files.resolv_conf is None
        return
    assert files.resolv_conf is not None
    parsed = parse_resolv_conf(files.resolv_conf)  # host-local's own resolv.conf reader
    assert list(parsed.nameservers) == nameservers
    assert list(parsed.search) == [s for d in used_dns for s in d.search]
    assert list(parsed.options) == [o for d in used_dns for o in d.options]
    assert parsed.domain == next((d.domain for d in reversed(used_dns) if d.domain), "")
    assert files.resolv_conf.endswith("\n") and "\n\n" not in files.resolv_conf


@given(st.dictionaries(_WORDS, _CLEAN_RESULTS, max_size=4))
def test_named_and_unnamed_results_give_the_same_files(named: dict[str, AnyResult]) -> None:
    by_name = container_files(named, hostname="h", host_resolv_conf=None)
    by_order = container_files(list(named.values()), hostname="h", host_resolv_conf=None)
    assert by_name == by_order
    assert merged_dns(named) == merged_dns(list(named.values()))


@given(results())
def test_arbitrary_results_give_files_or_a_clear_input_error(result: AnyResult) -> None:
    try:
        files = container_files({"net": result}, hostname="h", host_resolv_conf=None)
    except InvalidInputError as exc:
        assert exc.key is not None and exc.key.startswith("net.dns.")
        return
    assert files.resolv_conf is None or all(
        len(line.split()) >= 2 for line in files.resolv_conf.splitlines())
