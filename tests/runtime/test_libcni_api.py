"""libcni's api_test cases, against exec'd test plugins that record their stdin and environment."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import clean_env, records, write_conflist

from cnicore import (
    IncompatibleVersionError,
    InvalidConfigError,
    PluginNotAvailableError,
    TryAgainLaterError,
)
from cnicore.runtime import Runtime, encode_cache_entry, list_cache_entries
from cnicore.spec import parse_result

CID = "some-container-id"
NETNS = "/some/netns/path"
PORTS = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]


def _runtime(dirs: dict[str, Path], **kwargs: Any) -> Runtime:
    env = {**clean_env(), "LC_ALL": "C.UTF-8", "FOO": "BAR"}
    return Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"])], cache_dir=dirs["cache"],
                   environ=env, **kwargs)


def _plugin(dirs: dict[str, Path], type_: str = "noop", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "record": str(dirs["cache"].parent / "calls.jsonl"), **extra}


def _calls(dirs: dict[str, Path]) -> list[dict[str, Any]]:
    return records(dirs["cache"].parent / "calls.jsonl")


def test_add_passes_exactly_libcnis_stdin_and_environment(dirs: dict[str, Path]) -> None:
    plugin = _plugin(dirs, capabilities={"portMappings": True, "ipRanges": False, "bandwidth": True},
                     someKey="x", nested={"b": 2, "a": 1})
    write_conflist(dirs["net.d"], "apitest", [plugin], version="1.0.0")
    with _runtime(dirs) as rt:
        rt.attach(CID, "apitest", NETNS, "eth0", args=[("FOO", "BAR"), ("ABC", "123")],
                  capability_args={"portMappings": PORTS, "ipRanges": [[{"subnet": "10.0.0.0/24"}]], "other": 1})
    (call,) = _calls(dirs)
    expected_stdin = dict(plugin, name="apitest", cniVersion="1.0.0", runtimeConfig={"portMappings": PORTS})
    # Compact, keys sorted at every level, capabilities left in: libcni's InjectConf.
    assert call["stdin"] == json.dumps(expected_stdin, sort_keys=True, separators=(",", ":"))
    assert call["env"] == {**clean_env(), "LC_ALL": "C.UTF-8", "FOO": "BAR", "CNI_COMMAND": "ADD",
                           "CNI_CONTAINERID": CID, "CNI_NETNS": NETNS, "CNI_IFNAME": "eth0",
                           "CNI_ARGS": "FOO=BAR;ABC=123", "CNI_PATH": str(dirs["bin"])}


def test_no_capability_in_common_means_no_runtime_config_key(dirs: dict[str, Path]) -> None:
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs, capabilities={"portMappings": True})])
    with _runtime(dirs) as rt:
        rt.attach(CID, "apitest", NETNS, "eth0", capability_args={"ipRanges": []})
        rt.attach("other", "apitest", NETNS, "eth0")
    assert all("runtimeConfig" not in json.loads(c["stdin"]) for c in _calls(dirs))


def test_the_cache_holds_libcnis_entry_and_prev_result_chains(dirs: dict[str, Path]) -> None:
    first = _plugin(dirs, result={"cniVersion": "1.0.0", "ips": [{"address": "10.1.2.3/24", "gateway": "10.1.2.1"}]})
    path = write_conflist(dirs["net.d"], "apitest", [first, _plugin(dirs, "second")])
    with _runtime(dirs) as rt:
        result = rt.attach(CID, "apitest", NETNS, "eth0", args={"FOO": "BAR"}, capability_args={"x": 1})
        cached = rt.attachments(CID)
    add1, add2 = _calls(dirs)
    assert "prevResult" not in json.loads(add1["stdin"])
    assert json.loads(add2["stdin"])["prevResult"] == first["result"]
    assert result == parse_result(first["result"])
    (entry,) = cached
    assert Path(entry.path).read_bytes() == encode_cache_entry(
        network="apitest", container_id=CID, ifname="eth0", config=path.read_bytes(), netns=NETNS,
        cni_args=[("FOO", "BAR")], capability_args={"x": 1}, result=result)
    assert base64.b64decode(json.loads(Path(entry.path).read_text())["config"]) == path.read_bytes()


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_del_and_check_get_the_cached_result_from_0_4_0_on(dirs: dict[str, Path], version: str) -> None:
    result = {"cniVersion": version, "ips": [{"address": "10.1.2.3/24"}]}
    if version.startswith("0."):
        result["ips"][0]["version"] = "4"  # type: ignore[index]
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs, result=result)], version=version)
    with _runtime(dirs) as rt:
        rt.attach(CID, "apitest", NETNS, "eth0")
        if version == "0.3.1":
            with pytest.raises(IncompatibleVersionError, match=re.escape('configuration version "0.3.1" does '
                                                                         "not support the CHECK command")):
                rt.check(CID, "apitest", NETNS, "eth0")
        else:
            rt.check(CID, "apitest", NETNS, "eth0")
        rt.detach(CID, "apitest", NETNS, "eth0")
        assert rt.attachments() == []
        rt.detach(CID, "apitest", NETNS, "eth0")  # a second DEL succeeds, with no prevResult
    calls = _calls(dirs)
    commands = [c["command"] for c in calls]
    assert commands == (["ADD", "DEL", "DEL"] if version == "0.3.1" else ["ADD", "CHECK", "DEL", "DEL"])
    expected_prev = parse_result(result).to_object()
    for call in calls[1:-1]:
        stdin = json.loads(call["stdin"])
        if version == "0.3.1":
            assert "prevResult" not in stdin
        else:
            assert stdin["prevResult"] == expected_prev
    assert "prevResult" not in json.loads(calls[-1]["stdin"])


def test_an_invalid_cache_is_tolerated_by_del_but_an_error_for_check(dirs: dict[str, Path]) -> None:
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs)], version="1.0.0")
    with _runtime(dirs) as rt:
        rt.attach(CID, "apitest", NETNS, "eth0")
        (entry,) = rt.attachments()
        Path(entry.path).write_text('{"kind":"cniCacheV1","result":{"cniVersion":"1.0.0","ips":"garbage"}}')
        with pytest.raises(Exception, match=re.escape('failed to get network "apitest" cached result: ')):
            rt.check(CID, "apitest", NETNS, "eth0")
        rt.detach(CID, "apitest", NETNS, "eth0")
        assert not Path(entry.path).exists()
    assert "prevResult" not in json.loads(_calls(dirs)[-1]["stdin"])


def test_a_failing_second_plugin_caches_nothing_and_the_list_is_deleted(dirs: dict[str, Path]) -> None:
    failing = _plugin(dirs, "second", name="named", fail={"ADD": {"code": 11, "msg": "busy", "details": "later"}})
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs), failing, _plugin(dirs, "third")])
    with _runtime(dirs) as rt, pytest.raises(TryAgainLaterError) as caught:
        rt.attach(CID, "apitest", NETNS, "eth0")
    assert caught.value.code == 11
    assert str(caught.value) == 'plugin type="second" name="named" failed (add): busy; later'
    assert list_cache_entries(dirs["cache"]) == []
    assert not list((dirs["cache"] / "cnicore" / "pending").iterdir())  # the clean-up worked: no journal
    assert [(c["type"], c["command"]) for c in _calls(dirs)] == [
        ("noop", "ADD"), ("second", "ADD"), ("third", "DEL"), ("second", "DEL"), ("noop", "DEL")]


def test_a_failed_clean_up_stays_in_the_journal_until_recover_succeeds(dirs: dict[str, Path]) -> None:
    broken_flag = dirs["cache"].parent / "broken"
    broken_flag.touch()
    broken = _plugin(dirs, "second", failWhile=str(broken_flag),
                     fail={"ADD": {"code": 7, "msg": "no"}, "DEL": {"code": 5, "msg": "io"}})
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs), broken])
    with _runtime(dirs) as rt:
        with pytest.raises(InvalidConfigError) as caught:
            rt.attach(CID, "apitest", NETNS)
        assert any("clean-up DEL failed" in note for note in caught.value.__notes__)
        report = rt.recover()
        assert report.released == () and len(report.errors) == 1
        assert str(report.errors[0]).endswith('plugin type="second" failed (delete): io')
        broken_flag.unlink()  # the plugin works again
        report = rt.recover()
        assert [(p.container_id, p.ifname) for p in report.released] == [(CID, "eth0")]
        assert rt.recover() == type(report)()
        rt.attach(CID, "apitest", NETNS)
        assert [a.ifname for a in rt.attachments(CID)] == ["eth0"]
    assert [(c["type"], c["command"]) for c in _calls(dirs)] == [
        ("noop", "ADD"), ("second", "ADD"), ("second", "DEL"), ("noop", "DEL"),  # the failed clean-up
        ("second", "DEL"),  # the first recover()
        ("second", "DEL"), ("noop", "DEL"),  # the second
        ("noop", "ADD"), ("second", "ADD")]


def test_timeouts_kill_the_plugin_and_say_try_again(dirs: dict[str, Path]) -> None:
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs, sleep=60)])
    expected = re.escape("did not answer ADD within 0.5 s")
    with _runtime(dirs, timeout=0.5) as rt, pytest.raises(TryAgainLaterError, match=expected):
        rt.attach(CID, "apitest", NETNS, "eth0")
    assert [c["command"] for c in _calls(dirs)] == ["ADD", "DEL"]


def test_gc_sequence(dirs: dict[str, Path]) -> None:
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs), _plugin(dirs, "second")], version="1.1.0")
    with _runtime(dirs) as rt:
        rt.attach(CID, "apitest", NETNS, "eth0", args={"FOO": "BAR"}, capability_args={"k": "v"})
        report = rt.gc([(CID, "eth0")])
        assert report.removed == () and report.errors == ()
        assert report.valid == {"apitest": ((CID, "eth0"),)}
        report = rt.gc([])
        assert [(a.container_id, a.ifname) for a in report.removed] == [(CID, "eth0")]
        assert rt.attachments() == []
    calls = _calls(dirs)
    assert [(c["type"], c["command"]) for c in calls] == [
        ("noop", "ADD"), ("second", "ADD"), ("noop", "GC"), ("second", "GC"),
        ("second", "DEL"), ("noop", "DEL"), ("noop", "GC"), ("second", "GC")]
    gc1 = json.loads(calls[2]["stdin"])
    assert gc1["cni.dev/valid-attachments"] == gc1["cni.dev/attachments"] == [{"containerID": CID, "ifname": "eth0"}]
    assert calls[2]["cni"] == {"CNI_COMMAND": "GC", "CNI_CONTAINERID": "", "CNI_NETNS": "", "CNI_IFNAME": "",
                               "CNI_ARGS": "", "CNI_PATH": str(dirs["bin"])}
    stale_del = calls[4]
    assert stale_del["cni"]["CNI_NETNS"] == NETNS and stale_del["cni"]["CNI_ARGS"] == "FOO=BAR"
    assert json.loads(stale_del["stdin"])["prevResult"]["cniVersion"] == "1.1.0"
    gc2 = json.loads(calls[6]["stdin"])
    assert gc2["cni.dev/valid-attachments"] == gc2["cni.dev/attachments"] == []


def test_gc_without_live_list_keeps_every_attachment_and_disable_gc_skips(dirs: dict[str, Path]) -> None:
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs)], version="1.1.0")
    write_conflist(dirs["net.d"], "off", [_plugin(dirs)], version="1.1.0", disableGC=True)
    with _runtime(dirs) as rt:
        rt.attach("c1", "apitest", NETNS)
        rt.attach("c2", "apitest", NETNS)
        rt.attach("c1", "off", NETNS)
        report = rt.gc()
        assert report.skipped == ("off",) and report.removed == ()
        assert report.valid == {"apitest": (("c1", "eth0"), ("c2", "eth0"))}
        report = rt.gc(["c2"], networks=["apitest"])
        assert [a.container_id for a in report.removed] == ["c1"]
    assert [c["command"] for c in _calls(dirs)].count("GC") == 2


def test_status_propagates_code_50_and_stops_at_the_first_error(dirs: dict[str, Path]) -> None:
    sick = _plugin(dirs, fail={"STATUS": {"code": 50, "msg": "plugin not available"}})
    write_conflist(dirs["net.d"], "apitest", [sick, _plugin(dirs, "second")], version="1.1.0")
    write_conflist(dirs["net.d"], "old", [sick], version="1.0.0")
    with _runtime(dirs) as rt:
        with pytest.raises(PluginNotAvailableError) as caught:
            rt.status("apitest")
        assert (caught.value.code, str(caught.value)) == (50, "plugin not available")
        rt.status("old")  # before 1.1.0: nothing is called
    assert [(c["type"], c["command"]) for c in _calls(dirs)] == [("noop", "STATUS")]


def test_each_interface_has_its_own_cache_file(dirs: dict[str, Path]) -> None:
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs)])
    with _runtime(dirs) as rt:
        rt.attach(CID, "apitest", NETNS, "eth0")
        rt.attach(CID, "apitest", NETNS, "eth1")
        files = sorted((dirs["cache"] / "results").iterdir())
        assert [f.name for f in files] == [f"apitest-{CID}-eth0", f"apitest-{CID}-eth1"]
        for file, ifname in zip(files, ("eth0", "eth1"), strict=True):
            document = json.loads(file.read_text())
            assert (document["kind"], document["ifName"]) == ("cniCacheV1", ifname)
        rt.detach(CID, "apitest")  # no ifname: every cached interface of the container on the network
        assert rt.attachments() == []


def test_disable_check_answers_without_calling_plugins(dirs: dict[str, Path]) -> None:
    write_conflist(dirs["net.d"], "apitest", [_plugin(dirs)], version="1.0.0", disableCheck=True)
    with _runtime(dirs) as rt:
        rt.attach(CID, "apitest", NETNS, "eth0")
        rt.check(CID, "apitest", NETNS, "eth0")
    assert [c["command"] for c in _calls(dirs)] == ["ADD"]
