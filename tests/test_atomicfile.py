"""The one atomic file replacement (cnicore._atomicfile), shared by the runtime's cache and the fake kernel state."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cnicore._atomicfile import TEMP_PREFIX, replace_file


def test_replace_file_writes_exact_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"old")
    old_umask = os.umask(0o077)
    try:
        replace_file(str(target), b"new contents", 0o644)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_replace_file_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state"
    target.write_bytes(b"old")
    os.mkdir(tmp_path / "blocker")
    # Renaming a file over a directory fails after the temporary was written.
    with pytest.raises(OSError):
        replace_file(str(tmp_path / "blocker"), b"new", 0o600)
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_fake_state_saves_through_the_shared_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cnicore import _atomicfile
    from cnicore._plugin_main import FakeState

    written: list[str] = []
    real = _atomicfile.replace_file

    def recording(path: str, data: bytes, mode: int) -> None:
        written.append(path)
        real(path, data, mode)

    monkeypatch.setattr(_atomicfile, "replace_file", recording)
    path = str(tmp_path / "fake.state")
    with FakeState(path):
        pass
    assert written == [path]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.state", "fake.state.lock"]
