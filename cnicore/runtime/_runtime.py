"""The runtime: attach containers to networks, detach, check, GC and recover, as libcni does and safer.

:class:`Runtime` is what a container runtime (the Mesos ``network/cni``
isolator, a CRI implementation, the ``cnicore`` command) calls. It follows
libcni's ``AddNetworkList``/``DelNetworkList``/``CheckNetworkList``/
``GCNetworkList``/``GetStatusNetworkList`` step for step, so that plugins get the
same stdin and environment and the result cache holds the same bytes (see
:mod:`cnicore.runtime._cache`), and differs where libcni leaves a host in a state
nobody can clean up:

* **Crash safety.** Before the first plugin of an ADD runs, a journal entry
  records what DEL needs; it is removed once the result is cached. If the
  process dies in between, :meth:`Runtime.recover` finds the entry and runs DEL
  for it (see :mod:`cnicore.runtime._journal`).
* **Failed ADDs are rolled back.** When a plugin of the list fails, libcni
  returns the error and keeps nothing, so what the earlier plugins made
  (addresses above all) leaks. cnicore runs DEL on the whole list (reverse
  order, no ``prevResult``, as recovery does), then reports the ADD error; if
  that DEL fails too, the journal entry stays and ``recover()`` retries it.
* **Interface names are allocated safely.** Without an ``ifname``, attach picks
  the first ``ethN`` the container uses neither in the cache nor in a pending
  ADD, under a lock shared by every process using the cache directory. An
  explicit name the container already uses is refused before any plugin runs
  (``AlreadyExistsError``): the plugins would fail anyway, and the clean-up DEL
  would then tear down the *existing* interface.
* **DEL is retryable.** A failed DEL keeps the cache entry (and its netns,
  ``CNI_ARGS`` and capability arguments) so the same call can be repeated.
* **GC never races an ADD.** ADDs of a network hold its GC lock shared; GC takes
  it exclusively, and counts attachments whose ADD is still running as valid.
* **The configuration directory is followed.** Networks are reloaded when a file
  or the directory changes, without a restart; two files defining one network
  name are refused (code 7) instead of letting file order decide.

Which configuration DEL uses. Given a :class:`~cnicore.config.NetworkConfigList`,
that one. Given a name, the configuration the attachment was made with, from its
journal or cache entry, unless the directory still holds the network with the
very same bytes (then the directory's, which also knows the plugins of the
network's sibling folder); without either, the directory's. So deleting or
editing a file does not strand the containers attached with it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from cnicore._errors import (
    AlreadyExistsError,
    CNIError,
    IncompatibleVersionError,
    InternalError,
    InvalidConfigError,
    InvalidInputError,
    NotFoundError,
    TryAgainLaterError,
)
from cnicore._gofmt import go_quote
from cnicore.config._directory import NetworkListing, check_unique_network_names, list_networks
from cnicore.config._gojson import go_map_marshal, rebuild
from cnicore.config._model import NetworkConfigList, PluginConfig
from cnicore.config._parse import parse_network_config_list, parse_plugin_config
from cnicore.config._request import build_gc_request, build_request
from cnicore.runtime._cache import (
    CachedAttachment,
    cache_file_path,
    delete_cache_entry,
    list_cache_entries,
    read_cache_entry,
    read_cached_result,
    sweep_cache_temporaries,
    write_cache_entry,
)
from cnicore.runtime._invoker import PluginRunner, PluginTarget
from cnicore.runtime._journal import (
    PendingAttachment,
    PendingLock,
    RuntimeLocks,
    claim_pending,
    create_pending,
    is_pending_alive,
    list_pending,
    pending_path,
    read_pending,
)
from cnicore.spec._result import AnyResult
from cnicore.spec._validate import (
    validate_container_id,
    validate_environment_value,
    validate_interface_name,
    validate_network_name,
)
from cnicore.spec._version import compare_versions, result_family

if TYPE_CHECKING:
    from cnicore.links import Firewall, LinkBackend

__all__ = ["GCReport", "RecoveryReport", "Runtime"]

_CHECK_VERSION = "0.4.0"
_GC_VERSION = "1.1.0"
_IFNAME_PREFIX = "eth"


def _read_only(value: Mapping[str, tuple[tuple[str, str], ...]]) -> Mapping[str, tuple[tuple[str, str], ...]]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class GCReport:
    """What :meth:`Runtime.gc` did.

    Attributes:
        removed: the stale attachments that were detached (DEL succeeded).
        errors: every failure, in order (``failed to delete stale attachment <id>
            <ifname>: ...``, ``failed to GC plugin <type>: ...``); GC goes on after each.
        valid: per network GC'd, the ``(container ID, ifname)`` pairs sent to the
            plugins as ``cni.dev/valid-attachments``.
        skipped: networks left alone because of ``disableGC``.
    """

    removed: tuple[CachedAttachment, ...] = ()
    errors: tuple[CNIError, ...] = ()
    valid: Mapping[str, tuple[tuple[str, str], ...]] = attrs.field(factory=dict, converter=_read_only)
    skipped: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class RecoveryReport:
    """What :meth:`Runtime.recover` did.

    Attributes:
        released: interrupted ADDs that were undone (DEL succeeded, journal entry removed).
        stale: journal entries whose ADD had been committed to the cache (just removed).
        in_progress: journal files whose writer is alive (left alone).
        errors: failures (the entry stays for the next attempt).
    """

    released: tuple[PendingAttachment, ...] = ()
    stale: tuple[PendingAttachment, ...] = ()
    in_progress: tuple[str, ...] = ()
    errors: tuple[CNIError, ...] = ()


def _wrap(exc: CNIError, prefix: str) -> CNIError:
    """The same kind of error, with the same code, its message prefixed (Go's ``fmt.Errorf("...: %w")``)."""
    try:
        wrapped = type(exc)(prefix + exc.msg, exc.details, code=exc.code, key=exc.key,
                            **({"value": exc.value} if exc.has_value else {}))
    except TypeError:  # a subclass with another constructor
        wrapped = CNIError(prefix + exc.msg, exc.details, code=exc.code)
    wrapped.__cause__ = exc
    return wrapped


def _describe(plugin: PluginConfig) -> str:
    # libcni's pluginDescription.
    text = f"type={go_quote(plugin.type)}"
    return text + f" name={go_quote(plugin.name)}" if plugin.name else text


def _version_at_least(version: str, minimum: str) -> bool:
    return compare_versions(version, minimum) >= 0


def _normalise_args(args: Mapping[str, str] | Sequence[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    if args is None:
        return ()
    items = list(args.items()) if isinstance(args, Mapping) else list(args)
    pairs: list[tuple[str, str]] = []
    for item in items:
        try:
            key, value = item
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"CNI_ARGS entries must be (key, value) pairs, not {item!r}", key="args",
                                    value=repr(item)) from exc
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInputError(f"CNI_ARGS key and value must be strings: {key!r}={value!r}",
                                    key=f"args.{key}", value=repr(value))
        validate_environment_value("CNI_ARGS", key)
        validate_environment_value("CNI_ARGS", value)
        if not key or any(c in key for c in ";=") or any(c in value for c in ";="):
            raise InvalidInputError(f"CNI_ARGS pair {key}={value} cannot be written: keys must be non-empty and "
                                    "neither keys nor values may contain ';' or '='", key=f"args.{key}",
                                    value=value)
        pairs.append((key, value))
    return tuple(pairs)


def _normalise_capability_args(capability_args: Mapping[str, Any] | None) -> dict[str, Any]:
    if not capability_args:
        return {}
    if not isinstance(capability_args, Mapping) or not all(isinstance(k, str) for k in capability_args):
        raise InvalidInputError("capability arguments must be a mapping with string keys",
                                key="capability_args", value=repr(capability_args))
    plain: dict[str, Any] = rebuild(capability_args)
    go_map_marshal(plain)  # refuses (code 6/7) what cannot be written as JSON
    return plain


def _args_text(pairs: Iterable[tuple[str, str]]) -> str:
    return ";".join(f"{k}={v}" for k, v in pairs)


def _directory_signature(directory: str) -> tuple[Any, ...]:
    """What changes when a configuration file or a sibling plugin folder changes."""
    def stat_of(path: str) -> tuple[Any, ...]:
        try:
            info = os.stat(path)
        except OSError:
            return ()
        return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns

    items: list[tuple[Any, ...]] = [(directory, *stat_of(directory))]
    try:
        with os.scandir(directory) as entries:
            listed = sorted(entries, key=lambda e: e.name)
    except OSError:
        return tuple(items)
    for entry in listed:
        items.append((entry.name, *stat_of(entry.path)))
        with contextlib.suppress(OSError):
            if entry.is_dir():
                with os.scandir(entry.path) as inner:
                    for sub in sorted(inner, key=lambda e: e.name):
                        items.append((entry.name, sub.name, *stat_of(sub.path)))
    return tuple(items)


class Runtime:
    """Attach containers to CNI networks and detach them (libcni's semantics; see the module docstring).

    Args:
        config_dir: where the networks are (``.conf``, ``.conflist``, ``.json``).
        plugin_path: where plugin binaries are searched (``CNI_PATH``), in order.
        cache_dir: libcni's cache directory (results in ``<cache_dir>/results``; the
            journal and locks in ``<cache_dir>/cnicore``).
        backend: the link backend of in-process plugins (None: chosen on first use
            by :func:`cnicore.backends.select_backend`, honouring ``CNICORE_BACKEND``).
        firewall: the firewall of in-process plugins (None: iptables, or the fake
            firewall on the fake backend).
        timeout: seconds each executed plugin may run before it is killed (code 11).
        in_process: run our own plugin types in process (see :mod:`cnicore.runtime._invoker`).
        environ: the base environment of executed plugins (None: ``os.environ``).
        lock_timeout: seconds to wait for a lock (another attach choosing interface
            names, a GC) before giving up with :class:`~cnicore.TryAgainLaterError`.

    Thread-safe; any number of processes may share the directories.
    """

    def __init__(self, *, config_dir: str | os.PathLike[str] = "/etc/cni/net.d",
                 plugin_path: Sequence[str] = ("/opt/cni/bin",),
                 cache_dir: str | os.PathLike[str] = "/var/lib/cni",
                 backend: LinkBackend | None = None,
                 firewall: Firewall | None = None,
                 timeout: float = 60.0,
                 in_process: bool = True,
                 environ: Mapping[str, str] | None = None,
                 lock_timeout: float = 120.0) -> None:
        if isinstance(plugin_path, str):
            plugin_path = plugin_path.split(":")
        if not timeout > 0:
            raise InvalidInputError(f"timeout must be positive, not {timeout!r}", key="timeout", value=timeout)
        self.config_dir = os.fspath(config_dir)
        self.plugin_path = tuple(os.fspath(p) for p in plugin_path)
        self.cache_dir = os.fspath(cache_dir)
        self.timeout = float(timeout)
        self._runner = PluginRunner(plugin_path=self.plugin_path, backend=backend, firewall=firewall,
                                    timeout=self.timeout, in_process=in_process,
                                    environ=dict(environ) if environ is not None else None)
        self._locks = RuntimeLocks(self.cache_dir, lock_timeout)
        self._lock = threading.Lock()
        self._signature: tuple[Any, ...] | None = None
        self._listing = NetworkListing(networks=(), failures=())

    # -- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Release what in-process plugins hold open (host-local's stores). Idempotent."""
        self._runner.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- networks ------------------------------------------------------------------------------------

    def _current_listing(self) -> NetworkListing:
        with self._lock:
            signature = _directory_signature(self.config_dir)
            if signature != self._signature:
                self._listing = list_networks(self.config_dir)
                self._signature = signature
            return self._listing

    @property
    def load_failures(self) -> tuple[tuple[str, CNIError], ...]:
        """The configuration files that failed to load, with why (as of the last reload)."""
        return self._current_listing().failures

    def networks(self) -> Mapping[str, NetworkConfigList]:
        """Every network of the configuration directory by name, reloaded when the directory changed.

        Files that fail to load are skipped (see :attr:`load_failures`), as runtimes skip them.

        Raises:
            InvalidConfigError: (code 7) two files define one network name
                (``duplicate network name "x" in <first> and <second>``).
        """
        listing = self._current_listing()
        check_unique_network_names(listing.networks)
        return MappingProxyType({n.name: n for n in listing.networks})

    def network(self, name: str) -> NetworkConfigList:
        """The network called ``name``.

        Raises:
            NotFoundError: ``no net configuration with name "<name>" in <dir>`` (the
                details name the files that failed to load, if any).
            InvalidConfigError: (code 7) two files define it.
        """
        listing = self._current_listing()
        matches = [n for n in listing.networks if n.name == name]
        if len(matches) > 1:
            check_unique_network_names(matches)
        if not matches:
            details = "; ".join(f"{path}: {error}" for path, error in listing.failures)
            raise NotFoundError(f"no net configuration with name {go_quote(name)} in {self.config_dir}",
                                f"files that failed to load: {details}" if details else "")
        return matches[0]

    def _resolve(self, network: str | NetworkConfigList) -> NetworkConfigList:
        return network if isinstance(network, NetworkConfigList) else self.network(network)

    # -- running plugins -----------------------------------------------------------------------------

    def _target(self, plugin: PluginConfig, operation: str) -> PluginTarget:
        try:
            return self._runner.target(plugin.type)
        except CNIError as exc:
            raise _wrap(exc, f"plugin {_describe(plugin)} failed ({operation}): ") from exc

    def _delete_chain(self, net: NetworkConfigList, container_id: str, netns: str, ifname: str,
                      cni_args: tuple[tuple[str, str], ...], capability_args: Mapping[str, Any],
                      prev: AnyResult | None, *, keep_going: bool = False) -> list[CNIError]:
        """DEL on every plugin in reverse; the first error raised (or, with ``keep_going``, all returned)."""
        errors: list[CNIError] = []
        prev_object = prev.to_object() if prev is not None else None
        for index in reversed(range(len(net.plugins))):
            plugin = net.plugins[index]
            try:
                target = self._runner.target(plugin.type)
                stdin = build_request(net, index, prev_result=prev_object, capability_args=capability_args)
                self._runner.run(target, "DEL", stdin, container_id=container_id, netns=netns, ifname=ifname,
                                 args=_args_text(cni_args), cni_version=net.cni_version)
            except CNIError as exc:
                wrapped = _wrap(exc, f"plugin {_describe(plugin)} failed (delete): ")
                if not keep_going:
                    raise wrapped from exc
                errors.append(wrapped)
        return errors

    # -- attach --------------------------------------------------------------------------------------

    def _attachments_in_use(self, container_id: str, network: str | None = None) -> list[tuple[str, str]]:
        """``(ifname, network)`` of every pending, then every cached, attachment of the container."""
        # Journal entries first, then the cache: an ADD that commits meanwhile writes its cache entry before
        # it removes its journal entry, so it is seen in one of the two whatever the timing.
        found: list[tuple[str, str]] = []
        for path in list_pending(self.cache_dir, container_id):
            entry = read_pending(path)
            if entry is not None and entry.container_id == container_id and network in (None, entry.network):
                found.append((entry.ifname, entry.network))
        found += [(a.ifname, a.network) for a in list_cache_entries(self.cache_dir, container_id, network)]
        return found

    def _used_ifnames(self, container_id: str) -> dict[str, str]:
        """Interface name -> network, for every cached or pending attachment of the container."""
        used: dict[str, str] = {}
        for ifname, network in self._attachments_in_use(container_id):
            used.setdefault(ifname, network)
        return used

    def _begin(self, net: NetworkConfigList, container_id: str, netns: str, ifname: str | None,
               cni_args: tuple[tuple[str, str], ...], capability_args: Mapping[str, Any]) -> PendingLock:
        with self._locks.attach_stripe(container_id):
            used = self._used_ifnames(container_id)
            if ifname is None:
                number = 0
                while f"{_IFNAME_PREFIX}{number}" in used:
                    number += 1
                ifname = f"{_IFNAME_PREFIX}{number}"
            elif ifname in used:
                raise AlreadyExistsError(
                    f"container {container_id} already has interface {ifname} (network {used[ifname]})",
                    "detach it first, or call recover() if an attach of it was interrupted")
            entry = PendingAttachment(network=net.name, container_id=container_id, ifname=ifname, netns=netns,
                                      cni_args=cni_args, capability_args=capability_args, config=net.bytes,
                                      plugins=tuple(p.bytes for p in net.plugins))
            return create_pending(self.cache_dir, entry)

    def attach(self, container_id: str, network: str | NetworkConfigList, netns: str, ifname: str | None = None, *,
               args: Mapping[str, str] | Sequence[tuple[str, str]] = (),
               capability_args: Mapping[str, Any] | None = None,
               result_version: str | None = None) -> AnyResult:
        """ADD: attach the container to the network; return the result.

        Args:
            container_id: the container (``CNI_CONTAINERID``).
            network: a network name from the configuration directory, or a network.
            netns: the container's network namespace path (``CNI_NETNS``).
            ifname: the interface name (``CNI_IFNAME``); None: the first ``ethN`` the
                container does not use yet (:meth:`attach_entry` says which).
            args: ``CNI_ARGS`` pairs (a mapping or a sequence of pairs).
            capability_args: values for the plugins' capabilities (``portMappings``...):
                each plugin gets those it enables in ``runtimeConfig``.
            result_version: the version to return the result in (default: the
                network's); e.g. ``"0.2.0"`` for a Mesos agent that reads ``ip4``.

        Returns:
            The last plugin's result, converted.

        Raises:
            CNIError: a plugin's error as ``plugin type="<type>" failed (add): <error>``
                with the plugin's code, after the clean-up DEL (see the module docstring);
                validation errors (container ID code 3/4, interface name code 4, network
                name code 7); :class:`~cnicore.AlreadyExistsError` for an interface
                name the container uses already.
        """
        return self._attach(container_id, network, netns, ifname, args, capability_args, result_version)[1]

    def attach_entry(self, container_id: str, network: str | NetworkConfigList, netns: str,
                     ifname: str | None = None, *, args: Mapping[str, str] | Sequence[tuple[str, str]] = (),
                     capability_args: Mapping[str, Any] | None = None) -> CachedAttachment:
        """:meth:`attach`, returning the committed cache entry (its ``ifname``, and the result as cached)."""
        return self._attach(container_id, network, netns, ifname, args, capability_args, None)[0]

    def _attach(self, container_id: str, network: str | NetworkConfigList, netns: str, ifname: str | None,
                args: Mapping[str, str] | Sequence[tuple[str, str]], capability_args: Mapping[str, Any] | None,
                result_version: str | None) -> tuple[CachedAttachment, AnyResult]:
        net = self._resolve(network)
        validate_container_id(container_id)
        validate_network_name(net.name)
        validate_environment_value("CNI_NETNS", netns)
        if ifname is not None:
            validate_interface_name(ifname)
        if result_version is not None:
            result_family(result_version)  # an unknown version is refused before anything runs
        if not net.plugins:
            raise InvalidConfigError("no plugin configs found", key="plugins")
        cni_args = _normalise_args(args)
        caps = _normalise_capability_args(capability_args)
        targets = [self._target(plugin, "add") for plugin in net.plugins]
        with self._locks.gc_lock(net.name, exclusive=False):
            held = self._begin(net, container_id, netns, ifname, cni_args, caps)
            try:
                return self._add(net, targets, held, cni_args, caps, result_version)
            finally:
                held.release()

    def _add(self, net: NetworkConfigList, targets: list[PluginTarget], held: PendingLock,
             cni_args: tuple[tuple[str, str], ...], caps: Mapping[str, Any],
             result_version: str | None) -> tuple[CachedAttachment, AnyResult]:
        entry = held.entry
        assert entry is not None
        container_id, ifname, netns = entry.container_id, entry.ifname, entry.netns
        prev: AnyResult | None = None
        try:
            for index, plugin in enumerate(net.plugins):
                try:
                    stdin = build_request(net, index, prev_result=prev.to_object() if prev is not None else None,
                                          capability_args=caps)
                    prev = self._runner.run(targets[index], "ADD", stdin, container_id=container_id, netns=netns,
                                            ifname=ifname, args=_args_text(cni_args), cni_version=net.cni_version)
                except CNIError as exc:
                    raise _wrap(exc, f"plugin {_describe(plugin)} failed (add): ") from exc
            assert prev is not None
            wanted = result_version if result_version is not None else net.cni_version
            try:
                returned = prev.as_version(wanted)
            except CNIError as exc:
                raise _wrap(exc, f"the result cannot be given as version {go_quote(wanted or '0.1.0')}: ") from exc
            try:
                cached = write_cache_entry(self.cache_dir, network=net.name, container_id=container_id,
                                           ifname=ifname, config=net.bytes, netns=netns, cni_args=cni_args,
                                           capability_args=caps, result=prev)
            except CNIError as exc:
                raise _wrap(exc, f"failed to set network {go_quote(net.name)} cached result: ") from exc
        except CNIError as failure:
            self._roll_back(net, entry, held, failure)
            raise
        # Committed. A journal entry that cannot be removed is harmless: recover() sees the cache entry.
        with contextlib.suppress(CNIError):
            held.remove()
        return cached, returned

    def _roll_back(self, net: NetworkConfigList, entry: PendingAttachment, held: PendingLock,
                   failure: CNIError) -> None:
        # Nothing was cached: the cache entry is written last, atomically.
        errors = self._delete_chain(net, entry.container_id, entry.netns, entry.ifname, entry.cni_args,
                                    entry.capability_args, None, keep_going=True)
        if errors:
            failure.add_note("the clean-up DEL failed too, so the attempt stays in the journal for recover(): "
                             + "; ".join(str(e) for e in errors))
            return
        try:
            held.remove()
        except CNIError as exc:
            failure.add_note(f"the journal entry could not be removed: {exc}")

    # -- detach --------------------------------------------------------------------------------------

    def _network_for_delete(self, network: str | NetworkConfigList,
                            recorded: CachedAttachment | PendingAttachment | None) -> NetworkConfigList:
        if isinstance(network, NetworkConfigList):
            return network
        try:
            current: NetworkConfigList | None = self.network(network)
        except NotFoundError:
            current = None
        if recorded is not None and recorded.config and (current is None or current.bytes != recorded.config):
            try:
                found = parse_network_config_list(recorded.config)
                if isinstance(recorded, PendingAttachment) and recorded.plugins:
                    found = attrs.evolve(found, plugins=tuple(parse_plugin_config(p) for p in recorded.plugins))
                if found.plugins and found.name == network:
                    return found
            except CNIError:
                pass  # an unusable record: fall back to the directory
        if current is None:
            return self.network(network)
        return current

    def detach(self, container_id: str, network: str | NetworkConfigList, netns: str | None = None,
               ifname: str | None = None, *,
               args: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
               capability_args: Mapping[str, Any] | None = None) -> None:
        """DEL: detach the container from the network. Idempotent: detaching twice succeeds.

        Args:
            netns: the namespace path; None: the one recorded at ADD (a path that no
                longer exists is passed on; plugins must cope, and ours do).
            ifname: the interface; None: every interface the container has on the
                network according to the cache (none: nothing to do).
            args, capability_args: None: those recorded at ADD.

        For networks of version 0.4.0 and later the cached result goes to the plugins
        as ``prevResult`` (an unreadable cache entry is ignored). On success the cache
        entry (and any journal entry) is removed; on failure both are kept, so the
        call can be repeated.

        Raises:
            CNIError: ``plugin type="<type>" failed (delete): <error>`` with the
                plugin's code; :class:`~cnicore.TryAgainLaterError` (code 11) while an
                attach of the same interface is running.
        """
        validate_container_id(container_id)
        name = network.name if isinstance(network, NetworkConfigList) else network
        validate_network_name(name)
        if netns is not None:
            validate_environment_value("CNI_NETNS", netns)
        if ifname is not None:
            validate_interface_name(ifname)
            self._detach_one(container_id, network, ifname, netns, args, capability_args)
            return
        first: CNIError | None = None
        for found in sorted({ifn for ifn, _ in self._attachments_in_use(container_id, name)}):
            try:
                self._detach_one(container_id, network, found, netns, args, capability_args)
            except CNIError as exc:
                if first is None:
                    first = exc
                else:
                    first.add_note(f"also: {exc}")
        if first is not None:
            raise first

    def _detach_one(self, container_id: str, network: str | NetworkConfigList, ifname: str, netns: str | None,
                    args: Mapping[str, str] | Sequence[tuple[str, str]] | None,
                    capability_args: Mapping[str, Any] | None) -> None:
        name = network.name if isinstance(network, NetworkConfigList) else network
        journal_file = pending_path(self.cache_dir, name, container_id, ifname)
        held: PendingLock | None = None
        if os.path.exists(journal_file):
            held = claim_pending(journal_file)
            if held is None and os.path.exists(journal_file):
                raise TryAgainLaterError(f"an attach of container {container_id} interface {ifname} to network "
                                         f"{name} is in progress", journal_file)
        try:
            try:
                cached = read_cache_entry(self.cache_dir, name, container_id, ifname)
            except CNIError:
                cached = None
            recorded: CachedAttachment | PendingAttachment | None = cached
            if (cached is None or cached.legacy) and held is not None and held.entry is not None:
                recorded = held.entry
            net = self._network_for_delete(network, recorded)
            use_netns = netns if netns is not None else (recorded.netns if recorded is not None else "")
            cni_args = (_normalise_args(args) if args is not None
                        else (recorded.cni_args if recorded is not None else ()))
            caps = (_normalise_capability_args(capability_args) if capability_args is not None
                    else (dict(recorded.capability_args) if recorded is not None else {}))
            prev: AnyResult | None = None
            if _version_at_least(net.cni_version, _CHECK_VERSION):
                try:
                    prev = read_cached_result(self.cache_dir, name, container_id, ifname, net.cni_version)
                except CNIError:
                    prev = None  # libcni: an invalid cache does not block DEL
            self._delete_chain(net, container_id, use_netns, ifname, cni_args, caps, prev)
            with contextlib.suppress(CNIError):
                delete_cache_entry(self.cache_dir, name, container_id, ifname)
            if held is not None:
                held.remove()
        finally:
            if held is not None:
                held.release()

    # -- check ---------------------------------------------------------------------------------------

    def check(self, container_id: str, network: str | NetworkConfigList, netns: str, ifname: str | None = None, *,
              args: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
              capability_args: Mapping[str, Any] | None = None) -> None:
        """CHECK: ask every plugin whether the attachment is as ADD left it.

        Args:
            ifname: None: every interface the container has on the network (the cache
                must know at least one).
            args, capability_args: None: those recorded at ADD (CHECK must get the
                ADD's parameters).

        Raises:
            IncompatibleVersionError: (code 1) ``configuration version "0.3.1" does not
                support the CHECK command``.
            CNIError: ``failed to get network "<name>" cached result: ...`` for an
                unreadable cache entry; the first plugin error, unwrapped;
                :class:`~cnicore.NotFoundError` when ``ifname`` is None and the cache
                knows no attachment.
        """
        net = self._resolve(network)
        validate_container_id(container_id)
        validate_network_name(net.name)
        validate_environment_value("CNI_NETNS", netns)
        if not _version_at_least(net.cni_version, _CHECK_VERSION):
            raise IncompatibleVersionError(
                f"configuration version {go_quote(net.cni_version)} does not support the CHECK command")
        if net.disable_check:
            return
        if ifname is not None:
            validate_interface_name(ifname)
            ifnames = [ifname]
        else:
            ifnames = sorted({a.ifname for a in list_cache_entries(self.cache_dir, container_id, net.name)})
            if not ifnames:
                raise NotFoundError(f"no cached attachment of container {container_id} to network {net.name}",
                                    "give the interface name")
        for one in ifnames:
            self._check_one(net, container_id, netns, one, args, capability_args)

    def _check_one(self, net: NetworkConfigList, container_id: str, netns: str, ifname: str,
                   args: Mapping[str, str] | Sequence[tuple[str, str]] | None,
                   capability_args: Mapping[str, Any] | None) -> None:
        try:
            prev = read_cached_result(self.cache_dir, net.name, container_id, ifname, net.cni_version)
        except CNIError as exc:
            raise _wrap(exc, f"failed to get network {go_quote(net.name)} cached result: ") from exc
        cached: CachedAttachment | None = None
        if args is None or capability_args is None:
            with contextlib.suppress(CNIError):
                cached = read_cache_entry(self.cache_dir, net.name, container_id, ifname)
        cni_args = _normalise_args(args) if args is not None else (cached.cni_args if cached else ())
        caps = (_normalise_capability_args(capability_args) if capability_args is not None
                else (dict(cached.capability_args) if cached else {}))
        prev_object = prev.to_object() if prev is not None else None
        for index, plugin in enumerate(net.plugins):
            target = self._runner.target(plugin.type)
            stdin = build_request(net, index, prev_result=prev_object, capability_args=caps)
            self._runner.run(target, "CHECK", stdin, container_id=container_id, netns=netns, ifname=ifname,
                             args=_args_text(cni_args), cni_version=net.cni_version)

    # -- status --------------------------------------------------------------------------------------

    def status(self, network: str | NetworkConfigList) -> None:
        """STATUS: whether every plugin of the network can service ADD (networks older than 1.1.0: yes).

        Raises:
            CNIError: the first plugin's error, unwrapped, so that
                :class:`~cnicore.PluginNotAvailableError` (50) and
                :class:`~cnicore.LimitedConnectivityError` (51) come through as such.
        """
        net = self._resolve(network)
        if not _version_at_least(net.cni_version, _GC_VERSION):
            return
        validate_network_name(net.name)
        for index, plugin in enumerate(net.plugins):
            target = self._runner.target(plugin.type)
            self._runner.run(target, "STATUS", build_request(net, index), cni_version=net.cni_version)

    # -- gc ------------------------------------------------------------------------------------------

    def gc(self, live: Iterable[str | tuple[str, str]] | None = None, *,
           networks: Iterable[str] | None = None) -> GCReport:
        """GC: detach stale attachments, then let the plugins release what no valid attachment holds.

        Args:
            live: the containers (IDs, every interface of theirs) and attachments
                (``(container ID, ifname)``) still in use. Every cached attachment of a
                GC'd network not among them is detached with its recorded netns, args
                and capability arguments. None: detach nothing; the plugins' GC gets
                every cached attachment as valid.
            networks: the networks to GC (default: every network of the directory,
                plus those only the cache still knows, which get the detach step only).

        For networks of version 1.1.0 and later every plugin then gets GC with
        ``cni.dev/valid-attachments`` (and the older ``cni.dev/attachments``): the
        live cached attachments, the live pairs given, and attachments whose ADD is
        in progress. ``disableGC`` networks are skipped. Errors are collected, never
        raised (except for a lock that cannot be had: code 11).
        """
        live_ids: set[str] = set()
        live_pairs: set[tuple[str, str]] = set()
        if live is not None:
            for item in live:
                if isinstance(item, str):
                    live_ids.add(item)
                else:
                    cid, ifn = item
                    live_pairs.add((cid, ifn))
        listing = self._current_listing()
        by_name: dict[str, NetworkConfigList] = {}
        errors: list[CNIError] = []
        duplicates: set[str] = set()
        for listed in listing.networks:
            if listed.name in by_name:
                duplicates.add(listed.name)
            else:
                by_name[listed.name] = listed
        sweep_cache_temporaries(self.cache_dir)
        if networks is None:
            names = sorted(set(by_name) | {a.network for a in list_cache_entries(self.cache_dir)})
        else:
            names = list(dict.fromkeys(networks))
        removed: list[CachedAttachment] = []
        valid_by_network: dict[str, tuple[tuple[str, str], ...]] = {}
        skipped: list[str] = []
        for name in names:
            try:
                validate_network_name(name)
            except CNIError as exc:
                errors.append(exc)
                continue
            if name in duplicates:
                try:
                    self.network(name)
                except CNIError as exc:
                    errors.append(exc)
                continue
            net = by_name.get(name)
            if net is not None and net.disable_gc:
                skipped.append(name)
                continue
            with self._locks.gc_lock(name, exclusive=True):
                valid = self._gc_network(name, net, live, live_ids, live_pairs, removed, errors)
            if valid is not None:
                valid_by_network[name] = valid
        return GCReport(removed=tuple(removed), errors=tuple(errors), valid=valid_by_network,
                        skipped=tuple(skipped))

    def _gc_network(self, name: str, net: NetworkConfigList | None, live: object, live_ids: set[str],
                    live_pairs: set[tuple[str, str]], removed: list[CachedAttachment],
                    errors: list[CNIError]) -> tuple[tuple[str, str], ...] | None:
        cached = list_cache_entries(self.cache_dir, network=name)

        def is_live(attachment: CachedAttachment) -> bool:
            return (live is None or attachment.container_id in live_ids
                    or (attachment.container_id, attachment.ifname) in live_pairs)

        valid: set[tuple[str, str]] = set()
        for attachment in cached:
            if is_live(attachment):
                valid.add((attachment.container_id, attachment.ifname))
                continue
            try:
                self._detach_one(attachment.container_id, net if net is not None else name, attachment.ifname,
                                 attachment.netns, attachment.cni_args, attachment.capability_args)
                removed.append(attachment)
            except CNIError as exc:
                errors.append(_wrap(exc, f"failed to delete stale attachment {attachment.container_id} "
                                         f"{attachment.ifname}: "))
        valid |= live_pairs
        for path in list_pending(self.cache_dir):
            entry = read_pending(path)
            if entry is not None and entry.network == name and is_pending_alive(path):
                valid.add((entry.container_id, entry.ifname))
        if net is None or not _version_at_least(net.cni_version, _GC_VERSION):
            return None
        ordered = tuple(sorted(valid))
        for index, plugin in enumerate(net.plugins):
            try:
                target = self._runner.target(plugin.type)
                stdin = build_gc_request(net, index, valid_attachments=ordered)
                self._runner.run(target, "GC", stdin, cni_version=net.cni_version)
            except CNIError as exc:
                errors.append(_wrap(exc, f"failed to GC plugin {plugin.type}: "))
        return ordered

    # -- recovery ------------------------------------------------------------------------------------

    def recover(self) -> RecoveryReport:
        """Undo every ADD whose process died before committing it (see the module docstring).

        For each journal entry whose writer is gone: if the attachment made it into
        the result cache, the entry is just removed; otherwise DEL runs on the whole
        list (reverse order, no ``prevResult``; the namespace may be gone) and the
        entry is removed when it succeeds. Entries of live writers are left alone.
        Temporary files of journal writers that died before linking their entry
        are removed (those of live writers never are), and those of cache writes
        older than :data:`~cnicore.runtime._cache.CACHE_TEMP_STALE_SECONDS` (GC
        removes these too).
        Call it when the runtime starts (and after a reboot, when the cache
        directory survives one). Errors are collected, never raised.
        """
        released: list[PendingAttachment] = []
        stale: list[PendingAttachment] = []
        in_progress: list[str] = []
        errors: list[CNIError] = []
        sweep_cache_temporaries(self.cache_dir)
        for path in list_pending(self.cache_dir):
            try:
                held = claim_pending(path)
            except CNIError as exc:
                errors.append(exc)
                continue
            if held is None:
                if os.path.exists(path):
                    in_progress.append(path)
                continue
            with held:
                entry = held.entry
                if entry is None:
                    errors.append(held.error or InternalError(f"unreadable journal entry {path}"))
                    continue
                try:
                    committed = os.path.exists(cache_file_path(self.cache_dir, entry.network, entry.container_id,
                                                               entry.ifname))
                    if committed:
                        held.remove()
                        stale.append(entry)
                        continue
                    net = self._network_for_delete(entry.network, entry)
                    self._delete_chain(net, entry.container_id, entry.netns, entry.ifname, entry.cni_args,
                                       entry.capability_args, None)
                    held.remove()
                    released.append(entry)
                except CNIError as exc:
                    errors.append(_wrap(exc, f"failed to recover attachment {entry.container_id} {entry.ifname} "
                                             f"of network {entry.network}: "))
        return RecoveryReport(released=tuple(released), stale=tuple(stale), in_progress=tuple(in_progress),
                              errors=tuple(errors))

    # -- the cache -----------------------------------------------------------------------------------

    def attachments(self, container_id: str | None = None, network: str | None = None) -> list[CachedAttachment]:
        """The cached attachments, optionally of one container and/or network (sorted by cache file)."""
        return list_cache_entries(self.cache_dir, container_id, network)

    def cached_result(self, container_id: str, network: str | NetworkConfigList, ifname: str) -> AnyResult | None:
        """The cached result of an attachment in the network's version (as stored when the network is unknown).

        Raises:
            CNIError: the entry cannot be read or converted (see
                :func:`~cnicore.runtime.read_cached_result`).
        """
        if isinstance(network, NetworkConfigList):
            net: NetworkConfigList | None = network
        else:
            try:
                net = self.network(network)
            except NotFoundError:
                net = None
        name = net.name if net is not None else str(network)
        return read_cached_result(self.cache_dir, name, container_id, ifname,
                                  net.cni_version if net is not None else None)

