"""The runtime with our plugins in process on the fake kernel: attach, detach, check, names, reloads, rollback."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import clean_env, records, reservations, write_conflist

from cnicore import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidEnvironmentError,
    InvalidInputError,
    NotFoundError,
    UnknownContainerError,
)
from cnicore._plugin_main import FakeState
from cnicore.backends import FakeLinkBackend
from cnicore.plugins import install_plugins
from cnicore.runtime import Runtime
from cnicore.spec import Result, Result020
from cnicore.spec._validate import MAX_CONTAINER_ID_BYTES

NS_A, NS_B = "/var/run/netns/cnt-a", "/var/run/netns/cnt-b"


def _bridge_net(dirs: dict[str, Path], name: str = "mynet", *, version: str = "1.0.0", subnet: str = "10.9.0.0/24",
                extra: list[dict[str, Any]] | None = None, masquerade: bool = False) -> Path:
    bridge = {"type": "bridge", "bridge": "cnt-br0", "isGateway": True, "ipMasq": masquerade,
              "ipam": {"type": "host-local", "subnet": subnet, "dataDir": str(dirs["data"])}}
    return write_conflist(dirs["net.d"], name, [bridge, {"type": "loopback"}, *(extra or [])], version=version)


def _container_links(fake: FakeLinkBackend, ns: str) -> list[str]:
    return sorted(link.name for link in fake.list_links(fake.open_namespace(ns)) if link.name != "lo")


def _veths(fake: FakeLinkBackend) -> list[str]:
    return sorted(link.name for link in fake.list_links(fake.host_namespace()) if link.kind == "veth")


def test_attach_and_detach_with_our_plugins_in_process(dirs: dict[str, Path], fake: FakeLinkBackend,
                                                       runtime: Runtime) -> None:
    _bridge_net(dirs, masquerade=True)
    first = runtime.attach("c1", "mynet", NS_A)
    second = runtime.attach("c1", "mynet", NS_A, result_version="0.2.0")
    assert isinstance(first, Result) and first.interfaces[2].name == "eth0"
    assert [str(ip.address) for ip in first.ips] == ["10.9.0.2/24"]
    # What a Mesos agent reads: the ip4 form.
    assert isinstance(second, Result020) and second.ip4 is not None and str(second.ip4.ip) == "10.9.0.3/24"
    assert [a.ifname for a in runtime.attachments("c1")] == ["eth0", "eth1"]
    assert _container_links(fake, NS_A) == ["eth0", "eth1"]
    assert reservations(dirs["data"], "mynet") == {"10.9.0.2": "c1\r\neth0", "10.9.0.3": "c1\r\neth1"}
    assert runtime.cached_result("c1", "mynet", "eth0") == first
    runtime.check("c1", "mynet", NS_A)  # both interfaces

    runtime.detach("c1", "mynet", ifname="eth0")  # netns, args from the cache
    assert _container_links(fake, NS_A) == ["eth1"]
    assert reservations(dirs["data"], "mynet") == {"10.9.0.3": "c1\r\neth1"}
    runtime.detach("c1", "mynet", ifname="eth0")  # again: fine
    runtime.detach("c1", "mynet")
    assert runtime.attachments() == [] and reservations(dirs["data"], "mynet") == {}
    assert _container_links(fake, NS_A) == [] and _veths(fake) == []
    assert not fake.get_link(fake.open_namespace(NS_A), "lo").admin_up  # loopback DEL ran too


def test_check_fails_after_damage(fake: FakeLinkBackend, dirs: dict[str, Path], runtime: Runtime) -> None:
    _bridge_net(dirs)
    runtime.attach("c1", "mynet", NS_A, "eth0")
    fake.delete_link(fake.open_namespace(NS_A), "eth0")
    with pytest.raises(Exception, match="CNI created interface in container eth0 not found"):
        runtime.check("c1", "mynet", NS_A, "eth0")


def test_del_without_the_namespace_still_releases_the_address(dirs: dict[str, Path], fake: FakeLinkBackend,
                                                              runtime: Runtime) -> None:
    _bridge_net(dirs)
    runtime.attach("c1", "mynet", NS_A, "eth0")
    runtime.attach("c2", "mynet", NS_B, "eth0")
    fake.remove_namespace(NS_A)  # the container is gone (a reboot, say)
    runtime.detach("c1", "mynet")
    runtime.detach("c2", "mynet", "")  # an explicitly empty netns: IPAM only
    assert reservations(dirs["data"], "mynet") == {}
    assert runtime.attachments() == []


def test_a_failed_add_is_rolled_back_including_the_address(dirs: dict[str, Path], fake: FakeLinkBackend,
                                                           runtime: Runtime) -> None:
    log = dirs["cache"].parent / "calls.jsonl"
    _bridge_net(dirs, extra=[{"type": "noop", "record": str(log), "fail": {"ADD": {"code": 999, "msg": "boom"}}}])
    with pytest.raises(Exception, match=re.escape('plugin type="noop" failed (add): boom')):
        runtime.attach("c1", "mynet", NS_A)
    assert reservations(dirs["data"], "mynet") == {}
    assert _container_links(fake, NS_A) == [] and _veths(fake) == []
    assert runtime.attachments() == [] and runtime.recover().released == ()
    assert [c["command"] for c in records(log)] == ["ADD", "DEL"]


def test_interface_names_are_allocated_once_under_concurrency(dirs: dict[str, Path], runtime: Runtime) -> None:
    ipam = {"type": "host-local", "subnet": "10.10.0.0/24", "dataDir": str(dirs["data"])}
    write_conflist(dirs["net.d"], "ipam", [{"type": "host-local", "ipam": ipam}])
    results: list[Any] = []
    errors: list[BaseException] = []

    def attach() -> None:
        try:
            results.append(runtime.attach("c1", "ipam", NS_A))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=attach) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(a.ifname for a in runtime.attachments("c1")) == [f"eth{i}" for i in range(8)]
    assert len({str(r.ips[0].address) for r in results}) == 8


def test_an_interface_in_use_is_refused_before_any_plugin_runs(dirs: dict[str, Path], fake: FakeLinkBackend,
                                                               runtime: Runtime) -> None:
    _bridge_net(dirs)
    _bridge_net(dirs, "other", subnet="10.8.0.0/24")
    runtime.attach("c1", "mynet", NS_A, "eth0")
    with pytest.raises(AlreadyExistsError, match=re.escape("container c1 already has interface eth0 (network mynet)")):
        runtime.attach("c1", "other", NS_A, "eth0")
    # The existing interface was not torn down by a clean-up DEL.
    assert _container_links(fake, NS_A) == ["eth0"] and reservations(dirs["data"], "other") == {}
    runtime.check("c1", "mynet", NS_A, "eth0")


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda rt: rt.attach("", "mynet", NS_A), UnknownContainerError, "missing containerID"),
    (lambda rt: rt.attach("bad id", "mynet", NS_A), InvalidEnvironmentError, "invalid characters in containerID"),
    (lambda rt: rt.attach("c1", "mynet", NS_A, "a/b"), InvalidEnvironmentError,
     "interface name contains / or : or whitespace characters"),
    (lambda rt: rt.attach("c1", "mynet", NS_A, "x" * 16), InvalidEnvironmentError, "interface name is too long"),
    (lambda rt: rt.attach("c1", "mynet", NS_A, args={"A": "1;B=2"}), InvalidInputError, "CNI_ARGS pair"),
    (lambda rt: rt.attach("c1", "nope", NS_A), NotFoundError, 'no net configuration with name "nope" in '),
    (lambda rt: rt.attach("c1", "mynet", NS_A, result_version="9.9.9"), Exception, "9.9.9"),
    (lambda rt: rt.detach("c1", "mynet", ifname=""), InvalidEnvironmentError, "interface name is empty"),
    # A NUL cannot travel in the environment: refused where it enters, not as a ValueError from os.link or exec.
    (lambda rt: rt.attach("c1", "mynet", NS_A, "eth\0"), InvalidEnvironmentError, "CNI_IFNAME contains a NUL"),
    (lambda rt: rt.attach("c1", "mynet", NS_A + "\0"), InvalidEnvironmentError, "CNI_NETNS contains a NUL"),
    (lambda rt: rt.attach("c1", "mynet", NS_A, args={"K": "v\0"}), InvalidEnvironmentError,
     "CNI_ARGS contains a NUL"),
    (lambda rt: rt.attach("c1", "mynet", NS_A, args={"K\0": "v"}), InvalidEnvironmentError,
     "CNI_ARGS contains a NUL"),
    (lambda rt: rt.detach("c1", "mynet", ifname="eth\0"), InvalidEnvironmentError, "CNI_IFNAME contains a NUL"),
    (lambda rt: rt.detach("c1", "mynet", NS_A + "\0", ifname="eth0"), InvalidEnvironmentError,
     "CNI_NETNS contains a NUL"),
    (lambda rt: rt.check("c1", "mynet", NS_A + "\0", "eth0"), InvalidEnvironmentError, "CNI_NETNS contains a NUL"),
    (lambda rt: rt.check("c1", "mynet", NS_A, "eth\0"), InvalidEnvironmentError, "CNI_IFNAME contains a NUL"),
    # Longer than any CNI_CONTAINERID the kernel can pass to a plugin (and than the store could read back).
    (lambda rt: rt.attach("c" * (MAX_CONTAINER_ID_BYTES + 1), "mynet", NS_A), InvalidEnvironmentError,
     "containerID is too long"),
])
def test_bad_input_is_refused_with_nothing_done(dirs: dict[str, Path], fake: FakeLinkBackend, runtime: Runtime,
                                                call: Any, error: type[Exception], message: str) -> None:
    _bridge_net(dirs)
    with pytest.raises(error, match=message.replace("(", "\\(")):
        call(runtime)
    assert runtime.attachments() == [] and reservations(dirs["data"], "mynet") == {}
    assert not (dirs["cache"] / "cnicore" / "pending").exists() or \
        not list((dirs["cache"] / "cnicore" / "pending").iterdir())


def test_the_directory_is_followed_and_duplicates_are_refused(dirs: dict[str, Path], runtime: Runtime) -> None:
    assert dict(runtime.networks()) == {}
    first = _bridge_net(dirs, "one")
    assert list(runtime.networks()) == ["one"]
    (dirs["net.d"] / "20-two.conf").write_text(json.dumps({"cniVersion": "0.4.0", "name": "two", "type": "noop"}))
    assert sorted(runtime.networks()) == ["one", "two"]
    assert runtime.network("two").plugins[0].type == "noop"
    (dirs["net.d"] / "30-bad.conflist").write_text("{")
    assert sorted(runtime.networks()) == ["one", "two"]
    assert [Path(p).name for p, _ in runtime.load_failures] == ["30-bad.conflist"]
    with pytest.raises(NotFoundError) as caught:
        runtime.network("three")
    assert "30-bad.conflist" in caught.value.details
    dup = write_conflist(dirs["net.d"], "one", [{"type": "noop"}], file_name="40-dup.conflist")
    with pytest.raises(InvalidConfigError) as dup_error:
        runtime.networks()
    assert str(first) in str(dup_error.value) and str(dup) in str(dup_error.value)
    with pytest.raises(InvalidConfigError, match="duplicate network name"):
        runtime.network("one")
    assert runtime.network("two").name == "two"  # others still work
    dup.unlink()
    first.write_text(json.dumps({"cniVersion": "1.0.0", "name": "one", "plugins": [{"type": "second"}]}))
    assert runtime.network("one").plugins[0].type == "second"


def test_sibling_plugin_folders_are_followed_too(dirs: dict[str, Path], runtime: Runtime) -> None:
    (dirs["net.d"] / "10-sib.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "sib"}))
    (dirs["net.d"] / "sib").mkdir()
    (dirs["net.d"] / "sib" / "a.conf").write_text(json.dumps({"type": "noop"}))
    assert [p.type for p in runtime.network("sib").plugins] == ["noop"]
    (dirs["net.d"] / "sib" / "b.conf").write_text(json.dumps({"type": "second"}))
    assert [p.type for p in runtime.network("sib").plugins] == ["noop", "second"]


def test_detach_uses_the_configuration_the_attachment_was_made_with(dirs: dict[str, Path], runtime: Runtime) -> None:
    path = _bridge_net(dirs)
    runtime.attach("c1", "mynet", NS_A)
    path.unlink()  # the operator removes the network
    with pytest.raises(NotFoundError):
        runtime.network("mynet")
    runtime.detach("c1", "mynet")
    assert reservations(dirs["data"], "mynet") == {} and runtime.attachments() == []


def test_our_entry_points_run_in_process_and_foreign_binaries_are_executed(dirs: dict[str, Path],
                                                                           fake: FakeLinkBackend,
                                                                           runtime: Runtime) -> None:
    install_plugins(dirs["bin"] / "ours")
    log = dirs["cache"].parent / "calls.jsonl"
    _bridge_net(dirs, "mynet")
    ours = Runtime(config_dir=dirs["net.d"], plugin_path=[str(dirs["bin"] / "ours"), str(dirs["bin"])],
                   cache_dir=dirs["cache"], backend=fake)
    with ours:
        ours.attach("c1", "mynet", NS_A, "eth0")
    assert _container_links(fake, NS_A) == ["eth0"]  # the in-memory kernel saw it: no exec happened
    # A foreign "loopback" first on the path is executed instead of ours.
    foreign = dirs["bin"] / "foreign"
    foreign.mkdir()
    (foreign / "loopback").write_text((dirs["bin"] / "noop").read_text())
    (foreign / "loopback").chmod(0o755)
    write_conflist(dirs["net.d"], "lo", [{"type": "loopback", "record": str(log)}])
    mixed = Runtime(config_dir=dirs["net.d"], plugin_path=[str(foreign), str(dirs["bin"] / "ours")],
                    cache_dir=dirs["cache"], backend=fake)
    with mixed:
        mixed.attach("c2", "lo", NS_B, "eth0")
    assert [c["command"] for c in records(log)] == ["ADD"]
    assert not fake.get_link(fake.open_namespace(NS_B), "lo").admin_up


def test_in_process_off_executes_our_installed_plugins(tmp_path: Path, dirs: dict[str, Path]) -> None:
    bin_dir = tmp_path / "ours"
    install_plugins(bin_dir)
    state = tmp_path / "kernel.state"
    with FakeState(str(state)) as kernel:
        kernel.backend.add_namespace(NS_A)
    _bridge_net(dirs)
    env = {**clean_env(), "CNICORE_BACKEND": "fake", "CNICORE_FAKE_STATE": str(state)}
    with Runtime(config_dir=dirs["net.d"], plugin_path=[str(bin_dir)], cache_dir=dirs["cache"], in_process=False,
                 environ=env) as rt:
        result = rt.attach("c1", "mynet", NS_A)
        assert [str(ip.address) for ip in result.ips] == ["10.9.0.2/24"]
        with FakeState(str(state)) as kernel:
            assert _container_links(kernel.backend, NS_A) == ["eth0"]
        rt.check("c1", "mynet", NS_A)
        rt.detach("c1", "mynet")
    with FakeState(str(state)) as kernel:
        assert _container_links(kernel.backend, NS_A) == []
    assert reservations(dirs["data"], "mynet") == {}


def test_a_result_that_cannot_be_given_in_the_wanted_version_undoes_the_add(dirs: dict[str, Path],
                                                                             fake: FakeLinkBackend,
                                                                             runtime: Runtime) -> None:
    write_conflist(dirs["net.d"], "l2", [{"type": "bridge", "bridge": "cnt-br1"}])
    with pytest.raises(Exception, match=re.escape('the result cannot be given as version "0.2.0": '
                                                  "cannot convert: no valid IP addresses")):
        runtime.attach("c1", "l2", NS_A, result_version="0.2.0")
    assert _container_links(fake, NS_A) == [] and runtime.attachments() == []
    runtime.attach("c1", "l2", NS_A)  # in the network's own version it works
    assert _container_links(fake, NS_A) == ["eth0"]


def test_gc_reaches_addresses_a_bridge_network_leaked(dirs: dict[str, Path], fake: FakeLinkBackend,
                                                      runtime: Runtime) -> None:
    # A 1.1.0 bridge network: GC goes to every plugin, and the bridge forwards it to host-local.
    _bridge_net(dirs, version="1.1.0")
    runtime.attach("c1", "mynet", NS_A)
    runtime.attach("c2", "mynet", NS_B)
    # The cache entry of c1 is lost (a crash of another tool, a wiped cache): only GC can find its address.
    (entry,) = runtime.attachments("c1")
    Path(entry.path).unlink()
    assert sorted(reservations(dirs["data"], "mynet")) == ["10.9.0.2", "10.9.0.3"]
    report = runtime.gc(live=["c2"])
    assert report.errors == ()
    assert reservations(dirs["data"], "mynet") == {"10.9.0.3": "c2\r\neth0"}
    runtime.check("c2", "mynet", NS_B)
