"""The store port: the few operations host-local IPAM needs from where reservations live.

A reservation says "address X belongs to attachment (container ID, interface)".
The port is shaped so that a distributed store fits it without a global lock:
:meth:`IPStore.reserve` is a create-if-absent of one key per address (an etcd
transaction comparing the key's create revision with 0), and every release
compares the owner before deleting (an etcd transaction comparing the value).
:meth:`IPStore.transaction` then only needs to give mutual exclusion where the
store has it to give (the file store's flock); correctness never depends on it.

:class:`MemoryStore <cnicore.stores.MemoryStore>` defines the semantics; every
other store is checked against it by the state machine in the test suite.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import attrs
from netaddr import IPAddress  # type: ignore[import-untyped, unused-ignore]

from cnicore._gofmt import GO_SPACE as _GO_SPACE
from cnicore._gofmt import go_has_space as _has_space
from cnicore.stores._keyindex import LINE_BREAK, MAX_OWNER_BYTES

__all__ = ["IPStore", "Owner", "Reservation", "owner_from_text"]


@attrs.frozen(slots=True, kw_only=True)
class Owner:
    """Who holds a reservation: an attachment ``(container_id, ifname)``.

    ``ifname`` is None for the legacy form written by host-local before v0.8.0,
    which recorded only the container ID. A legacy owner matches every interface
    of its container when releasing or checking, as in the reference.
    """

    container_id: str = attrs.field()
    ifname: str | None = attrs.field(default=None)

    @ifname.validator
    def _check_ifname(self, _attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None and (not value or _has_space(value)):
            raise ValueError(f"invalid interface name for a reservation: {value!r}")

    @container_id.validator
    def _check_id(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not value or _has_space(value):
            # Stored as TrimSpace(id); an ID with inner whitespace could not be read back unambiguously.
            raise ValueError(f"invalid container ID for a reservation: {value!r}")

    def __attrs_post_init__(self) -> None:
        size = len(self.text().encode("utf-8", "surrogatepass"))
        if size > MAX_OWNER_BYTES:
            # A store could not read such an owner back: it would take its own reservation for a stranger's.
            raise ValueError(f"owner too long for a reservation ({size} bytes, at most {MAX_OWNER_BYTES})")

    @property
    def legacy(self) -> bool:
        """True for the ID-only form."""
        return self.ifname is None

    def text(self) -> str:
        """The reservation file content: ``<id>\\r\\n<ifname>`` (no newline), or ``<id>`` for legacy."""
        if self.ifname is None:
            return self.container_id
        return self.container_id + LINE_BREAK + self.ifname

    def legacy_form(self) -> Owner:
        """The legacy owner with the same container ID."""
        return Owner(container_id=self.container_id)

    @classmethod
    def attachment(cls, container_id: str, ifname: str) -> Owner:
        """The owner for an ADD: the container ID trimmed as the reference stores it."""
        return cls(container_id=container_id.strip(_GO_SPACE), ifname=ifname)


def owner_from_text(text: str) -> Owner | None:
    """Read reservation content back; None when it is not a form either implementation writes.

    The rule mirrors how the reference matches content (``TrimSpace(content)``
    compared with ``id + "\\r\\n" + ifname`` or with ``id``): surrounding
    whitespace is ignored; ``id\\r\\nifname`` with neither part containing
    whitespace is an attachment; a lone ``id`` without whitespace is legacy;
    anything else is unreadable (the address stays occupied, nothing releases it).
    """
    trimmed = text.strip(_GO_SPACE)
    container_id, sep, ifname = trimmed.partition(LINE_BREAK)
    if not container_id or _has_space(container_id):
        return None
    if not sep:
        return Owner(container_id=container_id)
    if not ifname or _has_space(ifname):
        return None
    return Owner(container_id=container_id, ifname=ifname)


@attrs.frozen(slots=True, kw_only=True)
class Reservation:
    """One reserved address. ``owner`` is None when the store holds content it cannot read."""

    ip: IPAddress
    owner: Owner | None


@runtime_checkable
class IPStore(Protocol):
    """Where host-local reservations live, for one network.

    All methods may be called inside or outside :meth:`transaction`; outside,
    each is its own transaction. Errors are cnicore errors: ``IOFailureError``
    (code 5) when the medium fails, ``TryAgainLaterError`` (code 11) when the
    store is busy past its timeout.
    """

    def transaction(self) -> AbstractContextManager[None]:
        """Exclusive section for a whole ADD, DEL, CHECK or GC. Re-entrant in one thread."""
        ...

    def reserve(self, ip: IPAddress, owner: Owner, range_id: str) -> bool:
        """Create the reservation if the address is free and record it as ``range_id``'s last reserved.

        Returns False (and changes nothing) when the address is already
        reserved, by anyone. Not idempotent: a second identical call returns False.
        """
        ...

    def release(self, ip: IPAddress, owner: Owner) -> bool:
        """Delete the reservation of ``ip`` if (and only if) ``owner`` holds it.

        Returns whether something was deleted. Idempotent.
        """
        ...

    def release_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Release everything ``owner`` holds; the reference's DEL rule.

        Deletes every reservation held exactly by ``owner``; if there was none,
        deletes the legacy (ID-only) reservations of its container. Returns the
        addresses released. Idempotent.
        """
        ...

    def find_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Addresses held by ``owner`` or by the legacy form of its container. Read-only."""
        ...

    def reservation(self, ip: IPAddress) -> Reservation | None:
        """The reservation of ``ip``, or None when it is free. Read-only."""
        ...

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """The lowest unreserved address in ``[low, high]`` (same family), or None. Read-only.

        This is what keeps allocation fast: implementations answer it without
        visiting the reserved addresses one by one.

        A store shared without a lock (several hosts on etcd) answers from a view
        that may be stale: it may offer an address someone else has just taken
        (:meth:`reserve` then returns False, and the caller asks again). Such a
        store returns None only when it found the window full.

        A store whose class sets ``picks_own_order = True`` answers with *its*
        preferred free address of the window, not necessarily the lowest (the
        etcd store: one from this host's blocks). An allocator then asks it
        for each whole range instead of splitting ranges at
        :meth:`last_reserved`, and keeps asking until it returns None. Stores
        without the attribute are treated as ``picks_own_order = False``.
        """
        ...

    def last_reserved(self, range_id: str) -> IPAddress | None:
        """The address most recently reserved for ``range_id``, or None. Read-only."""
        ...

    def reservations(self) -> Iterator[Reservation]:
        """Every reservation, in no particular order (a snapshot). Read-only."""
        ...

    def sweep(self) -> int:
        """Remove the store's own debris (e.g. temp files a crash left); returns how many. Idempotent."""
        ...

    def close(self) -> None:
        """Release the store's resources. Idempotent."""
        ...
