"""The exec entry point of the installed plugins: ``loopback``, ``bridge``, ``host-local`` and the meta plugins.

One entry point serves every plugin: it picks the plugin by the basename of
``argv[0]`` (the name the runtime executed) and runs it with the reference's
skeleton (:func:`~cnicore.plugins.run_plugin`, or
:func:`~cnicore.plugins._skel.run_exec` for the exec handlers below).

Start-up cost matters: a runtime executes a plugin once per container and
command. So nothing is imported before it is needed:

* the skeleton runs first, before any plugin module is imported: VERSION, the
  about text and every refusal of the environment or stdin cost the
  skeleton's few modules and nothing else (:class:`DeferredHandler`), for
  every plugin; ``mesos-cni-port-mapper``, which speaks Mesos's protocol rather
  than the skeleton's, refuses a missing variable or unreadable stdin before
  its module loads too (:func:`_mesos_front`);
* ``host-local`` needs no link backend at all: it runs as
  :class:`~cnicore.plugins._hostlocal.HostLocalExecHandler`, which calls the
  host-local engine (the library's own functions) on the file store's core and
  writes its result without the result types: no attrs, no netaddr;
* ``loopback`` only sets ``lo`` up or down and reads its addresses: with
  ``CNICORE_BACKEND`` unset or ``auto``, when the process may administer the
  network, it runs as :class:`~cnicore.plugins._loopback.LoopbackExecHandler`
  on a route netlink socket in the container's namespace
  (:class:`~cnicore.backends._rtnl.RouteSocket`): no ``ip`` process, and none of
  attrs, netaddr, ``typing`` or the result types is imported unless a
  ``prevResult`` or an unusual address needs them; otherwise it is
  :class:`~cnicore.plugins.LoopbackPlugin` on what
  :func:`cnicore.backends.select_backend` picks;
* ``bridge`` with ``CNICORE_BACKEND`` unset or ``auto``, when the process may
  administer the network, runs as
  :class:`~cnicore.plugins._bridgeexec.BridgeExecHandler`: the bridge engine
  over plain ports (the netlink backend's own operations, the iptables
  firewall's own masquerade, host-local's exec handler in process), none of
  attrs, netaddr, ``typing`` or the link port imported on the default path;
  otherwise it is :class:`~cnicore.plugins.BridgePlugin` on what
  :func:`select_backend` picks;
* the backend itself is built on first use (VERSION, a DEL with no namespace or
  a bad configuration never build one), and ``cnicore.backends`` is imported
  by name at that moment (:func:`cnicore._lazy.import_module`): the core never imports it statically.

The installed executables run the interpreter isolated and without ``site``
(see :mod:`cnicore.plugins._install`), and everything on the way here is
written to import little: a plugin exec'd per container and command should
cost not much more than the interpreter's own start.

``CNICORE_BACKEND=fake`` runs on the in-memory fake. As each exec is a new
process, ``CNICORE_FAKE_STATE=<file>`` makes the fake kernel (links and
firewall) persist in that file between execs, under an exclusive lock: that is
how the demo and the tests run the exec protocol without root. The file holds
JSON data, and must be this user's and writable by nobody else (see
:class:`FakeState`).

Error codes: handler errors are printed with the reference's codes
(``reference_codes``, see :mod:`cnicore.plugins._skel`); loopback alone accepts
the legacy nameless configuration (see :mod:`cnicore.plugins._loopback`).
"""

from __future__ import annotations

import os
import sys

from cnicore._errors import CNIError, InvalidConfigError, IOFailureError
from cnicore.spec._version import ALL_VERSIONS, FIREWALL_VERSIONS

TYPE_CHECKING = False  # typing is left to type checkers: it slows the start of every exec
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Final, NoReturn

    from cnicore.links import Firewall, LinkBackend
    from cnicore.plugins._api import Plugin
    from cnicore.plugins._skel import ExecHandler
    from cnicore.spec._environ import CNIEnvironment

