"""Choosing a backend: injection, the environment variable, entry points, and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cnicore.backends as backends
from cnicore._errors import InternalError, InvalidConfigError
from cnicore.backends import FakeLinkBackend, select_backend
from cnicore.links import Firewall, LinkBackend, NftFirewall

ROOT = Path(__file__).resolve().parents[2]


def test_injected_backend_wins() -> None:
    mine = FakeLinkBackend()
    assert select_backend(mine, environ={"CNICORE_BACKEND": "netlink"}) is mine


@pytest.mark.parametrize(("value", "kind"), [("fake", "fake"), ("FAKE", "fake"), (" fake ", "fake")])
def test_environment_variable(value: str, kind: str) -> None:
    assert select_backend(environ={"CNICORE_BACKEND": value}).name == kind


def test_explicit_name_and_real_backends() -> None:
    assert select_backend("iproute2", environ={}).name == "iproute2"
    assert select_backend("netlink", environ={}).name == "netlink"
    assert select_backend("pyroute2", environ={}).name == "pyroute2"
    assert select_backend(environ={"CNICORE_BACKEND": "PyRoute2"}).name == "pyroute2"


def test_pyroute2_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnicore.backends import _pyroute2

    def no_pyroute2(name: str) -> Any:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(_pyroute2.importlib, "import_module", no_pyroute2)
    with pytest.raises(InternalError, match=r"install cnicore\[pyroute2\]"):
        select_backend("pyroute2", environ={})


def test_unknown_value_names_the_variable() -> None:
    with pytest.raises(InvalidConfigError) as info:
        select_backend(environ={"CNICORE_BACKEND": "bogus"})
    assert "CNICORE_BACKEND=bogus" in str(info.value)
    assert info.value.key == "CNICORE_BACKEND" and info.value.value == "bogus"
    assert info.value.code == 7


def test_auto_follows_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnicore.backends import _select

    monkeypatch.setattr(_select, "has_net_admin", lambda: False)
    assert select_backend(environ={}).name == "fake"
    assert select_backend(environ={"CNICORE_BACKEND": "auto"}).name == "fake"
    monkeypatch.setattr(_select, "has_net_admin", lambda: True)
    assert select_backend(environ={}).name == "netlink"
    # The netlink backend needs no third-party package and no `ip` binary: auto takes it regardless.
    monkeypatch.setitem(sys.modules, "pyroute2", None)  # importing pyroute2 now fails
    monkeypatch.setenv("PATH", "")
    assert select_backend(environ={"CNICORE_BACKEND": "auto"}).name == "netlink"


def test_capability_reading(tmp_path: Path) -> None:
    from cnicore.backends._select import has_net_admin

    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000001000\n")
    assert has_net_admin(str(status))
    status.write_text("Name:\tx\nCapEff:\t0000000000000000\n")
    assert not has_net_admin(str(status))
    assert not has_net_admin(str(tmp_path / "missing"))


class _EntryPoint:
    def __init__(self, name: str, factory: Any) -> None:
        self.name = name
        self.value = f"thirdparty:{name}"
        self._factory = factory

    def load(self) -> Any:
        return self._factory


def test_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    points = [_EntryPoint("mine", FakeLinkBackend), _EntryPoint("broken", object)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: points if group == "cnicore.backends" else [])
    assert isinstance(select_backend(environ={"CNICORE_BACKEND": "mine"}), FakeLinkBackend)
    with pytest.raises(InternalError, match="does not implement LinkBackend"):
        select_backend("broken", environ={})


def test_all_backends_implement_the_port() -> None:
    for backend in (backends.FakeLinkBackend(), backends.NetlinkLinkBackend(), backends.IPRoute2LinkBackend(),
                    backends.Pyroute2LinkBackend()):
        assert isinstance(backend, LinkBackend)
    firewall = backends.FakeFirewall()
    assert isinstance(firewall, Firewall) and isinstance(firewall.nftables(), backends.FakeNftables)
    assert isinstance(firewall.nftables(), NftFirewall)


def test_public_names() -> None:
    assert sorted(backends.__all__) == [
        "BUILTIN_BACKENDS", "ENTRY_POINT_GROUP", "ENV_VAR", "FakeFirewall", "FakeLinkBackend", "FakeNftables",
        "IPRoute2LinkBackend", "IptablesFirewall", "NetlinkLinkBackend", "NftablesFirewall", "Pyroute2LinkBackend",
        "has_net_admin", "select_backend",
    ]
    assert dir(backends) == sorted(backends.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = backends.Nope  # type: ignore[attr-defined]
    for name in backends.__all__:
        assert getattr(backends, name) is not None


def test_links_public_names() -> None:
    import cnicore.links as links

    assert set(links.__all__) >= {"LinkBackend", "Firewall", "Link", "Address", "Route", "Namespace",
                                  "BridgeSpec", "VethPair", "masquerade_plan", "masquerade_chain_name"}
    for name in links.__all__:
        assert getattr(links, name) is not None


def test_importing_backends_loads_no_pyroute2() -> None:
    # The netlink backend speaks rtnetlink itself: it needs pyroute2 neither to import nor to run.
    code = (
        "import sys, cnicore.backends as b\n"
        "assert not any(m.split('.')[0] == 'pyroute2' for m in sys.modules), 'pyroute2 loaded'\n"
        "b.select_backend('fake', environ={})\n"
        "assert not any(m.split('.')[0] == 'pyroute2' for m in sys.modules), 'pyroute2 loaded by fake'\n"
        "backend = b.NetlinkLinkBackend()\n"
        "assert backend.host_namespace().path is None\n"
        "assert not any(m.split('.')[0] == 'pyroute2' for m in sys.modules), 'pyroute2 loaded by netlink'\n"
        "b.Pyroute2LinkBackend\n"
        "assert not any(m.split('.')[0] == 'pyroute2' for m in sys.modules), 'pyroute2 loaded by the class'\n"
        "b.Pyroute2LinkBackend()\n"
        "assert 'pyroute2.iproute' in sys.modules, 'pyroute2 not loaded on use'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
