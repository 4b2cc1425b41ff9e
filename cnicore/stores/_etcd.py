"""The etcd store: one address space shared by many hosts, without a cluster-wide lock per allocation.

Why this design
===============

A design that keeps a whole range in one object and serialises writers with a
cluster-wide lease (whereabouts: one IPPool custom resource per range listing
every allocation, updated under a leader-election lease) makes every ADD of
every node read, rewrite and conflict on one object, and wait for one lease:
the work per allocation grows with the pool and the waiting with the number of
nodes starting pods. Reported at 128 nodes starting pods with many interfaces
at once, allocations queued past kubelet's four-minute sandbox timeout. Calico
instead gives each node affine blocks (a /26 by default) claimed once and then
allocated from without contention; Kubernetes replaced the single bitmap object
of its Service IP allocator with one IPAddress object per address (KEP-1880),
named by the address, so creating it *is* the uniqueness check and unrelated
allocations never touch the same object.

This store does both.

Theory of operation
===================

Keys (``<root>`` is ``<prefix>/<network>``)::

    <root>/ips/4/<8 hex digits>              {"containerID", "ifname", "host", "ip", "nonce"}  a reservation
    <root>/ips/6/<32 hex digits>             same, for IPv6
    <root>/owners/<id>/<ifname>/<4|6>/<hex>  ""   index: what an attachment holds (ifname "%" = legacy owner)
    <root>/blocks/<4|6>/<hex>/<prefixlen>    "<host>"   the host a block is affine to
    <root>/last/<host>/<range set id>        "<ip>"     this host's last reserved address (a hint only)

Address keys are fixed-width hex so that a block is one contiguous key range
(one range read loads it); the address in its usual spelling is in the value.
``<id>`` and ``<ifname>`` are percent-encoded.

What is atomic. A reservation is one etcd transaction: *if* the address key's
create revision is 0 (it does not exist) put the address key, the owner index
key and this host's last-reserved key; otherwise read the key back. Two hosts
racing for one address: exactly one transaction succeeds. A release reads the
key, checks the owner, and deletes the address and index keys in a transaction
that compares the value it read, so a reservation re-created by someone else in
between is never deleted. There is no lock service and no key every allocation
touches: :meth:`EtcdStore.transaction` is only a thread lock inside one process.

Block affinity. Each host claims blocks (``/26`` by default) of a range with a
create-if-absent transaction on the block key, then answers
:meth:`EtcdStore.first_free` from a local view of its own blocks, loaded with one
range read per block. A view that is stale (another host borrowed an address in
our block) only makes :meth:`EtcdStore.reserve` return False; the allocator tries
the next candidate. When the host's blocks in the window are full it reloads
them, then claims the next unclaimed block; when no block is unclaimed it
borrows: it reads the window's address keys and offers the lowest free one,
still reserved by the per-address transaction. So ``first_free`` of this store
returns *a* free address of ``[low, high]`` (the host's preferred one), not the
lowest one, unless ``blockAffinity`` is false; and it returns None only when a
read of the whole window found no free address.

What a failure can leave. Every write is one transaction, so no partial
reservation exists. A request whose connection breaks is sent again to the
next endpoint; a reservation carries a per-call nonce, so a resent reservation
that finds its own earlier write counts as done. If no endpoint answers, the
caller gets :class:`~cnicore.TryAgainLaterError` (code 11) and the reservation
may exist, held by the right owner: the retried ADD or the DEL releases it, as
does GC. Connection refused, timeouts, no leader and lost quorum are code 11;
other endpoints are tried first when a connection is refused. Unreadable values
keep their address occupied (owner None) and are never released.

Who cleans up. :meth:`EtcdStore.gc` releases this host's reservations whose
owner is not among the host's valid attachments; :meth:`EtcdStore.release_host`
releases everything of a host declared gone (reservations, blocks, hints);
:meth:`EtcdStore.sweep` removes owner-index keys whose address key is gone.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import attrs
from netaddr import IPAddress, IPNetwork

from cnicore._errors import InternalError, IOFailureError, TryAgainLaterError
from cnicore.spec._validate import validate_network_name
from cnicore.stores._etcd_config import EtcdStoreConfig, parse_etcd_store_config
from cnicore.stores._goip import canonical_ip, ip_text, parse_ip
from cnicore.stores._index import ReservationIndex

# The store port lives here today; the etcd tests and benchmark take it from this module too, so a move of
# the port is a change of these two lines.
from cnicore.stores._port import Owner as Owner
from cnicore.stores._port import Reservation as Reservation

__all__ = ["EtcdStore", "open_etcd_store"]

_LEGACY_IFNAME = "%"  # quote() never produces a lone "%", so it cannot collide with an interface name
_PAGE = 1000
_CLAIM_ATTEMPTS = 16
_RELEASE_ATTEMPTS = 5
# Server messages that mean "the cluster cannot serve now" rather than "the request is wrong".
_TRANSIENT_MARKERS = ("timed out", "timeout", "leader", "unavailable", "quorum", "too many requests",
                      "deadline", "stopped", "connection", "not capable", "raft")


@attrs.frozen(slots=True)
class _KV:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(obj: Any, field: str) -> bytes:
    raw = obj.get(field, "") if isinstance(obj, dict) else None
    if not isinstance(raw, str):
        raise IOFailureError("malformed response from etcd", f"field {field!r} is not base64 text")
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise IOFailureError("malformed response from etcd", f"field {field!r} is not base64") from exc


def _int_field(obj: Any, field: str) -> int:
    raw = obj.get(field, 0) if isinstance(obj, dict) else None
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise IOFailureError("malformed response from etcd", f"field {field!r} = {raw!r}")
    try:
        return int(raw)  # int64 fields arrive as JSON strings; zero values are omitted
    except (TypeError, ValueError) as exc:
        raise IOFailureError("malformed response from etcd", f"field {field!r} = {raw!r}") from exc


def _prefix_end(prefix: bytes) -> bytes:
    """The range end that selects every key starting with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _put(key: bytes, value: bytes) -> dict[str, Any]:
    return {"request_put": {"key": _b64(key), "value": _b64(value)}}