__all__ = ["BACKEND_ENV", "FAKE_STATE_ENV", "PLUGIN_NAMES", "DeferredHandler", "FakeState", "bridge_exec_handler",
           "exec_main", "loopback_exec_handler", "main", "supported_versions", "version_answer"]

#: The variable naming the link backend: ``netlink``, ``iproute2``, ``fake`` or ``auto``.
BACKEND_ENV: Final = "CNICORE_BACKEND"
#: The file the fake kernel persists in between execs (with ``CNICORE_BACKEND=fake``).
FAKE_STATE_ENV: Final = "CNICORE_FAKE_STATE"
#: The plugins this entry point serves.
PLUGIN_NAMES: Final = ("loopback", "bridge", "host-local", "tuning", "firewall", "portmap", "mesos-cni-port-mapper")
# The meta plugins run through MetaExecHandler: no typed request, so a DEL with nothing to undo imports neither
# attrs nor netaddr.
_META_PLUGINS: Final = ("tuning", "firewall", "portmap")


def supported_versions(name: str) -> tuple[str, ...]:
    """The spec versions the plugin called ``name`` supports: every one, but firewall's (the plugins' own)."""
    return FIREWALL_VERSIONS if name == "firewall" else ALL_VERSIONS


def version_answer(name: str) -> str | None:
    """What the plugin called ``name`` prints for VERSION; None for the Mesos port mapper, which has no VERSION.

    VERSION needs nothing but ``CNI_COMMAND`` (see :mod:`cnicore.plugins._skel`),
    so this is the whole answer, whatever else the environment holds: what
    :func:`main` prints, and what the installed executables print without
    starting Python (:mod:`cnicore.plugins._install`).
    """
    if name not in PLUGIN_NAMES or name == "mesos-cni-port-mapper":
        return None
    from cnicore.plugins._skel import version_text

    return version_text(supported_versions(name))


def _backends() -> Any:
    # Never a static import: the core must not depend on the backends (architecture test).
    from cnicore._lazy import import_module

    return import_module("cnicore.backends")


class FakeState:
    """The fake kernel (a ``FakeLinkBackend`` and a ``FakeFirewall``) persisted in a file.

    Used as a context manager: entering locks the file (``<path>.lock``) and
    loads the state (a new, empty kernel when the file is empty or missing),
    leaving saves it back atomically and unlocks.

    The file is JSON data (each fake's ``export_state``), rebuilt through the
    model's validators: whatever it holds can describe a kernel, never run code.
    It must be a regular file of this user's, writable by nobody else, in a
    directory nobody else can replace it in; anything else is refused with
    :class:`~cnicore.IOFailureError` (code 5), as is a damaged file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.backend: Any = None
        self.firewall: Any = None
        self._lock_fd = -1

    def _refuse(self, why: str) -> IOFailureError:
        return IOFailureError(f"fake kernel state {self.path}: {why}", key=FAKE_STATE_ENV, value=self.path)

    def __enter__(self) -> FakeState:
        import fcntl

        from cnicore._readfile import open_regular, untrusted_reason

        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            why = untrusted_reason(os.stat(directory), shared_directory=True)
        except OSError as exc:
            raise self._refuse(f"cannot examine its directory: {exc.strerror or exc}") from exc
        if why:
            raise self._refuse(f"its directory {directory} is {why}")
        try:
            self._lock_fd, _ = open_regular(self.path + ".lock", follow_symlinks=False, flags=os.O_RDWR,
                                            create_mode=0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        except OSError as exc:
            self._close_lock()
            raise self._refuse(f"cannot lock {self.path}.lock: {exc.strerror or exc}") from exc
        try:
            self.backend, self.firewall = self._load()
        except BaseException:
            self._close_lock()
            raise
        return self

    def _load(self) -> tuple[Any, Any]:
        import json

        from cnicore._readfile import MAX_DOCUMENT_BYTES, open_regular, read_open, untrusted_reason

        module = _backends()
        try:
            fd, st = open_regular(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return module.FakeLinkBackend(), module.FakeFirewall()
        except OSError as exc:
            raise self._refuse(f"cannot open: {exc.strerror or exc}") from exc
        try:
            why = untrusted_reason(st)
            if why:
                raise self._refuse(f"refused: it is {why}")
            data = read_open(fd, MAX_DOCUMENT_BYTES, path=self.path, size=st.st_size)
        except OSError as exc:
            raise self._refuse(f"cannot read: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        if not data:
            return module.FakeLinkBackend(), module.FakeFirewall()
        try:
            document = json.loads(data)
            return (module.FakeLinkBackend.import_state(document["links"]),
                    module.FakeFirewall.import_state(document["firewall"]))
        except (ValueError, KeyError, TypeError, IndexError, CNIError) as exc:
            raise self._refuse(f"not a fake kernel's state: {exc}") from exc

    def save(self) -> None:
        """Write the state back (atomically: a reader never sees half a file)."""
        import json

        from cnicore._atomicfile import replace_file

        data = json.dumps({"links": self.backend.export_state(), "firewall": self.firewall.export_state()},
                          sort_keys=True).encode()
        replace_file(self.path, data, 0o600)

    def _close_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __exit__(self, *exc: object) -> None:
        try:
            self.save()
        finally:
            self._close_lock()


class _Lazy:
    """A proxy that builds the real object on first attribute access (so unused backends cost nothing)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._target: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._target is None:
            self._target = self._build()
        return getattr(self._target, name)


