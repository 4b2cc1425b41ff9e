"""Running ``cnicore`` in process (``main(argv, environ)``) or as the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cnicore.cli import main

SCRIPT = Path(sys.executable).parent / "cnicore"


class Run:
    """One invocation's exit status and output."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"Run(status={self.status}, out={self.out!r}, err={self.err!r})"


class CLI:
    """An isolated ``cnicore``: NETCONFPATH, CNI_PATH, the cache and host-local data all under ``base``."""

    def __init__(self, base: Path, capsys: pytest.CaptureFixture[str] | None = None) -> None:
        self.base = base
        self.conf_dir = base / "net.d"
        self.plugin_dir = base / "bin"
        self.cache_dir = base / "cache"
        self.data_dir = base / "data"
        for directory in (self.conf_dir, self.plugin_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.capsys = capsys
        self.env: dict[str, str] = {
            "NETCONFPATH": str(self.conf_dir),
            "CNI_PATH": str(self.plugin_dir),
            "CNICORE_CACHE_DIR": str(self.cache_dir),
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        }

    def write_conf(self, name: str, document: Any) -> Path:
        path = self.conf_dir / name
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return path

    def __call__(self, *argv: str, env: dict[str, str] | None = None) -> Run:
        assert self.capsys is not None
        self.capsys.readouterr()
        status = main(list(argv), {**self.env, **(env or {})})
        captured = self.capsys.readouterr()
        return Run(status, captured.out, captured.err)

    def script(self, *argv: str, env: dict[str, str] | None = None) -> Run:
        """Through the installed console script, as a user runs it."""
        proc = subprocess.run([str(SCRIPT), *argv], env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=120, check=False)
        return Run(proc.returncode, proc.stdout, proc.stderr)


def bridge_conflist(name: str, data_dir: Path, *, bridge: str = "cnt-br0", version: str = "1.0.0",
                    ranges: list[list[dict[str, str]]] | None = None, **extra: Any) -> dict[str, Any]:
    """A bridge network with host-local IPAM keeping its reservations in ``data_dir``."""
    return {
        "cniVersion": version, "name": name,
        "plugins": [{"type": "bridge", "bridge": bridge, "isGateway": True, **extra,
                     "ipam": {"type": "host-local", "dataDir": str(data_dir),
                              "ranges": ranges or [[{"subnet": "10.23.0.0/24"}]]}}],
    }