def _delete(key: bytes, end: bytes | None = None) -> dict[str, Any]:
    request = {"key": _b64(key)}
    if end is not None:
        request["range_end"] = _b64(end)
    return {"request_delete_range": request}


def _get(key: bytes) -> dict[str, Any]:
    return {"request_range": {"key": _b64(key)}}


def _absent(key: bytes) -> dict[str, Any]:
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def _value_is(key: bytes, value: bytes) -> dict[str, Any]:
    return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}


class _Gateway:
    """The only place that touches etcd3gw: typed calls, foreign errors translated, endpoints failed over."""

    def __init__(self, config: EtcdStoreConfig) -> None:
        try:
            import etcd3gw
            from etcd3gw import exceptions
        except ImportError as exc:  # pragma: no cover - the extra is part of the test environment
            raise InternalError("the etcd store needs the optional dependency: pip install 'cnicore[etcd]'") \
                from exc
        self._exceptions = exceptions
        self._clients: list[Any] = []
        for endpoint in config.endpoints:
            parts = urlsplit(endpoint)
            cert_key = config.key_file if config.cert_file else None
            self._clients.append(etcd3gw.Etcd3Client(
                host=parts.hostname or "", port=parts.port or 2379, protocol=parts.scheme,
                ca_cert=config.ca_file, cert_key=cert_key, cert_cert=config.cert_file,
                timeout=config.timeout, api_path="/v3/"))
        self._current = 0
        self.endpoints = config.endpoints

    def close(self) -> None:
        for client in self._clients:
            client.session.close()

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``/v3/<path>`` on the first endpoint that accepts a connection."""
        exceptions = self._exceptions
        count = len(self._clients)
        failure: Exception | None = None
        for attempt in range(count):
            index = (self._current + attempt) % count
            client = self._clients[index]
            try:
                result = client.post(client.get_url(path), json=payload)
            except exceptions.ConnectionFailedError as exc:
                # Refused, reset or 503 (no leader): another member may serve it.
                failure = exc
                continue
            except exceptions.ConnectionTimeoutError as exc:
                raise TryAgainLaterError("etcd did not answer in time", f"{self.endpoints[index]}: {exc}") from exc
            except exceptions.Etcd3Exception as exc:
                detail = str(exc.detail_text or exc)
                if any(marker in detail.lower() for marker in _TRANSIENT_MARKERS):
                    raise TryAgainLaterError("etcd cannot serve the request now", detail) from exc
                raise IOFailureError("etcd refused the request", detail) from exc
            except OSError as exc:  # requests' exceptions are OSErrors
                failure = exc
                continue
            except ValueError as exc:  # a body that is not JSON
                raise IOFailureError("malformed response from etcd", str(exc)) from exc
            if not isinstance(result, dict):
                raise IOFailureError("malformed response from etcd", f"{path}: {result!r}")
            self._current = index
            return result
        raise TryAgainLaterError("no etcd endpoint is reachable",
                                 f"{', '.join(self.endpoints)}: {failure}") from failure

    def range(self, key: bytes, end: bytes | None = None, *, keys_only: bool = False) -> list[_KV]:
        """Every key in ``[key, end)`` (or just ``key``), as one consistent snapshot, in key order."""
        found: list[_KV] = []
        start = key
        revision = 0
        while True:
            payload: dict[str, Any] = {"key": _b64(start), "limit": _PAGE}
            if end is not None:
                payload["range_end"] = _b64(end)
            if keys_only:
                payload["keys_only"] = True
            if revision:
                payload["revision"] = revision
            response = self.call("kv/range", payload)
            page = _kvs(response)
            found.extend(page)
            if not response.get("more") or end is None or not page:
                return found
            # Later pages read at the first page's revision: a snapshot, not a mix of moments.
            revision = _int_field(response.get("header"), "revision")
            start = page[-1].key + b"\x00"

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]] | None = None) -> tuple[bool, list[dict[str, Any]]]:
        """One transaction: whether the comparisons held, and the responses of the branch taken."""
        response = self.call("kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        responses = response.get("responses", [])
        if not isinstance(responses, list):
            raise IOFailureError("malformed response from etcd", f"txn responses = {responses!r}")
        return bool(response.get("succeeded", False)), responses


def _kvs(response: Any) -> list[_KV]:
    raw = response.get("kvs", []) if isinstance(response, dict) else None
    if not isinstance(raw, list):
        raise IOFailureError("malformed response from etcd", f"kvs = {raw!r}")
    return [_KV(key=_unb64(item, "key"), value=_unb64(item, "value"),
                create_revision=_int_field(item, "create_revision"), mod_revision=_int_field(item, "mod_revision"))
            for item in raw]


def _txn_range_result(responses: list[dict[str, Any]]) -> list[_KV]:
    for item in responses:
        if isinstance(item, dict) and "response_range" in item:
            return _kvs(item["response_range"])
    return []


@attrs.frozen(slots=True, kw_only=True)
class _Stored:
    """An address key's value, decoded. ``owner`` None: not a value this store writes (left alone)."""

    owner: Owner | None
    host: str | None


