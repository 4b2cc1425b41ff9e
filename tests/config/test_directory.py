"""Loading networks from a configuration directory: libcni's lookup and the runtime listing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnicore._errors import CNIError, DecodingError, InvalidConfigError, IOFailureError
from cnicore.config import (
    check_unique_network_names,
    conf_files,
    find_duplicate_networks,
    list_networks,
    load_conf,
    load_network_config,
    load_network_config_list,
    load_plugin_config,
)

CONFLIST = b"""{
  "name": "some-network",
  "cniVersion": "0.2.0",
  "disableCheck": true,
  "plugins": [
    {"type": "host-local", "subnet": "10.0.0.1/24"},
    {"type": "bridge", "mtu": 1400},
    {"type": "port-forwarding", "ports": {"20.0.0.1:8080": "80"}}
  ]
}"""
SIBLING = b'{"type": "bro-check-out-my-plugin", "subnet": "10.0.0.1/24"}'


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "net.d"
    _write(directory / "50-whatever.conflist", CONFLIST)
    return directory


# --- LoadConf -------------------------------------------------------------------------------------

def test_load_conf_finds_by_name(tmp_path: Path) -> None:
    data = b'{ "name": "some-plugin", "type": "foobar", "some-key": "some-value" }'
    _write(tmp_path / "50-whatever.conf", data)
    plugin = load_conf(tmp_path, "some-plugin")
    assert (plugin.name, plugin.type, plugin.bytes) == ("some-plugin", "foobar", data)
    assert plugin.path == str(tmp_path / "50-whatever.conf")


def test_load_conf_reads_json_files(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.json", b'{ "name": "some-plugin", "some-key": "some-value", "type": "foobar" }')
    assert load_conf(tmp_path, "some-plugin").type == "foobar"


def test_load_conf_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_conf(tmp_path / "gone", "some-plugin")
    assert info.value.msg == f"no net configurations found in {tmp_path / 'gone'}"


def test_load_conf_no_match(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conf", b'{"name": "some-plugin", "type": "foobar"}')
    with pytest.raises(InvalidConfigError) as info:
        load_conf(tmp_path, "some-other-plugin")
    assert info.value.msg == f'no net configuration with name "some-other-plugin" in {tmp_path}'


def test_load_conf_malformed_file_aborts(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conf", b'{"name": "some-plugin", "type": "foobar"}')
    _write(tmp_path / "00-bad.conf", b"{")
    with pytest.raises(DecodingError) as info:
        load_conf(tmp_path, "some-plugin")
    assert info.value.msg == "error parsing configuration: unexpected end of JSON input"
    assert str(tmp_path / "00-bad.conf") in info.value.details


def test_load_conf_ignores_nested_dirs(tmp_path: Path) -> None:
    _write(tmp_path / "subdir1" / "subdir2" / "90-deep.conf", b'{ "name": "deep", "some-key": "some-value" }')
    with pytest.raises(InvalidConfigError) as info:
        load_conf(tmp_path, "deep")
    assert info.value.msg.startswith("no net configuration")


def test_conf_from_missing_file() -> None:
    with pytest.raises(IOFailureError) as info:
        load_plugin_config("/tmp/nope/not-here")
    assert info.value.msg.startswith("error reading /tmp/nope/not-here: open /tmp/nope/not-here")
    with pytest.raises(IOFailureError) as info:
        load_network_config_list("/tmp/nope/not-here")
    assert info.value.msg.startswith("error reading /tmp/nope/not-here: open /tmp/nope/not-here")


# --- LoadNetworkConf ------------------------------------------------------------------------------

def test_load_network_config(conf_dir: Path) -> None:
    network = load_network_config(conf_dir, "some-network")
    assert (network.name, network.cni_version, network.disable_check) == ("some-network", "0.2.0", True)
    assert network.bytes == CONFLIST
    assert len(network.plugins) == 3
    assert network.path == str(conf_dir / "50-whatever.conflist")


def test_conflist_preferred_over_same_named_conf(conf_dir: Path) -> None:
    _write(conf_dir / "49-whatever.conf", b'{"name": "some-network", "cniVersion": "0.2.0", "type": "bridge"}')
    assert len(load_network_config(conf_dir, "some-network").plugins) == 3
    (conf_dir / "50-whatever.conflist").unlink()
    network = load_network_config(conf_dir, "some-network")
    assert [p.type for p in network.plugins] == ["bridge"]
    assert network.path == str(conf_dir / "49-whatever.conf")


def test_load_network_config_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_network_config(tmp_path / "gone", "some-network")
    assert info.value.msg == f"no net configurations found in {tmp_path / 'gone'}"


def test_load_network_config_no_match_with_only_lists(conf_dir: Path) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_network_config(conf_dir, "some-other-network")
    assert info.value.msg == f'no net configuration with name "some-other-network" in {conf_dir}'


def test_load_network_config_malformed_list_aborts(conf_dir: Path) -> None:
    _write(conf_dir / "00-bad.conflist", b"{")
    with pytest.raises(DecodingError) as info:
        load_network_config(conf_dir, "some-plugin")
    assert info.value.msg == "error parsing configuration list: unexpected end of JSON input"


def test_load_network_config_ignores_nested_dirs(conf_dir: Path) -> None:
    _write(conf_dir / "subdir1" / "subdir2" / "90-deep.conflist",
           b'{"name": "deep", "cniVersion": "0.2.0", "plugins": [{"type": "host-local"},]}')
    with pytest.raises(InvalidConfigError) as info:
        load_network_config(conf_dir, "deep")
    assert info.value.msg.startswith("no net configuration with name")


def _list(**extra: object) -> bytes:
    import json

    document: dict[str, object] = {"name": "some-network", "cniVersion": "0.4.0"}
    document.update(extra)
    return json.dumps(document).encode()


INLINE = [{"type": "host-local", "subnet": "10.0.0.1/24"}]


def test_load_only_inlined_plugins_ignores_the_sibling_folder(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conflist", _list(loadOnlyInlinedPlugins=True, plugins=INLINE))
    _write(tmp_path / "some-network" / "funky-second-plugin.conf", SIBLING)
    network = load_network_config(tmp_path, "some-network")
    assert network.load_only_inlined_plugins
    assert [p.type for p in network.plugins] == ["host-local"]


def test_sibling_plugins_are_appended(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conflist", _list(plugins=INLINE))
    _write(tmp_path / "some-network" / "funky-second-plugin.conf", SIBLING)
    _write(tmp_path / "some-network" / "00-first.conf", b'{"type": "tuning"}')
    _write(tmp_path / "some-network" / "ignored.json", b'{"type": "ignored"}')
    network = load_network_config(tmp_path, "some-network")
    assert not network.load_only_inlined_plugins
    assert [p.type for p in network.plugins] == ["host-local", "tuning", "bro-check-out-my-plugin"]
    assert network.plugins[2].bytes == SIBLING  # sibling files keep their own bytes
    assert network.bytes == _list(plugins=INLINE)


def test_plugins_only_from_the_sibling_folder(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conflist", _list(loadOnlyInlinedPlugins=False))
    _write(tmp_path / "some-network" / "funky-second-plugin.conf", SIBLING)
    network = load_network_config(tmp_path, "some-network")
    assert [p.type for p in network.plugins] == ["bro-check-out-my-plugin"]


def test_no_plugins_anywhere(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conflist", _list())
    with pytest.raises(InvalidConfigError) as info:
        load_network_config(tmp_path, "some-network")
    assert info.value.msg == "no plugin configs found"
    (tmp_path / "some-network").mkdir()
    with pytest.raises(InvalidConfigError):
        load_network_config(tmp_path, "some-network")


def test_empty_sibling_folder_is_fine(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conflist", _list(plugins=INLINE))
    (tmp_path / "some-network").mkdir()
    assert len(load_network_config(tmp_path, "some-network").plugins) == 1


def test_sibling_plugin_without_type(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conflist", _list(plugins=INLINE))
    _write(tmp_path / "some-network" / "x.conf", b'{"subnet": "10.0.0.0/24"}')
    with pytest.raises(InvalidConfigError) as info:
        load_network_config(tmp_path, "some-network")
    assert info.value.msg == "error parsing configuration: missing 'type'"
    assert str(tmp_path / "some-network" / "x.conf") in info.value.details


# --- ConfFiles --------------------------------------------------------------------------------------

def test_conf_files_filters_exact_extensions(tmp_path: Path) -> None:
    for name in ["b.conf", "a.conflist", "c.json", "d.conf.bak", "e.CONF", "f", ".conf", "g.conf~"]:
        _write(tmp_path / name, b"{}")
    (tmp_path / "dir.conf").mkdir()
    assert conf_files(tmp_path, (".conf", ".conflist", ".json")) == [
        str(tmp_path / n) for n in [".conf", "a.conflist", "b.conf", "c.json"]]
    assert conf_files(tmp_path / "missing", (".conf",)) == []


# --- the runtime listing ----------------------------------------------------------------------------

def test_list_networks_orders_by_full_path_and_reports_failures(tmp_path: Path) -> None:
    _write(tmp_path / "10-a.conflist", b'{"name": "alist", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}')
    _write(tmp_path / "10-a.conf", b'{"name": "aconf", "cniVersion": "1.0.0", "type": "bridge"}')
    _write(tmp_path / "99-x.json", b'{"name": "xjson", "cniVersion": "0.4.0", "type": "ptp"}')
    _write(tmp_path / "20-broken.conflist", b"{")
    _write(tmp_path / "30-badname.conf", b'{"name": "../up", "type": "bridge"}')
    _write(tmp_path / "40-notype.conf", b'{"name": "nt"}')
    listing = list_networks(tmp_path)
    assert [n.name for n in listing.networks] == ["aconf", "alist", "xjson"]
    assert [os.path.basename(p) for p, _ in listing.failures] == [
        "20-broken.conflist", "30-badname.conf", "40-notype.conf"]
    assert [e.code for _, e in listing.failures] == [6, 7, 7]
    assert listing.default is not None and listing.default.name == "aconf"
    assert listing.by_name("xjson") is not None and listing.by_name("nope") is None
    # Single configs are upconverted to one-plugin lists.
    assert listing.networks[0].bytes.startswith(b'{"cniVersion":"1.0.0","name":"aconf","plugins":[')


def test_list_networks_missing_dir(tmp_path: Path) -> None:
    listing = list_networks(tmp_path / "gone")
    assert listing.networks == () and listing.failures == ()


def test_duplicates_name_both_files(tmp_path: Path) -> None:
    _write(tmp_path / "10-one.conflist", b'{"name": "dup", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}')
    _write(tmp_path / "20-two.conf", b'{"name": "dup", "cniVersion": "1.0.0", "type": "ptp"}')
    _write(tmp_path / "30-other.conf", b'{"name": "other", "cniVersion": "1.0.0", "type": "ptp"}')
    networks = list_networks(tmp_path).networks
    duplicates = find_duplicate_networks(networks)
    assert len(duplicates) == 1
    dup = duplicates[0]
    assert (dup.name, dup.first, dup.second) == (
        "dup", str(tmp_path / "10-one.conflist"), str(tmp_path / "20-two.conf"))
    with pytest.raises(InvalidConfigError) as info:
        check_unique_network_names(networks)
    assert info.value.code == 7
    assert str(tmp_path / "10-one.conflist") in info.value.msg and str(tmp_path / "20-two.conf") in info.value.msg
    check_unique_network_names(networks[1:])


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    plain = _write(tmp_path / "plain", b"{}")
    with pytest.raises(IOFailureError) as info:
        list_networks(plain)
    assert info.value.code == 5 and str(plain) in info.value.msg


def test_unreadable_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any directory")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    try:
        with pytest.raises(CNIError) as info:
            list_networks(locked)
        assert info.value.code == 5
    finally:
        locked.chmod(0o700)


def test_lookup_validates_only_the_network_found(tmp_path: Path) -> None:
    _write(tmp_path / "10-odd.conflist", b'{"name": "odd name", "cniVersion": "1.0.0", "plugins": [{"type": "x"}]}')
    _write(tmp_path / "20-good.conflist", b'{"name": "good", "cniVersion": "1.0.0", "plugins": [{"type": "x"}]}')
    _write(tmp_path / "30-odd.conf", b'{"name": "odd/conf", "type": "x"}')
    _write(tmp_path / "40-good.conf", b'{"name": "goodconf", "type": "x"}')
    # Like libcni, files that parse do not stop the lookup of another name...
    assert load_network_config(tmp_path, "good").name == "good"
    assert load_network_config(tmp_path, "goodconf").name == "goodconf"
    # ...but the network found is validated.
    for name in ("odd name", "odd/conf"):
        with pytest.raises(InvalidConfigError) as info:
            load_network_config(tmp_path, name)
        assert info.value.msg == "invalid characters found in network name"
        assert load_network_config(tmp_path, name, validate=False).name == name


def test_sibling_path_that_is_a_file(tmp_path: Path) -> None:
    _write(tmp_path / "50-whatever.conflist", _list(plugins=INLINE))
    _write(tmp_path / "some-network", b"not a folder")
    with pytest.raises(IOFailureError) as info:
        load_network_config(tmp_path, "some-network")
    assert info.value.msg.startswith(f"failed to read plugin config files in {tmp_path / 'some-network'}: ")


def test_a_directory_named_like_a_config_is_skipped_but_a_symlink_to_one_fails(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "10-dir.conf").mkdir()
    (tmp_path / "20-link.conf").symlink_to(tmp_path / "real")
    listing = list_networks(tmp_path)
    assert listing.networks == ()
    assert [(os.path.basename(p), e.code) for p, e in listing.failures] == [("20-link.conf", 5)]
    assert listing.failures[0][1].msg.endswith("is a directory")
