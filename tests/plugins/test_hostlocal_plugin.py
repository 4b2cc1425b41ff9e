"""The host-local plugin: IPAM results per version, DEL/CHECK/GC, and the exec boundary's error codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from cnicore import InvalidConfigError, NotFoundError
from cnicore.plugins import HostLocalPlugin, PluginRequest, reference_code, run_plugin
from cnicore.spec import ALL_VERSIONS


def _config(tmp_path: Path, version: str | None = "1.0.0", **ipam: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"name": "net1", "type": "host-local",
                            "ipam": {"type": "host-local", "subnet": "10.1.2.0/24", "dataDir": str(tmp_path / "d"),
                                     "routes": [{"dst": "0.0.0.0/0"}], **ipam}}
    if version is not None:
        conf["cniVersion"] = version
    return conf


def _request(command: str, config: dict[str, Any], cid: str = "c1", ifname: str = "eth0") -> PluginRequest:
    return PluginRequest(command=command, container_id=cid, ifname=ifname, config=config,
                         config_bytes=json.dumps(config).encode(), cni_version=config.get("cniVersion", ""))


def _exec(command: str, config: dict[str, Any] | bytes, cid: str = "c1") -> tuple[int, Any]:
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    out = io.BytesIO()
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x", "CNI_IFNAME": "eth0",
           "CNI_PATH": "/opt/cni/bin"}
    plugin = HostLocalPlugin()
    try:
        code = run_plugin(plugin, environ=env, stdin=io.BytesIO(data), stdout=out, stderr=io.BytesIO(),
                          reference_codes=True)
    finally:
        plugin.close()
    text = out.getvalue().decode()
    return code, json.loads(text) if text else None


def test_add_returns_the_ipam_result_without_interfaces(tmp_path: Path) -> None:
    plugin = HostLocalPlugin()
    result = plugin.add(_request("ADD", _config(tmp_path)))
    plugin.close()
    assert json.loads(result.as_version("1.0.0").to_json()) == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.1.2.2/24", "gateway": "10.1.2.1"}],
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    assert (tmp_path / "d" / "net1" / "10.1.2.2").read_bytes() == b"c1\r\neth0"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_exec_add_prints_the_config_version(tmp_path: Path, version: str) -> None:
    code, doc = _exec("ADD", _config(tmp_path, version))
    assert code == 0
    assert doc["cniVersion"] == version
    if version in ("0.1.0", "0.2.0"):
        assert doc["ip4"] == {"ip": "10.1.2.2/24", "gateway": "10.1.2.1", "routes": [{"dst": "0.0.0.0/0"}]}
    elif version.startswith("0."):
        assert doc["ips"] == [{"version": "4", "address": "10.1.2.2/24", "gateway": "10.1.2.1"}]
    else:
        assert doc["ips"] == [{"address": "10.1.2.2/24", "gateway": "10.1.2.1"}]


def test_missing_version_prints_010(tmp_path: Path) -> None:
    code, doc = _exec("ADD", _config(tmp_path, None))
    assert code == 0
    assert doc == {"cniVersion": "0.1.0", "ip4": {"ip": "10.1.2.2/24", "gateway": "10.1.2.1",
                                                  "routes": [{"dst": "0.0.0.0/0"}]}, "dns": {}}


def test_del_releases_and_check_finds(tmp_path: Path) -> None:
    plugin = HostLocalPlugin()
    config = _config(tmp_path)
    plugin.add(_request("ADD", config))
    plugin.check(_request("CHECK", config))
    plugin.delete(_request("DEL", config))
    plugin.delete(_request("DEL", config))
    with pytest.raises(NotFoundError, match=r"^host-local: Failed to find address added by container c1$"):
        plugin.check(_request("CHECK", config))
    plugin.close()
    assert not (tmp_path / "d" / "net1" / "10.1.2.2").exists()


def test_gc_keeps_valid_attachments_only(tmp_path: Path) -> None:
    plugin = HostLocalPlugin()
    config = _config(tmp_path, "1.1.0")
    for cid in ("a", "b", "c"):
        plugin.add(_request("ADD", config, cid=cid))
    gc_config = {**config, "cni.dev/valid-attachments": [{"containerID": "b", "ifname": "eth0"}]}
    plugin.gc(_request("GC", gc_config, cid=""))
    plugin.close()
    left = sorted(p.read_bytes() for p in (tmp_path / "d" / "net1").iterdir() if p.name.startswith("10."))
    assert left == [b"b\r\neth0"]


def test_gc_through_exec_and_bad_attachments(tmp_path: Path) -> None:
    config = _config(tmp_path, "1.1.0")
    assert _exec("ADD", config, cid="a")[0] == 0
    code, doc = _exec("GC", {**config, "cni.dev/valid-attachments": "nope"})
    assert code == 1 and doc["code"] == 999
    code, doc = _exec("GC", {**config, "cni.dev/valid-attachments": []})
    assert (code, doc) == (0, None)
    assert not (tmp_path / "d" / "net1" / "10.1.2.2").exists()
    code, doc = _exec("GC", _config(tmp_path, "1.0.0"))
    assert doc == {"code": 1, "msg": "config version does not allow GC"}


@pytest.mark.parametrize(("ipam", "msg"), [
    ({"subnet": "10.1.2.0/31"}, "invalid range set 0: Network 10.1.2.0/31 too small to allocate from"),
    ({"subnet": "10.1.2.5/24"}, "invalid range set 0: Network has host bits set. For a subnet mask of length 24 "
                                "the network address is 10.1.2.0"),
])
def test_config_errors_are_code_7_in_process_and_999_at_the_exec_boundary(tmp_path: Path, ipam: dict[str, Any],
                                                                          msg: str) -> None:
    config = _config(tmp_path, **ipam)
    with pytest.raises(InvalidConfigError) as caught:
        HostLocalPlugin().add(_request("ADD", config))
    assert caught.value.code == 7 and caught.value.msg == msg
    code, doc = _exec("ADD", config)
    assert code == 1 and doc["code"] == 999 and doc["msg"] == msg


def test_skeleton_errors_keep_their_codes(tmp_path: Path) -> None:
    code, doc = _exec("ADD", b"garbage")
    assert (code, doc["code"]) == (1, 6)
    code, doc = _exec("ADD", {"cniVersion": "1.0.0", "type": "host-local"})
    assert doc == {"code": 7, "msg": "missing network name"}


def test_reference_code_keeps_runtime_meaningful_codes() -> None:
    from cnicore import TryAgainLaterError, UnsupportedFieldError
    from cnicore.plugins import mark_delegated

    for exc in (TryAgainLaterError("busy"), UnsupportedFieldError("no")):
        assert reference_code(exc) is exc
    delegated = mark_delegated(InvalidConfigError("from a delegated plugin"))
    assert reference_code(delegated) is delegated
    mapped = reference_code(InvalidConfigError("bad", key="ipam.subnet", value="x"))
    assert (mapped.code, mapped.msg) == (999, "bad")
