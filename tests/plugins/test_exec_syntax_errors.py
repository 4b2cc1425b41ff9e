"""Differential: undecodable stdin through the executed plugins, against the reference plugins.

The executed plugins decode stdin without loading the ``json`` package (see ``cnicore._json``). On Python 3.11
the C scanner reports an error inside a string, object or array through ``json.decoder.JSONDecodeError``, which
it looks up in ``sys.modules`` only; before the package is loaded it raised nothing and Python turned that into
a ``SystemError``, printed as code 999 with the scanner's repr. The library's tests run with ``json`` loaded and
could not see it: these run the installed executables.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support import reference_plugin

pytestmark = pytest.mark.reference

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/nonexistent", "CNI_IFNAME": "eth0",
       "CNI_PATH": "/nonexistent"}
# Go's wording for each of these (tests/config/test_reference_json.py pins the library's).
DOCUMENTS = ["{", '{"name": "x",}', '{"a" 1}', "[1,]", '"abc', '{"cniVersion": "1.0.0", "name": "x',
             '{"cniVersion": "1.0.0", "name": "x", "ipam": {"type": "host-local"', "garbage", ""]


def _run(binary: Path, document: str) -> tuple[int, object]:
    proc = subprocess.run([str(binary)], input=document.encode(), env=ENV, capture_output=True, timeout=30,
                          check=False)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.parametrize("plugin", ["loopback", "host-local", "bridge", "tuning"])
@pytest.mark.parametrize("document", DOCUMENTS)
def test_syntax_errors_are_printed_as_the_reference_prints_them(plugin: str, document: str,
                                                                 plugin_bin: Path) -> None:
    expected = _run(reference_plugin(plugin), document)
    assert expected[0] == 1 and expected[1]["code"] == 6  # type: ignore[index]
    assert _run(plugin_bin / plugin, document) == expected