def _decode_value(raw: bytes) -> _Stored:
    try:
        obj = json.loads(raw)
    except ValueError:
        return _Stored(owner=None, host=None)
    if not isinstance(obj, dict):
        return _Stored(owner=None, host=None)
    host = obj.get("host")
    host = host if isinstance(host, str) else None
    container_id = obj.get("containerID")
    ifname = obj.get("ifname")
    if not isinstance(container_id, str) or not (ifname is None or isinstance(ifname, str)):
        return _Stored(owner=None, host=host)
    try:
        return _Stored(owner=Owner(container_id=container_id, ifname=ifname), host=host)
    except ValueError:
        return _Stored(owner=None, host=host)


class EtcdStore:
    """A store port implementation on etcd v3 (through its JSON gateway), shared by every host of a network.

    Args:
        network: the network name (the key subtree ``<prefix>/<network>``).
        config: endpoints, prefix, host name, block sizes (see :func:`parse_etcd_store_config`).

    Nothing is read from etcd until the first operation. Thread-safe.

    :attr:`picks_own_order` tells an allocator that :meth:`first_free` already
    returns the host's preferred address: ask it once for the whole range
    instead of splitting the range at :meth:`last_reserved` (which would make
    the host claim a new block each time its search passes a block's end).

    Raises:
        InvalidConfigError: bad network name (code 7).
        InternalError: etcd3gw is not installed.
    """

    picks_own_order: ClassVar[bool] = True

    def __init__(self, network: str, config: EtcdStoreConfig) -> None:
        validate_network_name(network)
        self.network = network
        self.config = config
        self.host = config.host or socket.gethostname()
        self._root = f"{config.prefix}/{network}/".encode()
        self._gateway = _Gateway(config)
        self._lock = threading.RLock()
        self._closed = False
        # The local view: blocks known claimed (by anyone), which are ours, and what our loaded blocks hold.
        self._blocks: dict[int, list[tuple[int, int, str]]] | None = None  # family -> sorted (first, last, host)
        self._loaded: set[tuple[int, int]] = set()  # (family, first) of own blocks whose addresses are in _view
        self._view = ReservationIndex()

    # ----------------------------------------------------------------- keys

    @staticmethod
    def _hex(ip: IPAddress) -> str:
        return f"{ip.value:08x}" if ip.version == 4 else f"{ip.value:032x}"

    def _ip_key(self, ip: IPAddress) -> bytes:
        return self._root + f"ips/{ip.version}/{self._hex(ip)}".encode()

    def _ips_prefix(self, version: int) -> bytes:
        return self._root + f"ips/{version}/".encode()

    def _ip_from_key(self, key: bytes, version: int) -> IPAddress | None:
        tail = key[len(self._ips_prefix(version)):]
        if len(tail) != (8 if version == 4 else 32) or not all(c in b"0123456789abcdef" for c in tail):
            return None  # not a key this store writes: ignored, never touched
        return IPAddress(int(tail, 16), version)

    def _owner_prefix(self, owner: Owner) -> bytes:
        ifname = _LEGACY_IFNAME if owner.ifname is None else quote(owner.ifname, safe="")
        return self._root + f"owners/{quote(owner.container_id, safe='')}/{ifname}/".encode()

    def _owner_key(self, owner: Owner, ip: IPAddress) -> bytes:
        return self._owner_prefix(owner) + f"{ip.version}/{self._hex(ip)}".encode()

    def _block_prefix(self, version: int) -> bytes:
        return self._root + f"blocks/{version}/".encode()

    def _block_key(self, version: int, first: int, length: int) -> bytes:
        digits = 8 if version == 4 else 32
        return self._block_prefix(version) + f"{first:0{digits}x}/{length}".encode()

    def _last_key(self, range_id: str, host: str | None = None) -> bytes:
        return self._root + f"last/{quote(host or self.host, safe='')}/{quote(range_id, safe='')}".encode()

    def _value(self, ip: IPAddress, owner: Owner) -> bytes:
        obj: dict[str, str] = {"containerID": owner.container_id}
        if owner.ifname is not None:
            obj["ifname"] = owner.ifname
        obj["host"] = self.host
        obj["ip"] = ip_text(ip)
        # Makes each reserve() call's value unique, so a retry after a broken connection recognises its own write.
        obj["nonce"] = secrets.token_hex(8)
        return json.dumps(obj, separators=(",", ":")).encode()

    # ----------------------------------------------------------------- the port

    def transaction(self) -> AbstractContextManager[None]:
        """A re-entrant thread lock: exclusion inside this process only (correctness never needs more)."""
        return _Locked(self._lock)

    def reserve(self, ip: IPAddress, owner: Owner, range_id: str) -> bool:
        """Create-if-absent of the address key, recording this host's last reserved. Not idempotent."""
        ip = canonical_ip(ip)
        key = self._ip_key(ip)
        value = self._value(ip, owner)
        with self._lock:
            ok, responses = self._gateway.txn(
                [_absent(key)],
                [_put(key, value), _put(self._owner_key(owner, ip), b""),
                 _put(self._last_key(range_id), ip_text(ip).encode())],
                [_get(key)])
            if ok:
                self._note(ip, owner)
                return True
            current = _txn_range_result(responses)
            if current and current[0].value == value:
                # This very call's write, committed before a connection broke and sent again elsewhere.
                self._note(ip, owner)
                return True
            self._note(ip, _decode_value(current[0].value).owner if current else None)
            return False

    def release(self, ip: IPAddress, owner: Owner) -> bool:
        """Delete ``ip``'s reservation if ``owner`` holds it (compare-and-delete). Idempotent."""
        ip = canonical_ip(ip)
        key = self._ip_key(ip)
        with self._lock:
            for _ in range(_RELEASE_ATTEMPTS):
                current = self._gateway.range(key)
                if not current:
                    self._forget(ip)
                    # A lone index key (written by hand, or by an older store) must not make DEL loop forever.
                    self._gateway.txn([_absent(key)], [_delete(self._owner_key(owner, ip))])
                    return False
                stored = _decode_value(current[0].value)
                if stored.owner != owner:
                    self._note(ip, stored.owner)
                    return False
                ok, _ = self._gateway.txn([_value_is(key, current[0].value)],
                                          [_delete(key), _delete(self._owner_key(owner, ip))])
                if ok:
                    self._forget(ip)
                    return True
            raise TryAgainLaterError("the reservation keeps changing", f"address {ip_text(ip)}")

    def release_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Release all of ``owner`` (legacy fallback as in the reference). Idempotent."""
        with self._lock:
            targets = [(ip, owner) for ip in self._held_by(owner)]
            if not targets and not owner.legacy:
                legacy = owner.legacy_form()
                targets = [(ip, legacy) for ip in self._held_by(legacy)]
            return [ip for ip, holder in targets if self.release(ip, holder)]

    def find_owner(self, owner: Owner) -> Sequence[IPAddress]:
        """Addresses held by ``owner`` or its container's legacy form (from the owner index). Read-only."""
        found = self._held_by(owner)
        if not owner.legacy:
            found += self._held_by(owner.legacy_form())
        return sorted(found)

    def reservation(self, ip: IPAddress) -> Reservation | None:
        """The reservation of ``ip`` or None. Read-only."""
        ip = canonical_ip(ip)
        current = self._gateway.range(self._ip_key(ip))
        if not current:
            return None
        return Reservation(ip=ip, owner=_decode_value(current[0].value).owner)

    def first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """A free address in ``[low, high]``, this host's preferred one; None only if a full read found none.

        With block affinity: the lowest free address of this host's blocks in the
        window, else of a block it claims now, else the lowest free one of the
        window (borrowed). Without: the lowest free address. Read-only apart
        from claiming blocks.
        """
        low, high = canonical_ip(low), canonical_ip(high)
        if low.version != high.version:
            raise ValueError("first_free: low and high must be of one family")
        if low > high:
            return None
        with self._lock:
            if not self.config.block_affinity:
                return self._scan_first_free(low, high)
            found = self._free_in_own_blocks(low, high, reload=False)
            if found is None:
                found = self._free_in_own_blocks(low, high, reload=True)
            if found is None:
                found = self._claim_block(low, high)
            if found is None:
                found = self._scan_first_free(low, high)
            return found

    def last_reserved(self, range_id: str) -> IPAddress | None:
        """This host's last address reserved for ``range_id``, or None. Read-only."""
        current = self._gateway.range(self._last_key(range_id))
        if not current:
            return None
        try:
            return parse_ip(current[0].value.decode("utf-8"))
        except UnicodeDecodeError:
            return None  # only a hint: an unreadable one is no hint

    def reservations(self) -> Iterator[Reservation]:
        """Every reservation of the network, every host's (a snapshot per family). Read-only."""
        return iter([Reservation(ip=ip, owner=stored.owner) for ip, stored, _ in self._scan_all()])

    def sweep(self) -> int:
        """Delete owner-index keys whose address key is gone; returns how many. Idempotent."""
        with self._lock:
            prefix = self._root + b"owners/"
            removed = 0
            for kv in self._gateway.range(prefix, _prefix_end(prefix), keys_only=True):
                family, _, digits = kv.key.rpartition(b"/")
                version = family.rpartition(b"/")[2]
                if version not in (b"4", b"6"):
                    continue
                ip = self._ip_from_key(self._ips_prefix(int(version)) + digits, int(version))
                if ip is None:
                    continue
                ok, _ = self._gateway.txn([_absent(self._ip_key(ip))], [_delete(kv.key)])
                removed += ok
            return removed

    def close(self) -> None:
        """Close the connections. Idempotent."""
        if not self._closed:
            self._closed = True
            self._gateway.close()

    def __enter__(self) -> EtcdStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EtcdStore(network={self.network!r}, host={self.host!r}, endpoints={list(self.config.endpoints)!r})"

    # ----------------------------------------------------------------- beyond the port

    def host_reservations(self, host: str | None = None) -> list[tuple[IPAddress, Owner | None]]:
        """The reservations made by ``host`` (default: this host), sorted by address. Read-only."""
        host = host or self.host
        return sorted(((ip, stored.owner) for ip, stored, _ in self._scan_all() if stored.host == host),
                      key=lambda item: item[0])

    def gc(self, valid: Iterable[Owner]) -> list[IPAddress]:
        """Release this host's reservations held by no valid attachment; returns them. Idempotent.

        Only this host's reservations are considered: other hosts' attachments
        are not in this host's list. A legacy (ID-only) reservation stays while
        its container has any valid attachment; unreadable values stay.
        """
        attachments = set(valid)
        containers = {owner.container_id for owner in attachments}
        released: list[IPAddress] = []
        with self._lock:
            for ip, owner in self.host_reservations():
                if owner is None:
                    continue
                alive = owner.container_id in containers if owner.legacy else owner in attachments
                if not alive and self.release(ip, owner):
                    released.append(ip)
        return released

    def release_host(self, host: str) -> int:
        """Reclaim everything of ``host``, declared gone: its reservations, blocks and hints. Idempotent.

        Returns how many reservations were released. Each deletion compares the
        value it read, so nothing re-created meanwhile by a live host is touched.
        """
        released = 0
        with self._lock:
            for ip, stored, raw in self._scan_all():
                if stored.host != host:
                    continue
                deletes = [_delete(self._ip_key(ip))]
                if stored.owner is not None:
                    deletes.append(_delete(self._owner_key(stored.owner, ip)))
                ok, _ = self._gateway.txn([_value_is(self._ip_key(ip), raw)], deletes)
                if ok:
                    released += 1
                    self._forget(ip)
            for version in (4, 6):
                prefix = self._block_prefix(version)
                for kv in self._gateway.range(prefix, _prefix_end(prefix)):
                    if kv.value == host.encode():
                        self._gateway.txn([_value_is(kv.key, kv.value)], [_delete(kv.key)])
            last = self._root + f"last/{quote(host, safe='')}/".encode()
            self._gateway.txn([], [_delete(last, _prefix_end(last))])
            self._blocks = None
            if host == self.host:
                self._loaded.clear()
                self._view.clear()
        return released

    def blocks(self) -> dict[IPNetwork, str]:
        """Every claimed block and the host it is affine to. Read-only."""
        with self._lock:
            self._load_blocks()
            assert self._blocks is not None
            return {IPNetwork((first, (32 if v == 4 else 128) - (last - first).bit_length()), version=v): host
                    for v, spans in self._blocks.items() for first, last, host in spans}

    # ----------------------------------------------------------------- internals

    def _held_by(self, owner: Owner) -> list[IPAddress]:
        prefix = self._owner_prefix(owner)
        found = []
        for kv in self._gateway.range(prefix, _prefix_end(prefix), keys_only=True):
            version, _, digits = kv.key[len(prefix):].partition(b"/")
            if version in (b"4", b"6"):
                ip = self._ip_from_key(self._ips_prefix(int(version)) + digits, int(version))
                if ip is not None:
                    found.append(ip)
        return found

    def _scan_all(self) -> list[tuple[IPAddress, _Stored, bytes]]:
        found = []
        for version in (4, 6):
            prefix = self._ips_prefix(version)
            for kv in self._gateway.range(prefix, _prefix_end(prefix)):
                ip = self._ip_from_key(kv.key, version)
                if ip is not None:
                    found.append((ip, _decode_value(kv.value), kv.value))
        return found

    def _note(self, ip: IPAddress, owner: Owner | None) -> None:
        if self._in_loaded_block(ip):
            self._view.put(ip, owner)

    def _forget(self, ip: IPAddress) -> None:
        self._view.discard(ip)

    def _shift(self, version: int) -> int:
        bits = 32 if version == 4 else 128
        return bits - (self.config.block_size if version == 4 else self.config.block_size6)

    def _in_loaded_block(self, ip: IPAddress) -> bool:
        shift = self._shift(ip.version)
        return (ip.version, (ip.value >> shift) << shift) in self._loaded

    def _load_blocks(self) -> None:
        blocks: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
        for version in (4, 6):
            prefix = self._block_prefix(version)
            for kv in self._gateway.range(prefix, _prefix_end(prefix)):
                digits, _, length = kv.key[len(prefix):].partition(b"/")
                try:
                    first, plen = int(digits, 16), int(length)
                except ValueError:
                    continue  # not a key this store writes
                bits = 32 if version == 4 else 128
                if not 0 <= plen <= bits:
                    continue
                host = kv.value.decode("utf-8", "replace")
                blocks[version].append((first, first + (1 << (bits - plen)) - 1, host))
            blocks[version].sort()
        self._blocks = blocks

    def _own_blocks(self, low: IPAddress, high: IPAddress) -> list[tuple[int, int]]:
        if self._blocks is None:
            self._load_blocks()
        assert self._blocks is not None
        return [(first, last) for first, last, host in self._blocks[low.version]
                if host == self.host and last >= low.value and first <= high.value]

    def _load_block_view(self, version: int, first: int, last: int) -> None:
        for ip in [ip for ip in list(self._view_ips(version, first, last))]:
            self._view.discard(ip)
        end = IPAddress(last, version)
        for kv in self._gateway.range(self._ip_key(IPAddress(first, version)),
                                      self._ip_key(end) + b"\x00"):
            ip = self._ip_from_key(kv.key, version)
            if ip is not None:
                self._view.put(ip, _decode_value(kv.value).owner)
        self._loaded.add((version, first))

    def _view_ips(self, version: int, first: int, last: int) -> Iterator[IPAddress]:
        for reservation in self._view.items():
            if reservation.ip.version == version and first <= reservation.ip.value <= last:
                yield reservation.ip

    def _free_in_own_blocks(self, low: IPAddress, high: IPAddress, *, reload: bool) -> IPAddress | None:
        own = self._own_blocks(low, high)
        if reload:
            if not own:
                return None
            self._load_blocks()  # a block may have been reclaimed by release_host meanwhile
            own = self._own_blocks(low, high)
        version = low.version
        for first, last in own:
            if reload or (version, first) not in self._loaded:
                self._load_block_view(version, first, last)
            found = self._view.first_free(IPAddress(max(first, low.value), version),
                                          IPAddress(min(last, high.value), version))
            if found is not None:
                return found
        return None

    def _claim_block(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """Claim unclaimed blocks of the window, in order, until one has a free address in it."""
        version = low.version
        shift = self._shift(version)
        plen = (32 if version == 4 else 128) - shift
        self._load_blocks()
        assert self._blocks is not None
        spans = self._blocks[version]
        starts = [first for first, _, _ in spans]
        index = low.value >> shift
        attempts = 0
        while index <= high.value >> shift and attempts < _CLAIM_ATTEMPTS:
            first = index << shift
            last = first + (1 << shift) - 1
            # Skip past every claimed span that overlaps this block (spans may differ in size between hosts).
            i = bisect_right(starts, last) - 1
            overlap = next((span for span in reversed(spans[max(0, i - 8):i + 1]) if span[1] >= first), None)
            if overlap is not None:
                index = (overlap[1] >> shift) + 1
                continue
            attempts += 1
            key = self._block_key(version, first, plen)
            ok, responses = self._gateway.txn([_absent(key)], [_put(key, self.host.encode())], [_get(key)])
            holder = self.host if ok else next((kv.value.decode("utf-8", "replace")
                                                for kv in _txn_range_result(responses)), "")
            position = bisect_right(starts, first)
            starts.insert(position, first)
            spans.insert(position, (first, last, holder))
            if holder == self.host:
                self._load_block_view(version, first, last)
                found = self._view.first_free(IPAddress(max(first, low.value), version),
                                              IPAddress(min(last, high.value), version))
                if found is not None:
                    return found
            index += 1
        return None

    def _scan_first_free(self, low: IPAddress, high: IPAddress) -> IPAddress | None:
        """Lowest free address of the window from a read of its address keys (keys only)."""
        version = low.version
        expected = low.value
        for kv in self._gateway.range(self._ip_key(low), self._ip_key(high) + b"\x00", keys_only=True):
            ip = self._ip_from_key(kv.key, version)
            if ip is None:
                continue
            if ip.value > expected:
                break
            expected = ip.value + 1
        return IPAddress(expected, version) if expected <= high.value else None


def open_etcd_store(value: Any, network: str, *, key: str = "ipam.store") -> EtcdStore:
    """The store an ``ipam.store`` object of type ``etcd`` selects, for ``network``.

    Args:
        value: the decoded JSON of ``ipam.store``.
        network: the network name.
        key: the key path of ``value`` for error messages.

    Raises:
        InvalidConfigError: code 7, naming the key path.
    """
    return EtcdStore(network, parse_etcd_store_config(value, key=key))


class _Locked(AbstractContextManager[None]):
    __slots__ = ("_lock",)

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
