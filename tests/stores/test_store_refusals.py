"""Reserve and release when the answer is no: a release by someone who does not hold the address, a reservation
file or cursor the file system refuses to write, a competitor that takes and frees a name while the store
creates it.

Whatever is refused, the rule is the same: the call says so (False, or an IOFailureError naming the action and
the path), nothing that was stored is lost, and nothing the caller believes failed stays reserved. Failures
are injected at the operating system boundary (the names the reference layout gives the files), never inside
the store.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cnicore import IOFailureError
from cnicore.stores import FileStore, IPStore, MemoryStore, Owner, Reservation, parse_ip

NETWORK = "refusenet"
IP = parse_ip("10.60.0.2")
HOLDER = Owner.attachment("holder", "eth0")


@contextmanager
def _file_store(tmp_path: Path) -> Iterator[IPStore]:
    with FileStore(tmp_path, NETWORK) as store:
        yield store


@contextmanager
def _memory_store(_tmp_path: Path) -> Iterator[IPStore]:
    yield MemoryStore()


STORES: dict[str, Callable[[Path], Any]] = {"memory": _memory_store, "file": _file_store}


@pytest.mark.parametrize("kind", sorted(STORES))
@pytest.mark.parametrize("holder", [HOLDER, Owner(container_id="holder")], ids=["attachment", "legacy"])
def test_only_the_holder_releases_an_address(tmp_path: Path, kind: str, holder: Owner) -> None:
    others = [Owner.attachment("holder", "eth1"), Owner.attachment("other", "eth0"), Owner(container_id="other"),
              Owner(container_id="holder") if holder != Owner(container_id="holder") else HOLDER]
    with STORES[kind](tmp_path) as store:
        # A free address: nothing to release, and releasing it reserves nothing.
        assert store.release(IP, holder) is False
        assert store.reservation(IP) is None
        assert store.reserve(IP, holder, "0") is True
        for other in others:
            assert store.release(IP, other) is False, other
            assert store.reservation(IP) == Reservation(ip=IP, owner=holder)
        assert store.first_free(IP, IP) is None
        assert store.release(IP, holder) is True
        assert store.reservation(IP) is None
        assert store.release(IP, holder) is False


class RefusedLink:
    """``os.link`` failing with ENOSPC when it would create a reservation file (a name that is an address)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.refused: list[str] = []
        monkeypatch.setattr(os, "link", self)

    def __call__(self, src: Any, dst: Any, **kwargs: Any) -> None:
        name = os.path.basename(os.fsdecode(dst))
        self.refused.append(name)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)


@pytest.mark.parametrize("watch", [False, True])
def test_a_reservation_file_the_file_system_refuses_reserves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watch: bool) -> None:
    net = tmp_path / NETWORK
    with FileStore(tmp_path, NETWORK, watch=watch) as store:
        refused = RefusedLink(monkeypatch)
        with pytest.raises(IOFailureError) as caught:
            store.reserve(IP, HOLDER, "0")
        # The refusal happened where the file is created (else this test checks nothing).
        assert refused.refused == ["10.60.0.2"]
        assert caught.value.code == 5
        assert caught.value.msg == f"cannot create {net / '10.60.0.2'}: No space left on device"
        assert not (net / "10.60.0.2").exists()
        assert store.reservation(IP) is None
        assert store.last_reserved("0") is None
        monkeypatch.undo()
        assert store.reserve(IP, HOLDER, "0") is True
        assert (net / "10.60.0.2").read_bytes() == b"holder\r\neth0"


@pytest.mark.parametrize("durable", [False, True])
@pytest.mark.parametrize("watch", [False, True])
def test_a_cursor_that_cannot_be_written_undoes_the_reservation(tmp_path: Path, watch: bool,
                                                                 durable: bool) -> None:
    """``last_reserved_ip.0`` is a directory: no cursor can be written, so the reservation is withdrawn."""
    net = tmp_path / NETWORK
    with FileStore(tmp_path, NETWORK, watch=watch, durable=durable) as store:
        assert store.reserve(parse_ip("10.60.0.9"), Owner.attachment("earlier", "eth0"), "1") is True
        (net / "last_reserved_ip.0").mkdir()
        with pytest.raises(IOFailureError) as caught:
            store.reserve(IP, HOLDER, "0")
        assert caught.value.code == 5
        assert caught.value.msg.startswith(f"cannot record the last reserved address in {net}: ")
        # The caller was told the reservation failed: it does not exist, on disk or in the store's view.
        assert not (net / "10.60.0.2").exists()
        assert store.reservation(IP) is None
        assert store.first_free(IP, IP) == IP
        assert store.release(IP, HOLDER) is False
        # What was stored before is intact.
        assert [str(r.ip) for r in store.reservations()] == ["10.60.0.9"]
        assert store.last_reserved("1") == parse_ip("10.60.0.9")
        (net / "last_reserved_ip.0").rmdir()
        assert store.reserve(IP, HOLDER, "0") is True
        assert store.last_reserved("0") == IP


def test_when_the_withdrawal_fails_too_the_cursor_failure_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reservation file cannot be removed after the cursor failed: the caller learns the first cause."""
    net = tmp_path / NETWORK
    real_unlink = os.unlink
    refused: list[str] = []

    def unlink(path: Any, **kwargs: Any) -> None:
        name = os.path.basename(os.fsdecode(path))
        if parse_ip(name) is not None:
            refused.append(name)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)
        real_unlink(path, **kwargs)

    with FileStore(tmp_path, NETWORK) as store:
        (net / "last_reserved_ip.0").mkdir()
        monkeypatch.setattr(os, "unlink", unlink)
        with pytest.raises(IOFailureError) as caught:
            store.reserve(IP, HOLDER, "0")
        assert refused == ["10.60.0.2"]
        assert caught.value.msg.startswith(f"cannot record the last reserved address in {net}: ")


def test_a_name_taken_and_freed_while_the_store_creates_it_is_reported_taken_then_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that ignores the lock creates the address's file just before the store links its own and
    removes it just after: the store reports the address taken (it was, at that instant) and, the file being
    gone, reserves it on the next try."""
    net = tmp_path / NETWORK
    real_link = os.link
    raced: list[str] = []

    def link(src: Any, dst: Any, **kwargs: Any) -> None:
        name = os.path.basename(os.fsdecode(dst))
        if raced or parse_ip(name) is None:
            real_link(src, dst, **kwargs)
            return
        raced.append(name)
        (net / name).write_bytes(b"passer\r\neth0")
        try:
            real_link(src, dst, **kwargs)
        finally:
            (net / name).unlink()

    with FileStore(tmp_path, NETWORK) as store:
        monkeypatch.setattr(os, "link", link)
        assert store.reserve(IP, HOLDER, "0") is False
        assert raced == ["10.60.0.2"]
        assert not (net / "10.60.0.2").exists()
        assert store.last_reserved("0") is None
        assert store.release(IP, HOLDER) is False
        assert store.reserve(IP, HOLDER, "0") is True
        assert (net / "10.60.0.2").read_bytes() == b"holder\r\neth0"
        assert store.reservation(IP) == Reservation(ip=IP, owner=HOLDER)
