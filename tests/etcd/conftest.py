"""Real etcd servers on loopback for the etcd store tests: started per session or per test, always stopped."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ETCD = "/usr/bin/etcd"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Member:
    """One etcd member on 127.0.0.1 with its own data directory."""

    def __init__(self, name: str, base: Path) -> None:
        self.name = name
        self.client_url = f"http://127.0.0.1:{_free_port()}"
        self.peer_url = f"http://127.0.0.1:{_free_port()}"
        self.data_dir = base / name
        self.proc: subprocess.Popen[bytes] | None = None
        self.cluster = ""
        self.token = ""

    def start(self) -> None:
        args = [
            ETCD, "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token,
            # Short timers: a killed member is noticed and a leader elected in well under a second.
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-level", "error", "--log-outputs", "stderr",
        ]
        log = open(self.data_dir.parent / f"{self.name}.log", "ab")  # noqa: SIM115 - kept open for the child
        try:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=1) as resp:
                return b'"true"' in resp.read()
        except OSError:
            return False


class Cluster:
    """``size`` members on loopback; :meth:`wait_healthy` waits until a leader serves requests."""

    def __init__(self, size: int) -> None:
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.base = Path(tempfile.mkdtemp(prefix="cnicore-etcd-", dir=shm))
        self.members = [Member(f"m{i}", self.base) for i in range(size)]
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        token = f"cnicore-{uuid.uuid4().hex[:8]}"
        for member in self.members:
            member.cluster = cluster
            member.token = token

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def start(self) -> None:
        for member in self.members:
            member.start()
        self.wait_healthy(self.members)

    def wait_healthy(self, members: list[Member], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for member in members:
                if member.proc is not None and member.proc.poll() is not None:
                    log = (self.base / f"{member.name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"etcd member {member.name} exited: {log}")
            if all(m.healthy() for m in members):
                return
            time.sleep(0.05)
        logs = {m.name: (self.base / f"{m.name}.log").read_text(errors="replace")[-1000:] for m in members}
        raise RuntimeError(f"etcd did not become healthy in time: {logs}")

    def leader(self) -> Member:
        """The member that is the raft leader now."""
        for member in self.members:
            if member.proc is None:
                continue
            request = urllib.request.Request(member.client_url + "/v3/maintenance/status", data=b"{}",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as resp:
                status = json.loads(resp.read())
            if status.get("leader") == status["header"]["member_id"]:
                return member
        raise RuntimeError("no leader")

    def stop(self) -> None:
        try:
            for member in self.members:
                member.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def _require_etcd() -> None:
    if not os.access(ETCD, os.X_OK):
        pytest.skip(f"etcd server not installed ({ETCD} missing): apt-get install etcd-server")
    pytest.importorskip("etcd3gw", reason="the etcd extra (etcd3gw) is not installed")


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[Cluster]:
    """One single-member etcd for the whole session (tests isolate themselves by key prefix)."""
    _require_etcd()
    cluster = Cluster(1)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def etcd_cluster3() -> Iterator[Cluster]:
    """A fresh 3-member cluster for fault injection."""
    _require_etcd()
    cluster = Cluster(3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def etcd_prefix() -> str:
    """A key prefix no other test uses."""
    return f"/cnicore-test/{uuid.uuid4().hex}"