def _lazy(build: Callable[[], Any]) -> Any:
    # Typed Any: the proxy stands in for whatever it builds.
    return _Lazy(build)


def _tools() -> Any:
    # The plain tool runners (iptables, nft, /proc) of the executed meta plugins; never a static import either.
    from cnicore._lazy import import_module

    return import_module("cnicore.backends._tools")


def _choose_backend(environ: Mapping[str, str]) -> LinkBackend:
    chosen: LinkBackend = _backends().select_backend(None, environ)
    return chosen


def _tuning_port(environ: Mapping[str, str]) -> Any:
    # The netlink backend's plain operations when it is the one select_backend would pick, else the chosen backend.
    if (environ.get(BACKEND_ENV, "").strip().lower() or "auto") == "auto" and _backends().has_net_admin():
        from cnicore._lazy import import_module

        return import_module("cnicore.backends._tuningport").PlainTuningPort()
    return _choose_backend(environ)


def _iptables() -> Firewall:
    firewall: Firewall = _backends().IptablesFirewall()
    return firewall


def build_plugin(name: str, environ: Mapping[str, str], fake: FakeState | None = None) -> Plugin:
    """The plugin called ``name``, wired to the backend the environment asks for.

    Raises :class:`~cnicore.InvalidConfigError` for a name that is not one of
    :data:`PLUGIN_NAMES`.
    """
    if name == "host-local":
        from cnicore.plugins._hostlocal import HostLocalPlugin

        return HostLocalPlugin()
    backend: LinkBackend
    firewall: Firewall | Callable[[], Firewall]
    if fake is not None:
        backend, firewall = fake.backend, fake.firewall
    else:
        # Built on first use: VERSION, or a DEL with nothing to undo, never pays for a backend.
        backend = _lazy(lambda: _choose_backend(environ))
        firewall = _iptables
    if name == "loopback":
        from cnicore.plugins._loopback import LoopbackPlugin

        return LoopbackPlugin(backend)
    if name == "bridge":
        from cnicore.plugins._bridge import BridgePlugin

        return BridgePlugin(backend, firewall)
    if name == "tuning":
        from cnicore.plugins._tuning import TuningPlugin

        if fake is None:
            # Executed: the plain netlink port where the netlink backend would be chosen; built on first use.
            return TuningPlugin(_lazy(lambda: _tuning_port(environ)))
        return TuningPlugin(backend)
    if name == "firewall":
        from cnicore.plugins._firewall import FirewallPlugin

        if fake is None:
            # Executed: the plain iptables runner, without the typed link world.
            return FirewallPlugin(lambda: _tools().IptablesTables())
        return FirewallPlugin(firewall)  # type: ignore[arg-type]  # iptables and fake firewalls edit tables too
    if name == "portmap":
        from cnicore.plugins._portmap import PortMapPlugin

        if fake is not None:
            return PortMapPlugin(firewall, backend)  # type: ignore[arg-type]
        # Executed: the plain iptables/nft runners and /proc, without the typed link world.
        return PortMapPlugin(lambda: _tools().IptablesTables(), host=_tools().ProcHost())
    raise InvalidConfigError(f"unknown plugin {name!r}: this entry point serves {', '.join(PLUGIN_NAMES)}",
                             key="argv[0]", value=name)


