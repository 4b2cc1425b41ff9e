"""Differential: JSON syntax errors are worded like Go's, as the reference plugins print them.

The reference skeleton reports undecodable stdin as code 6
``error unmarshall network config: <Go's error>``; libcni wraps the same Go text as
``error parsing configuration: <Go's error>``. The Go part must agree.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from support import reference_plugin

from cnicore._errors import CNIError
from cnicore.config import parse_network_config_list, parse_plugin_config

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/nonexistent", "CNI_IFNAME": "eth0",
       "CNI_PATH": "/nonexistent"}

AGREEING = ["{", "garbage", '{"name": }', '{"name": "x",}', "[1,]", '{"a" 1}', '{"a":1}}', " ", '{"a":01}', "",
            '"abc', '{"name": "x']
# Known differences in cnicore._json.go_error_text (reported to its owner).
KNOWN_DIFFERENT = ['{"a":tru}', '{"a":"\\q"}']



def _reference_text(document: str) -> str:
    plugin = reference_plugin("loopback")
    proc = subprocess.run([str(plugin)], input=document.encode(), env=ENV, capture_output=True, timeout=30,
                          check=False)
    error = json.loads(proc.stdout)
    assert error["code"] == 6
    prefix = "error unmarshall network config: "
    assert error["msg"].startswith(prefix)
    return str(error["msg"][len(prefix):])


def _our_texts(document: str) -> list[tuple[int, str]]:
    texts = []
    for parse, prefix in ((parse_plugin_config, "error parsing configuration: "),
                          (parse_network_config_list, "error parsing configuration list: ")):
        with pytest.raises(CNIError) as info:
            parse(document.encode())
        assert info.value.msg.startswith(prefix)
        texts.append((info.value.code, info.value.msg[len(prefix):]))
    return texts


@pytest.mark.reference
@pytest.mark.parametrize("document", AGREEING)
def test_json_syntax_errors_match_go(document: str) -> None:
    expected = _reference_text(document)
    assert _our_texts(document) == [(6, expected), (6, expected)]


@pytest.mark.reference
@pytest.mark.xfail(strict=True, reason="cnicore._json words these syntax errors differently from Go")
@pytest.mark.parametrize("document", KNOWN_DIFFERENT)
def test_json_syntax_errors_known_to_differ(document: str) -> None:
    expected = _reference_text(document)
    assert _our_texts(document) == [(6, expected), (6, expected)]
