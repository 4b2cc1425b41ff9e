"""Helpers shared by the test suite (importable as ``support``): root and reference-plugin gates, namespaces,
Hypothesis example counts, the kernel refusals a test may skip on."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings

from cnicore import InternalError

REFERENCE_PLUGIN_DIR = Path(os.environ.get("CNICORE_REFERENCE_PLUGINS", "/usr/lib/cni"))

#: The Hypothesis profile of this run (tests/conftest.py registers and loads it): "ci" by default,
#: "thorough" to dig deeper by hand, "mutate" for `make mutate`.
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def is_root() -> bool:
    return os.geteuid() == 0


requires_root = pytest.mark.skipif(not is_root(), reason="needs root (network namespaces and links)")


def reference_plugin(name: str) -> Path:
    """Path of a reference Go plugin, or skip the test with the reason."""
    path = REFERENCE_PLUGIN_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.skip(f"reference plugin {path} not installed (Debian package containernetworking-plugins)")
    return path


def require_tool(name: str) -> str:
    """Path of a system tool, or skip the test with the reason."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed")
    return found


class Namespaces:
    """Throwaway kernel namespaces named ``cnt-<tag>-<random>``; :meth:`remove_all` deletes them.

    A namespace whose tag starts with ``host`` plays the host: its ``lo`` is up, as a real host's is.
    """

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, tag: str) -> str:
        name = f"cnt-{tag}-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        if tag.startswith("host"):
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return name

    def remove_all(self) -> None:
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        self.names.clear()


def fine_ctime(directory: Path) -> bool:
    """Whether the file system holding ``directory`` stamps every change after a stat at fine grain (the file
    store's own probe): what lets a long-lived store follow a directory by its state."""
    from cnicore.stores._filecore import stamps_every_change_under

    return stamps_every_change_under(directory)


#: Why a test of following a directory by its state alone cannot run here.
NO_FINE_CTIME = ("the file system under the test's directory does not stamp every change after a stat at fine "
                 "grain (multigrain timestamps: Linux 6.13 or later, on ext4, xfs or btrfs; not tmpfs)")


def examples(scale: float = 1.0) -> int:
    """The example count for a property or state machine whose examples cost ``1 / scale`` times the
    suite's usual one: under "thorough", the profile's own count, whatever the cost; under the others ("ci",
    "mutate"), the profile's ``max_examples`` times ``scale``, so the suite keeps its time budget."""
    count = settings.default.max_examples
    if HYPOTHESIS_PROFILE == "thorough":
        return count
    return max(1, round(count * scale))


#: How this kernel refuses a bridge with VLAN filtering when it is built without it
#: (CONFIG_BRIDGE_VLAN_FILTERING unset: the bridge's IFLA_BR_VLAN_FILTERING gets EOPNOTSUPP, errno 95).
#: The rtnetlink backends name the errno, the iproute2 backend and ``ip`` print iproute2's wording.
VLAN_FILTERING_REFUSED = re.compile(r"(?:ENOTSUP|EOPNOTSUPP) \(Operation not supported\)"
                                    r"|RTNETLINK answers: Operation not supported")


class Blocked(Exception):
    """Raised by :func:`unblocked` when its block ran past its time."""


@contextmanager
def unblocked(seconds: int, what: str) -> Iterator[None]:
    """Fail with :class:`Blocked` (``what``) instead of hanging when the block takes more than ``seconds``.

    For code that must never block (an open of a FIFO with no writer blocks until a signal interrupts it).
    Main thread only (SIGALRM).
    """
    import signal

    def expired(signum: int, frame: object) -> None:
        raise Blocked(what)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def skip_if_vlan_filtering_refused(bridge: str) -> Iterator[None]:
    """Skip the test when creating ``bridge`` with VLAN filtering fails with the kernel's refusal above;
    any other failure (a backend's bug included) propagates and fails the test."""
    try:
        yield
    except InternalError as exc:
        refusal = exc.msg.removeprefix(f"ensure bridge {bridge}: ")
        if refusal == exc.msg or VLAN_FILTERING_REFUSED.fullmatch(refusal) is None:
            raise
        pytest.skip(f"this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING): {refusal}")


def send_tracked_flows(namespace: str, udp_ports: tuple[int, ...], tcp_port: int) -> None:
    """From inside the namespace named ``namespace`` (``lo`` up), on 127.0.0.1 and ::1 each: one UDP datagram to
    each of ``udp_ports`` and one TCP connection to ``tcp_port`` (tracked for minutes after it closes), so that
    connection tracking holds one flow of each (once a conntrack rule has registered its hooks there)."""
    script = f"""
import socket
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    for port in {udp_ports!r}:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", (host, port))
    with socket.socket(family, socket.SOCK_STREAM) as server, socket.socket(family, socket.SOCK_STREAM) as client:
        server.bind((host, {tcp_port}))
        server.listen()
        client.connect((host, {tcp_port}))
        server.accept()[0].close()
"""
    subprocess.run(["ip", "netns", "exec", namespace, "python3", "-c", script], check=True)
