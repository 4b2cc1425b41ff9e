"""FindInPath: plugin binaries on the plugin path."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnicore._errors import InvalidConfigError, NotFoundError
from cnicore.config import find_in_path


def _binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_first_directory_holding_the_plugin_wins(tmp_path: Path) -> None:
    first = _binary(tmp_path / "a" / "bridge")
    _binary(tmp_path / "b" / "bridge")
    assert find_in_path("bridge", [str(tmp_path / "empty"), str(tmp_path / "a"), str(tmp_path / "b")]) == str(first)


def test_directories_with_the_plugin_name_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a" / "bridge").mkdir(parents=True)
    found = _binary(tmp_path / "b" / "bridge")
    assert find_in_path("bridge", [str(tmp_path / "a"), str(tmp_path / "b")]) == str(found)


def test_paths_are_cleaned_like_go(tmp_path: Path) -> None:
    _binary(tmp_path / "bridge")
    assert find_in_path("bridge", [str(tmp_path) + "/./"]) == str(tmp_path / "bridge")


def test_errors() -> None:
    with pytest.raises(InvalidConfigError) as info:
        find_in_path("", ["/opt/cni/bin"])
    assert info.value.msg == "no plugin name provided"
    with pytest.raises(InvalidConfigError) as info:
        find_in_path("../bridge", ["/opt/cni/bin"])
    assert info.value.msg == "invalid plugin name: ../bridge"
    with pytest.raises(InvalidConfigError) as info:
        find_in_path("bridge", [])
    assert info.value.msg == "no paths provided"


def test_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as info:
        find_in_path("nope", [str(tmp_path / "a"), str(tmp_path / "b")])
    assert info.value.msg == f'failed to find plugin "nope" in path [{tmp_path / "a"} {tmp_path / "b"}]'


def test_finds_the_reference_plugins() -> None:
    import support

    loopback = support.reference_plugin("loopback")
    assert find_in_path("loopback", ["/nonexistent", str(loopback.parent)]) == str(loopback)