def loopback_exec_handler(environ: Mapping[str, str]) -> ExecHandler | None:
    """The exec'd loopback's handler on a route netlink socket, when the environment allows it.

    That is with ``CNICORE_BACKEND`` unset or ``auto`` and CAP_NET_ADMIN; else None,
    and loopback runs as :class:`~cnicore.plugins.LoopbackPlugin` on the chosen backend.
    """
    if (environ.get(BACKEND_ENV, "").strip().lower() or "auto") != "auto":
        return None
    if not _backends().has_net_admin():
        return None
    from cnicore._lazy import import_module
    from cnicore.plugins._loopback import LoopbackExecHandler

    route_socket = import_module("cnicore.backends._rtnl").RouteSocket
    return LoopbackExecHandler(route_socket.open)


def bridge_exec_handler(environ: Mapping[str, str]) -> ExecHandler | None:
    """The exec'd bridge's handler on plain ports (the netlink backend's operations), when the environment allows it.

    That is with ``CNICORE_BACKEND`` unset or ``auto`` and CAP_NET_ADMIN (where
    :func:`~cnicore.backends.select_backend` would pick the netlink backend);
    else None, and bridge runs as :class:`~cnicore.plugins.BridgePlugin` on the
    chosen backend.
    """
    if (environ.get(BACKEND_ENV, "").strip().lower() or "auto") != "auto":
        return None
    if not _backends().has_net_admin():
        return None
    from cnicore._lazy import import_module
    from cnicore.plugins._bridgeexec import BridgeExecHandler

    return BridgeExecHandler(import_module, environ)


def _fake_state(environ: Mapping[str, str]) -> FakeState | None:
    path = environ.get(FAKE_STATE_ENV, "")
    if environ.get(BACKEND_ENV, "").strip().lower() != "fake" or not path:
        return None
    return FakeState(path)


