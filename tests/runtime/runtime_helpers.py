"""Helpers for the runtime tests: tiny exec'd test plugins, configuration files, the fake kernel.

The test plugin is one Python script (no cnicore import, so it starts fast),
installed under several type names. What it does is driven by its configuration:

* ``"record": "<file>"``: append one JSON line per invocation: the command, the
  ``CNI_*`` variables, the whole environment and stdin;
* ADD prints ``"result"`` when given, else the ``prevResult`` it received, else
  ``{"cniVersion": <config version>}``;
* ``"fail": {"ADD": {"code": 7, "msg": "..."}}``: print that error object and exit 1
  for that command (with ``"failWhile": "<file>"``, only while that file exists);
* ``"signal": "<file>"`` and ``"sleep": <seconds>``: on ADD, write the plugin's pid
  into the file, then sleep (the crash test kills the runtime meanwhile).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TEST_PLUGIN = """#!{python}
import json, os, sys, time
data = sys.stdin.buffer.read()
conf = json.loads(data)
command = os.environ.get("CNI_COMMAND", "")
record = conf.get("record")
if record:
    line = {{"type": os.path.basename(sys.argv[0]), "command": command,
             "cni": {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}},
             "env": dict(os.environ), "stdin": data.decode()}}
    fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (json.dumps(line) + "\\n").encode())
    os.close(fd)
failure = (conf.get("fail") or {{}}).get(command)
if failure and (not conf.get("failWhile") or os.path.exists(conf["failWhile"])):
    sys.stdout.write(json.dumps(failure))
    sys.exit(1)
if command == "ADD":
    if conf.get("signal"):
        with open(conf["signal"] + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.rename(conf["signal"] + ".tmp", conf["signal"])
    if conf.get("sleep"):
        time.sleep(conf["sleep"])
    result = conf.get("result") or conf.get("prevResult") or {{"cniVersion": conf.get("cniVersion", "")}}
    sys.stdout.write(json.dumps(result))
"""


def install_test_plugins(directory: Path, names: Iterable[str] = ("noop", "second", "third")) -> Path:
    """Write the test plugin into ``directory`` under each of ``names``; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = directory / name
        path.write_text(TEST_PLUGIN.format(python=sys.executable))
        path.chmod(0o755)
    return directory


def records(path: Path) -> list[dict[str, Any]]:
    """The invocations a test plugin recorded, in order."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def write_conflist(config_dir: Path, name: str, plugins: list[Mapping[str, Any]], *, version: str = "1.0.0",
                   file_name: str | None = None, **extra: Any) -> Path:
    """Write ``<config_dir>/<file_name or 10-name.conflist>``; return the path."""
    config_dir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"cniVersion": version, "name": name, "plugins": list(plugins), **extra}
    path = config_dir / (file_name or f"10-{name}.conflist")
    path.write_text(json.dumps(document))
    return path


def reservations(data_dir: Path, network: str) -> dict[str, str]:
    """host-local's reservation files of a network: address -> ``container\\r\\nifname`` content."""
    folder = data_dir / network
    if not folder.is_dir():
        return {}
    return {p.name: p.read_bytes().decode() for p in folder.iterdir()
            if p.is_file() and p.name != "lock" and not p.name.startswith(("last_reserved_ip", "."))}


def clean_env() -> dict[str, str]:
    """The environment without CNI_/CNICORE_ variables (so the test's own environment does not leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("CNI_", "CNICORE_"))}
