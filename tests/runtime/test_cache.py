"""libcni's result cache: exact bytes, reading what libcni writes (current and legacy), atomicity, listing."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnicore import DecodingError, InvalidInputError, IOFailureError
from cnicore.runtime import (
    CACHE_KIND,
    _cache,
    cache_file_path,
    decode_cache_entry,
    delete_cache_entry,
    encode_cache_entry,
    list_cache_entries,
    read_cache_entry,
    read_cached_result,
    write_cache_entry,
)
from cnicore.spec import DNS, Interface, IPConfig, Result, Result020, Result040, parse_result
from cnicore.testing import json_values, network_names, results

CONFIG = b'{"cniVersion":"1.0.0","name":"apitest","plugins":[{"type":"noop"}]}'
RESULT = Result(cni_version="1.0.0",
                interfaces=(Interface(name="eth0", mac="00:11:22:33:44:55", sandbox="/some/netns/path"),),
                ips=(IPConfig(address="10.1.2.3/24", gateway="10.1.2.1", interface=0),),
                dns=DNS(nameservers=("1.2.3.4",)))
CAPS = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}], "otherCapability": 123}

# What libcni's cacheAdd writes for these inputs: the struct in field order, the Go maps (capabilityArgs,
# result) with sorted keys, the config as standard base64.
EXPECTED = (
    '{"kind":"cniCacheV1","containerId":"some-container-id","config":"'
    + base64.b64encode(CONFIG).decode()
    + '","ifName":"some-eth0","networkName":"apitest","netns":"/some/netns/path",'
    '"cniArgs":[["FOO","BAR"],["ABC","123"]],'
    '"capabilityArgs":{"otherCapability":123,"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},'
    '"result":{"cniVersion":"1.0.0","dns":{"nameservers":["1.2.3.4"]},'
    '"interfaces":[{"mac":"00:11:22:33:44:55","name":"eth0","sandbox":"/some/netns/path"}],'
    '"ips":[{"address":"10.1.2.3/24","gateway":"10.1.2.1","interface":0}]}}'
).encode()


def _write(cache: Path, **overrides: object) -> None:
    kwargs: dict[str, object] = {"network": "apitest", "container_id": "some-container-id", "ifname": "some-eth0",
                                 "config": CONFIG, "netns": "/some/netns/path",
                                 "cni_args": [("FOO", "BAR"), ("ABC", "123")], "capability_args": CAPS,
                                 "result": RESULT}
    kwargs.update(overrides)
    write_cache_entry(cache, **kwargs)  # type: ignore[arg-type]


def test_the_file_is_byte_for_byte_what_libcni_writes(tmp_path: Path) -> None:
    _write(tmp_path)
    path = tmp_path / "results" / "apitest-some-container-id-some-eth0"
    assert path.read_bytes() == EXPECTED
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "results").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "results").iterdir()] == [path.name]  # no temporary file left


def test_empty_fields_are_omitted_and_0x_results_keep_dns_as_go_maps_do() -> None:
    result = parse_result('{"cniVersion":"0.2.0","ip4":{"ip":"10.1.2.3/24","gateway":"10.1.2.1"}}')
    data = encode_cache_entry(network="n", container_id="c", ifname="eth0", config=b"{}", result=result)
    assert data == (b'{"kind":"cniCacheV1","containerId":"c","config":"e30=","ifName":"eth0","networkName":"n",'
                    b'"result":{"cniVersion":"0.2.0","dns":{},"ip4":{"gateway":"10.1.2.1","ip":"10.1.2.3/24"}}}')
    bare = encode_cache_entry(network="n", container_id="c", ifname="eth0", config=b"")
    assert bare == b'{"kind":"cniCacheV1","containerId":"c","config":"","ifName":"eth0","networkName":"n"}'


def test_strings_are_escaped_as_go_escapes_them() -> None:
    data = encode_cache_entry(network="n", container_id="c", ifname="eth0", config=b"", netns="/a&b<c>",
                              capability_args={"k": 1.5e-7, "big": 1e21})
    assert b'"netns":"/a\\u0026b\\u003cc\\u003e"' in data
    assert b'"capabilityArgs":{"big":1e+21,"k":1.5e-7}' in data


def test_an_entry_libcni_wrote_is_read_back(tmp_path: Path) -> None:
    # Spelled as a Go runtime passing a struct for portMappings would write it (struct order, not sorted).
    written = EXPECTED.replace(b'{"containerPort":80,"hostPort":8080,"protocol":"tcp"}',
                               b'{"hostPort":8080,"containerPort":80,"protocol":"tcp"}')
    path = Path(cache_file_path(tmp_path, "apitest", "some-container-id", "some-eth0"))
    path.parent.mkdir()
    path.write_bytes(written)
    entry = read_cache_entry(tmp_path, "apitest", "some-container-id", "some-eth0")
    assert entry is not None and not entry.legacy
    assert (entry.network, entry.container_id, entry.ifname, entry.netns) == \
        ("apitest", "some-container-id", "some-eth0", "/some/netns/path")
    assert entry.cni_args == (("FOO", "BAR"), ("ABC", "123"))
    assert entry.capability_args_dict() == CAPS
    assert entry.config == CONFIG
    assert entry.result == RESULT
    assert read_cached_result(tmp_path, "apitest", "some-container-id", "some-eth0", "1.1.0") == \
        Result(cni_version="1.1.0", interfaces=RESULT.interfaces, ips=RESULT.ips, dns=RESULT.dns)
    assert [a.path for a in list_cache_entries(tmp_path, "some-container-id")] == [str(path)]


def test_a_legacy_cache_is_a_bare_result_converted_to_the_config_version(tmp_path: Path) -> None:
    path = Path(cache_file_path(tmp_path, "net", "c1", "eth0"))
    path.parent.mkdir()
    path.write_text('{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.1.2.3/24"}],"dns":{}}')
    converted = read_cached_result(tmp_path, "net", "c1", "eth0", "0.4.0")
    assert isinstance(converted, Result040) and converted.cni_version == "0.4.0"
    assert [str(ip.address) for ip in converted.ips] == ["10.1.2.3/24"]
    entry = read_cache_entry(tmp_path, "net", "c1", "eth0")
    assert entry is not None and entry.legacy and entry.result is not None
    assert list_cache_entries(tmp_path) == []  # listings skip legacy entries, as libcni does
    with pytest.raises(Exception, match=re.escape('failed to convert cached result to config version "0.2.0": '
                                                  "cannot convert: no valid IP addresses")):
        path.write_text('{"cniVersion":"0.4.0","dns":{}}')
        read_cached_result(tmp_path, "net", "c1", "eth0", "0.2.0")


def test_another_kind_is_read_as_legacy_and_garbage_is_an_error_only_when_the_result_is_needed(tmp_path: Path) -> None:
    path = Path(cache_file_path(tmp_path, "net", "c1", "eth0"))
    path.parent.mkdir()
    path.write_text('{"kind":"cniCacheV2","cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}]}')
    assert isinstance(read_cached_result(tmp_path, "net", "c1", "eth0"), Result)
    path.write_text("garbage")
    entry = read_cache_entry(tmp_path, "net", "c1", "eth0")
    assert entry is not None and entry.legacy and entry.result is None
    with pytest.raises(DecodingError):
        read_cached_result(tmp_path, "net", "c1", "eth0", "1.0.0")
    assert read_cached_result(tmp_path, "net", "c1", "eth1") is None  # no file: no result


def test_cache_path_needs_all_three_names(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as caught:
        cache_file_path(tmp_path, "", "some-container-id", "eth0")
    assert str(caught.value) == ('cache file path requires network name (""), container ID ("some-container-id"), '
                                 'and interface name ("eth0")')
    with pytest.raises(InvalidInputError, match="contains '/'"):
        cache_file_path(tmp_path, "net", "../../etc", "eth0")


def test_list_filters_as_libcni_and_by_network(tmp_path: Path) -> None:
    for network, cid, ifname in [("a", "c1", "eth0"), ("b", "c1", "eth1"), ("a", "c2", "eth0"),
                                 ("a", "c1-x", "eth0")]:
        write_cache_entry(tmp_path, network=network, container_id=cid, ifname=ifname, config=b"{}")
    (tmp_path / "results" / "a-c1-eth9").write_text('{"kind":"cniCacheV1","containerId":"c1","networkName":"a"}')
    (tmp_path / "results" / ".tmp.0123").write_bytes(
        encode_cache_entry(network="a", container_id="c1", ifname="eth5", config=b""))
    assert [(a.network, a.ifname) for a in list_cache_entries(tmp_path, "c1")] == [("a", "eth0"), ("b", "eth1")]
    assert [a.container_id for a in list_cache_entries(tmp_path, network="a")] == ["c1", "c1-x", "c2"]
    assert len(list_cache_entries(tmp_path)) == 4
    # The network filter goes by file name first (<network>-<containerID>-<ifname>): a file named for network b
    # is not read for a, whatever it holds; unfiltered, it is listed as what it holds.
    (tmp_path / "results" / "b-c7-eth0").write_bytes(
        encode_cache_entry(network="a", container_id="c7", ifname="eth0", config=b""))
    assert "c7" not in [a.container_id for a in list_cache_entries(tmp_path, network="a")]
    assert ("a", "c7") in [(a.network, a.container_id) for a in list_cache_entries(tmp_path)]
    (tmp_path / "results" / "b-c7-eth0").unlink()
    assert delete_cache_entry(tmp_path, "a", "c1", "eth0") is True
    assert delete_cache_entry(tmp_path, "a", "c1", "eth0") is False
    assert list_cache_entries(tmp_path / "missing") == []


def test_readers_never_see_a_partial_file_while_it_is_rewritten(tmp_path: Path) -> None:
    big = {"blob": "x" * 200_000}
    write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth0", config=b"{}", capability_args=big)
    stop = threading.Event()
    seen: list[bool] = []

    def reader() -> None:
        while not stop.is_set():
            entry = read_cache_entry(tmp_path, "n", "c", "eth0")
            seen.append(entry is not None and not entry.legacy)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(30):
            write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth0", config=b"{}",
                              capability_args={"blob": str(i) * 200_000})
    finally:
        stop.set()
        thread.join()
    assert seen and all(seen)
    assert sorted(os.listdir(tmp_path / "results")) == ["n-c-eth0"]


_args = st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), max_size=3)
_caps = st.dictionaries(st.text(max_size=8), json_values(), max_size=3)


@given(network=network_names(), container=network_names(), ifname=st.sampled_from(["eth0", "net1", "x"]),
       netns=st.text(max_size=20), args=_args, caps=_caps, result=st.none() | results(),
       config=st.binary(max_size=64))
def test_round_trip(network: str, container: str, ifname: str, netns: str, args: list[tuple[str, str]],
                    caps: dict[str, object], result: Result | Result040 | Result020 | None, config: bytes) -> None:
    data = encode_cache_entry(network=network, container_id=container, ifname=ifname, config=config, netns=netns,
                              cni_args=args, capability_args=caps, result=result)
    entry = decode_cache_entry(data)
    assert (entry.network, entry.container_id, entry.ifname, entry.netns, entry.config, entry.legacy) == \
        (network, container, ifname, netns, config, False)
    assert entry.cni_args == tuple(args)
    document = json.loads(data)
    assert list(document)[:5] == ["kind", "containerId", "config", "ifName", "networkName"]
    assert document["kind"] == CACHE_KIND
    if result is not None:
        assert entry.result is not None and entry.result.to_object() == parse_result(result.to_json()).to_object()
    # Writing what was read gives the same bytes: nothing is lost or reordered.
    again = encode_cache_entry(network=entry.network, container_id=entry.container_id, ifname=entry.ifname,
                               config=entry.config, netns=entry.netns, cni_args=entry.cni_args,
                               capability_args=entry.capability_args, result=entry.raw_result)
    assert again == data


def test_negative_zero_in_capability_args_survives_a_round_trip() -> None:
    # capabilityArgs is a Go map[string]interface{}: Go reads -0 as float64 -0 and writes "-0" back.
    data = encode_cache_entry(network="n", container_id="c", ifname="eth0", config=b"{}",
                              capability_args={"a": -0.0, "b": [0, -0.0]})
    assert b'"capabilityArgs":{"a":-0,"b":[0,-0]}' in data
    entry = decode_cache_entry(data)
    again = encode_cache_entry(network="n", container_id="c", ifname="eth0", config=b"{}",
                               capability_args=entry.capability_args)
    assert again == data


@pytest.mark.parametrize(("label", "names"), [("network name", ("a/b", "c1", "eth0")),
                                              ("container ID", ("net", "c\x001", "eth0")),
                                              ("interface name", ("net", "c1", "../x"))])
def test_a_name_that_would_leave_the_directory_is_refused_naming_it(
        tmp_path: Path, label: str, names: tuple[str, str, str]) -> None:
    bad = next(name for name in names if "/" in name or "\x00" in name)
    with pytest.raises(InvalidInputError) as caught:
        cache_file_path(tmp_path, *names)
    quoted = json.dumps(bad).replace("\\u0000", "\\x00")  # Go's %q
    assert caught.value.msg == f"cache file path: {label} {quoted} contains '/' or a NUL byte"
    assert (caught.value.key, caught.value.value, caught.value.code) == (label, bad, 7)
    with pytest.raises(InvalidInputError):
        write_cache_entry(tmp_path, network=names[0], container_id=names[1], ifname=names[2], config=b"")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("names", [("", "c", "eth0"), ("n", "", "eth0"), ("n", "c", "")])
def test_each_of_the_three_names_is_required(tmp_path: Path, names: tuple[str, str, str]) -> None:
    with pytest.raises(InvalidInputError, match="cache file path requires network name"):
        cache_file_path(tmp_path, *names)


def test_a_legacy_entry_takes_its_names_from_where_it_was_read(tmp_path: Path) -> None:
    path = Path(cache_file_path(tmp_path, "net", "c1", "eth0"))
    path.parent.mkdir()
    path.write_text('{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.1.2.3/24"}],"dns":{}}')
    entry = read_cache_entry(tmp_path, "net", "c1", "eth0")
    assert entry is not None and entry.legacy
    assert (entry.network, entry.container_id, entry.ifname, entry.path) == ("net", "c1", "eth0", str(path))
    current = write_cache_entry(tmp_path, network="net", container_id="c1", ifname="eth1", config=b"{}")
    assert current.path == cache_file_path(tmp_path, "net", "c1", "eth1")
    assert current.netns == "" and b"netns" not in Path(current.path).read_bytes()
    read = read_cache_entry(tmp_path, "net", "c1", "eth1")
    assert read is not None and read.path == current.path and read == current


def test_a_conversion_error_keeps_its_code_and_details(tmp_path: Path) -> None:
    write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth0", config=b"{}",
                      result=parse_result('{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}]}'))
    with pytest.raises(Exception) as caught:
        read_cached_result(tmp_path, "n", "c", "eth0", "9.9.9")
    error = caught.value
    assert getattr(error, "msg", None) == ('failed to convert cached result to config version "9.9.9": '
                                           "no converter for CNI result version 1.0.0 to 9.9.9")
    assert (getattr(error, "details", None), getattr(error, "code", None)) == ('key cniVersion = "9.9.9"', 999)


def test_an_entry_that_is_no_regular_file_is_an_io_error_never_a_wait(tmp_path: Path) -> None:
    path = Path(cache_file_path(tmp_path, "n", "c", "eth0"))
    path.parent.mkdir()
    os.mkfifo(path)  # reading a FIFO would wait for a writer forever
    with pytest.raises(IOFailureError) as caught:
        read_cache_entry(tmp_path, "n", "c", "eth0")
    assert caught.value.msg == f"failed to read cache file {path}: not a regular file (a FIFO)"
    with pytest.raises(IOFailureError, match="failed to read cache file"):
        read_cached_result(tmp_path, "n", "c", "eth0")
    write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth1", config=b"{}")
    assert [a.ifname for a in list_cache_entries(tmp_path)] == ["eth1"]  # listing skips it


def test_io_errors_name_the_file_and_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth0", config=b"{}", netns="/x")
    # Something that is no file where an entry goes: writing and removing it fail, naming it.
    blocked = Path(cache_file_path(tmp_path, "n", "c", "eth1"))
    (blocked / "inside").mkdir(parents=True)
    with pytest.raises(IOFailureError) as caught:
        write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth1", config=b"{}")
    assert caught.value.msg == f"failed to write {blocked}: Is a directory"
    with pytest.raises(IOFailureError) as caught:
        delete_cache_entry(tmp_path, "n", "c", "eth1")
    assert caught.value.msg == f"failed to remove cache file {blocked}: Is a directory"
    assert sorted(os.listdir(tmp_path / "results")) == ["n-c-eth0", "n-c-eth1"]  # no temporary file left
    assert read_cache_entry(tmp_path, "n", "c", "eth0") == kept
    # A directory that cannot be listed.
    other = tmp_path / "other"
    other.mkdir()
    (other / "results").write_text("not a directory")
    with pytest.raises(IOFailureError) as caught:
        list_cache_entries(other)
    assert caught.value.msg == f"failed to list cache directory {other / 'results'}: Not a directory"
    # Removal whose directory flush fails: the entry is gone all the same (libcni ignores the error).

    def failing_flush(directory: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_cache, "fsync_directory", failing_flush)
    assert delete_cache_entry(tmp_path, "n", "c", "eth0") is True
    assert not Path(kept.path).exists()


def test_listing_by_container_goes_by_file_name_first_as_libcni_does(tmp_path: Path) -> None:
    # libcni lists a file for a container only if "-<id>-" occurs in its name after the first character, the
    # first occurrence followed by something; then the entry itself must be the container's.
    listed = write_cache_entry(tmp_path, network="n", container_id="c1", ifname="c1-", config=b"")  # "n-c1-c1-"
    results_dir = tmp_path / "results"
    entry = encode_cache_entry(network="n", container_id="c1", ifname="eth0", config=b"")
    for misnamed in ("n-c1-", "-c1-eth0", "n-x-eth0"):
        (results_dir / misnamed).write_bytes(entry)
    assert [a.path for a in list_cache_entries(tmp_path, "c1")] == [listed.path]
    assert len(list_cache_entries(tmp_path)) == 4  # each is an entry all the same


def test_listing_is_in_the_byte_order_of_file_names(tmp_path: Path) -> None:
    # Go's ReadDir sorts names as bytes: an undecodable byte (0xff) sorts after any UTF-8 character.
    for container in ("\ue000", os.fsdecode(b"\xff"), "z"):
        write_cache_entry(tmp_path, network="n", container_id=container, ifname="eth0", config=b"")
    assert [os.fsencode(Path(a.path).name) for a in list_cache_entries(tmp_path)] == [
        b"n-z-eth0", "n-\ue000-eth0".encode(), b"n-\xff-eth0"]


def test_listing_skips_what_it_cannot_use_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results_dir = tmp_path / "results"
    write_cache_entry(tmp_path, network="b", container_id="c1", ifname="eth0", config=b"")
    results_dir.joinpath(".tmp.0123").write_bytes(encode_cache_entry(network="b", container_id="c1", ifname="eth9",
                                                                      config=b""))
    results_dir.joinpath("a-c1-eth1").write_text('{"cniVersion":"1.0.0"}')  # legacy
    results_dir.joinpath("a-c1-eth2").write_bytes(encode_cache_entry(network="a", container_id="c2", ifname="eth2",
                                                                      config=b""))  # another container's
    results_dir.joinpath("a-c1-eth3").write_bytes(encode_cache_entry(network="x", container_id="c1", ifname="eth3",
                                                                      config=b""))  # another network's
    os.mkfifo(results_dir / "a-c1-eth4")  # unreadable
    results_dir.joinpath("a-c1-eth5").write_bytes(b"")  # removed while listing (below)
    write_cache_entry(tmp_path, network="a", container_id="c1", ifname="eth6", config=b"")
    assert [(a.network, a.ifname) for a in list_cache_entries(tmp_path, "c1")] == [
        ("x", "eth3"), ("a", "eth6"), ("b", "eth0")]
    assert [a.ifname for a in list_cache_entries(tmp_path, network="b")] == ["eth0"]
    assert [a.ifname for a in list_cache_entries(tmp_path, "c1", network="a")] == ["eth6"]
    real_listdir = os.listdir

    def listdir_then_removed(path: str) -> list[str]:
        names = real_listdir(path)
        os.unlink(os.path.join(path, "a-c1-eth5"))  # a DEL that runs meanwhile
        return names

    monkeypatch.setattr(os, "listdir", listdir_then_removed)
    assert [a.ifname for a in list_cache_entries(tmp_path, "c1")] == ["eth3", "eth6", "eth0"]


def _entry_with(**fields: object) -> bytes:
    document: dict[str, object] = {"kind": CACHE_KIND, "containerId": "c", "config": "e30=", "ifName": "eth0",
                                   "networkName": "n"}
    document.update(fields)
    return json.dumps(document).encode()


def test_fields_are_read_as_go_fills_a_struct() -> None:
    # null leaves a field empty; cniArgs elements are [2]string: null or missing strings stay empty, extra ones
    # are dropped; a null pair is a pair of empty strings; base64 may hold line breaks.
    entry = decode_cache_entry(_entry_with(config="e3\r\n0=", netns=None, capabilityArgs=None, result=None,
                                           cniArgs=[None, ["A"], [None, "B"], ["C", "D", "E"], []]))
    assert not entry.legacy
    assert entry.config == b"{}" and entry.netns == ""
    assert entry.cni_args == (("", ""), ("A", ""), ("", "B"), ("C", "D"), ("", ""))
    assert entry.capability_args == {} and entry.raw_result is None and entry.result is None
    assert decode_cache_entry(_entry_with(config=None)).config == b""
    assert decode_cache_entry(_entry_with(cniArgs=None)).cni_args == ()


@pytest.mark.parametrize("fields", [
    {"config": "e30=!"},  # not base64 (Go refuses the byte)
    {"config": 5},
    {"cniArgs": ["AB"]},  # a string is no [2]string
    {"cniArgs": [[1, "x"]]},
    {"cniArgs": {"A": "B"}},
    {"netns": 5},
    {"capabilityArgs": []},
    {"result": "10.1.2.3"},
    {"kind": None},
])
def test_a_field_go_cannot_decode_makes_the_file_a_legacy_cache(fields: dict[str, object]) -> None:
    entry = decode_cache_entry(_entry_with(**fields), network="from", container_id="the", ifname="name")
    assert entry.legacy and entry.key == ("from", "the", "name")


def test_a_current_entry_without_a_result_has_no_cached_result(tmp_path: Path) -> None:
    written = write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth0", config=b"{}")
    assert written.raw_result is None and written.result is None
    assert read_cached_result(tmp_path, "n", "c", "eth0") is None
    assert read_cached_result(tmp_path, "n", "c", "eth0", "1.0.0") is None


def test_a_repeated_key_counts_as_go_decodes_it() -> None:
    # The last key counts, whatever its case; a null leaves a string as it was but empties a map.
    data = (b'{"kind":"cniCacheV1","containerId":"c","config":"","ifName":"eth0","networkName":"n",'
            b'"netns":"/x","NETNS":null,"capabilityArgs":{"a":1},"capabilityargs":null,'
            b'"result":{"cniVersion":"1.0.0"},"RESULT":null}')
    entry = decode_cache_entry(data)
    assert not entry.legacy and entry.netns == "/x"
    assert entry.capability_args == {} and entry.raw_result is None


def test_what_is_not_a_result_document_gives_a_legacy_entry_without_result() -> None:
    for data in (b"garbage", b"[]", b"[1]", b'"text"', b""):
        entry = decode_cache_entry(data)
        assert entry.legacy and entry.key == ("", "", "") and entry.path == ""
        assert entry.raw_result is None and entry.result is None
    legacy = decode_cache_entry(b'{"cniVersion":"0.4.0","dns":{},"x":[1]}')
    assert legacy.legacy and legacy.raw_result == {"cniVersion": "0.4.0", "dns": {}, "x": (1,)}


def test_an_entry_is_read_only() -> None:
    entry = decode_cache_entry(encode_cache_entry(network="n", container_id="c", ifname="eth0", config=b"",
                                                  capability_args={"portMappings": [{"hostPort": 80}]}))
    with pytest.raises(TypeError):
        entry.capability_args["x"] = 1  # type: ignore[index]
    assert entry.capability_args["portMappings"] == ({"hostPort": 80},)
    with pytest.raises(TypeError):
        entry.capability_args["portMappings"][0]["hostPort"] = 81
    copy = entry.capability_args_dict()
    copy["portMappings"][0]["hostPort"] = 81  # a plain copy is the caller's to change
    assert entry.capability_args["portMappings"][0]["hostPort"] == 80


def test_a_cache_directory_that_cannot_be_made_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("not a directory")
    with pytest.raises(IOFailureError) as caught:
        write_cache_entry(tmp_path, network="n", container_id="c", ifname="eth0", config=b"")
    assert caught.value.msg == f"failed to create directory {tmp_path / 'results'}: File exists"