class DeferredHandler:
    """The plugin called ``name`` behind the skeleton, built only once a command needs it.

    The skeleton answers VERSION, the about text and every refusal of the
    environment or of stdin (missing variables, unknown command, bad container
    ID, oversized or undecodable configuration, bad name, version gates) from the
    name and the supported versions alone: none of the plugin's modules, and no
    backend, is loaded for those. The first :meth:`handle` builds the handler:
    host-local's and loopback's exec handlers, or the plugin on the backend the
    environment asks for (or on ``fake``, the fake kernel the caller loaded).
    """

    def __init__(self, name: str, environ: Mapping[str, str], fake: FakeState | None = None) -> None:
        self.name = name
        self.supported_versions = supported_versions(name)
        self._environ = environ
        self._fake = fake
        self._built: Any = None

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See :class:`~cnicore.plugins._skel.ExecHandler`."""
        handler = _exec_handler(self.name, self._environ)
        if handler is not None:
            self._built = handler
            return handler.handle(command, env, config, config_bytes, cni_version)
        built: ExecHandler
        if self.name in _META_PLUGINS:
            from cnicore.plugins._meta import MetaExecHandler

            # build_plugin makes a meta plugin for these names: its methods take any MetaRequest.
            built = MetaExecHandler(lambda: build_plugin(self.name, self._environ, self._fake),  # type: ignore
                                    self.name, self.supported_versions)
        else:
            from cnicore.plugins._skel import plugin_handler

            built = plugin_handler(build_plugin(self.name, self._environ, self._fake))
        self._built = built
        return built.handle(command, env, config, config_bytes, cni_version)

    def close(self) -> None:
        """Close what the built handler holds (stores release their locks and descriptors). Idempotent."""
        built, self._built = self._built, None
        close = getattr(getattr(built, "plugin", built), "close", None)
        if close is not None:
            close()


def _run(run: Callable[..., int], target: ExecHandler | Plugin, name: str, environ: Mapping[str, str]) -> int:
    # ``run`` is the skeleton's run_exec for a handler, run_plugin for a plugin.
    from cnicore import __version__

    try:
        return run(target, environ=environ, version=f"cnicore {__version__}", allow_legacy_nameless=name == "loopback",
                   reference_codes=True)
    finally:
        close = getattr(target, "close", None)
        if close is not None:
            close()  # stores release their locks and descriptors before the process goes


def _exec_handler(name: str, environ: Mapping[str, str]) -> ExecHandler | None:
    if name == "host-local":
        from cnicore.plugins._hostlocal import HostLocalExecHandler

        return HostLocalExecHandler()
    if name == "loopback":
        return loopback_exec_handler(environ)
    if name == "bridge":
        return bridge_exec_handler(environ)
    return None


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the plugin named by ``argv[0]``'s basename; return the exit status.

    The skeleton runs before any plugin module is imported (see :class:`DeferredHandler`).
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    name = os.path.basename(argv[0]) if argv else ""
    if name not in PLUGIN_NAMES:
        sys.stderr.write(f"cnicore plugin entry point: unknown plugin name {name!r} "
                         f"(install as one of {', '.join(PLUGIN_NAMES)})\n")
        return 1
    if name == "mesos-cni-port-mapper":
        return _mesos_front(environ)
    from cnicore.plugins._skel import run_exec

    # Every plugin behind the skeleton before any of its modules loads (DeferredHandler); host-local never needs
    # the fake kernel.
    fake = None if name == "host-local" else _fake_state(environ)
    if fake is None:
        return _run(run_exec, DeferredHandler(name, environ), name, environ)
    kernel = fake
    return _on_fake(kernel, lambda: _run(run_exec, DeferredHandler(name, environ, kernel), name, environ))


def _mesos_front(environ: Mapping[str, str]) -> int:
    """``mesos-cni-port-mapper``: Mesos's own protocol (no VERSION, its error codes and format).

    What Mesos refuses first, a missing variable (code 101) or stdin that cannot be
    read (code 100), is answered before the plugin's module loads; the rest of the
    order is Mesos's (the configuration is read before the command is looked at).
    """
    from cnicore.plugins._mesos_skel import check_environment, mesos_refusal, read_stdin

    try:
        check_environment(environ)
        data = read_stdin(sys.stdin.buffer)
    except CNIError as exc:
        return mesos_refusal(exc, sys.stdout.buffer)
    from cnicore.plugins._mesos_portmapper import mesos_main

    fake = _fake_state(environ)
    if fake is None:
        # The plain iptables runner: rules and the delegate's result on plain values, without the typed world.
        return mesos_main(environ, data, sys.stdout.buffer, lambda: _tools().IptablesTables())
    kernel = fake
    return _on_fake(kernel, lambda: mesos_main(environ, data, sys.stdout.buffer, kernel.firewall))


def _on_fake(fake: FakeState, run: Callable[[], int]) -> int:
    """``run()`` with the fake kernel loaded and saved afterwards; a state file refused is one error object."""
    try:
        fake.__enter__()
    except CNIError as exc:
        # As the skeleton prints any error: one error object on stdout, exit status 1.
        sys.stdout.write(exc.to_json())
        sys.stdout.flush()
        return 1
    try:
        return run()
    finally:
        fake.__exit__(None, None, None)


def exec_main() -> NoReturn:
    """:func:`main` for the installed executables: answer, then end the process without the interpreter's teardown.

    A plugin process ends right after its answer. Tearing the interpreter down
    (clearing every module, a last garbage collection) costs an executed
    host-local ADD about a fifth of its run and changes nothing anyone sees: the
    plugin's stores are closed before :func:`main` returns (locks released,
    index saved), the output is flushed here, and the kernel closes the rest.
    An exception leaves the ordinary way, with its traceback.
    """
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
