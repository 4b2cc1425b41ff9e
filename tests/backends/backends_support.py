"""Helpers shared by the backend tests (importable as ``backends_support``).

Namespaces for real backends are made with ``ip netns add cnt-<random>`` and
always removed; observations normalise what differs legitimately between
backends (random names, MACs, indexes, asynchronous states).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
from typing import Any

import attrs
from support import is_root

from cnicore._errors import CNIError
from cnicore.backends import FakeLinkBackend, IPRoute2LinkBackend, NetlinkLinkBackend, Pyroute2LinkBackend
from cnicore.links import BridgeSpec, LinkBackend, Namespace

BACKENDS = ("fake", "netlink", "iproute2", "pyroute2")
#: The backends that talk to the kernel.
REAL_BACKENDS = ("netlink", "iproute2", "pyroute2")



@attrs.frozen
class Env:
    """A backend and two namespaces: one playing the host, one the container."""

    backend: LinkBackend
    host: Namespace
    container: Namespace


def real_available(kind: str) -> str | None:
    """Why a real backend cannot run here, or None if it can."""
    if not is_root():
        return f"the {kind} backend needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if kind == "pyroute2" and importlib.util.find_spec("pyroute2") is None:
        return "pyroute2 is not installed (cnicore[pyroute2])"
    return None


@attrs.define
class Namespaces:
    """Throwaway namespaces made with ``ip netns add``, removed by :meth:`cleanup`."""

    names: list[str] = attrs.Factory(list)

    def add(self) -> str:
        name = "cnt-" + secrets.token_hex(4)
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        self.names.append(name)
        return f"/var/run/netns/{name}"

    def cleanup(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
        self.names.clear()




def make_backend(kind: str) -> LinkBackend:
    if kind == "fake":
        return FakeLinkBackend()
    if kind == "netlink":
        return NetlinkLinkBackend()
    if kind == "pyroute2":
        return Pyroute2LinkBackend()
    return IPRoute2LinkBackend()


def bridge_port(kind: str, spaces: Namespaces, bridge: str) -> tuple[Any, Namespace, str]:
    """A real ``kind`` backend, a host namespace with ``bridge``, and the host end of a veth to attach to it
    (skips with the reason when that backend cannot run here)."""
    import pytest

    reason = real_available(kind)
    if reason is not None:
        pytest.skip(reason)
    backend = make_backend(kind)
    host = backend.open_namespace(spaces.add())
    ctr = backend.open_namespace(spaces.add())
    backend.ensure_bridge(host, BridgeSpec(name=bridge))
    pair = backend.create_veth(ctr, "eth0", host)
    return backend, host, pair.host.name


def make_env(kind: str, spaces: Namespaces | None) -> Env:
    """A backend of ``kind`` with host and container namespaces (kernel ones unless fake)."""
    backend = make_backend(kind)
    paths = (f"/var/run/netns/cnt-fake{os.getpid()}h", f"/var/run/netns/cnt-fake{os.getpid()}c")
    if kind == "fake":
        assert isinstance(backend, FakeLinkBackend)
        return Env(backend, backend.add_namespace(paths[0]), backend.add_namespace(paths[1]))
    assert spaces is not None
    return Env(backend, backend.open_namespace(spaces.add()), backend.open_namespace(spaces.add()))




def _name(name: str | None) -> str | None:
    if name is not None and name.startswith("veth") and len(name) == 12:
        return "veth<peer>"
    return name


def links(backend: LinkBackend, ns: Namespace) -> list[dict[str, Any]]:
    """The namespace's links, normalised, by name."""
    out = []
    for link in backend.list_links(ns):
        out.append({
            "name": _name(link.name),
            "kind": link.kind,
            "mtu": link.mtu,
            "admin_up": link.admin_up,
            "carrier": link.carrier if link.kind != "bridge" else None,
            "master": link.master,
            "promiscuous": link.promiscuous,
            "allmulti": link.allmulti,
            "txqueuelen": link.txqueuelen,
            "alias": link.alias,
            "hairpin": link.hairpin,
            "addresses": [str(a) for a in link.addresses],
        })
    return sorted(out, key=lambda item: str(item["name"]))


def routes(backend: LinkBackend, ns: Namespace) -> list[tuple[Any, ...]]:
    """The namespace's main-table routes, normalised."""
    return [
        (str(r.dst), str(r.gateway), _name(r.device), r.metric, r.table, r.scope, str(r.source))
        for r in backend.list_routes(ns)
    ]


def state(backend: LinkBackend, *spaces: Namespace) -> list[Any]:
    """Links and routes of each namespace."""
    return [(links(backend, ns), routes(backend, ns)) for ns in spaces]


def outcome(func: Any, *args: Any, **kwargs: Any) -> str:
    """``ok`` or the class name of the cnicore error a call raised (anything else fails the test)."""
    try:
        func(*args, **kwargs)
    except CNIError as exc:
        return type(exc).__name__
    return "ok"
