"""The exec entry point of the installed plugins: ``loopback``, ``bridge`` and ``host-local``.

One entry point serves every plugin: it picks the plugin by the basename of
``argv[0]`` (the name the runtime executed) and runs it with the reference's
skeleton (:func:`~cnicore.plugins.run_plugin`, or
:func:`~cnicore.plugins._skel.run_exec` for the exec handlers below).

Start-up cost matters: a runtime executes a plugin once per container and
command. So nothing is imported before it is needed:

* the skeleton runs first, before any plugin module is imported: VERSION, the
  about text and every refusal of the environment or stdin cost the
  skeleton's few modules and nothing else (:class:`DeferredHandler`);
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
* ``bridge`` with ``auto`` takes :func:`select_backend`'s choice (it does many
  operations);
* the backend itself is built on first use (VERSION, a DEL with no namespace or
  a bad configuration never build one), and ``cnicore.backends`` is imported
  with :mod:`importlib` at that moment: the core never imports it statically.

The installed executables run the interpreter isolated and without ``site``
(see :mod:`cnicore.plugins._install`), and everything on the way here is
written to import little: a plugin exec'd per container and command should
cost not much more than the interpreter's own start.

``CNICORE_BACKEND=fake`` runs on the in-memory fake. As each exec is a new
process, ``CNICORE_FAKE_STATE=<file>`` makes the fake kernel (links and
firewall) persist in that file between execs, under an exclusive lock: that is
how the demo and the tests run the exec protocol without root. The file is a
pickle: only ever point it at a file you created.

Error codes: handler errors are printed with the reference's codes
(``reference_codes``, see :mod:`cnicore.plugins._skel`); loopback alone accepts
the legacy nameless configuration (see :mod:`cnicore.plugins._loopback`).
"""

from __future__ import annotations

import os
import sys

from cnicore._errors import InvalidConfigError
from cnicore.spec._version import ALL_VERSIONS

TYPE_CHECKING = False  # typing is left to type checkers: it slows the start of every exec
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Final

    from cnicore.links import Firewall, LinkBackend
    from cnicore.plugins._api import Plugin
    from cnicore.plugins._skel import ExecHandler
    from cnicore.spec._environ import CNIEnvironment

__all__ = ["BACKEND_ENV", "FAKE_STATE_ENV", "PLUGIN_NAMES", "DeferredHandler", "FakeState", "loopback_exec_handler",
           "main"]

#: The variable naming the link backend: ``netlink``, ``iproute2``, ``fake`` or ``auto``.
BACKEND_ENV: Final = "CNICORE_BACKEND"
#: The file the fake kernel persists in between execs (with ``CNICORE_BACKEND=fake``).
FAKE_STATE_ENV: Final = "CNICORE_FAKE_STATE"
#: The plugins this entry point serves.
PLUGIN_NAMES: Final = ("loopback", "bridge", "host-local")


def _backends() -> Any:
    # Never a static import: the core must not depend on the backends (architecture test).
    import importlib

    return importlib.import_module("cnicore.backends")


class FakeState:
    """The fake kernel (a ``FakeLinkBackend`` and a ``FakeFirewall``) persisted in a file.

    Used as a context manager: entering locks the file and loads the state (a
    new, empty kernel when the file is empty or missing), leaving saves it back
    atomically and unlocks.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.backend: Any = None
        self.firewall: Any = None
        self._lock_fd = -1

    def __enter__(self) -> FakeState:
        import fcntl
        import pickle

        self._lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            data = b""
        if data:
            self.backend, self.firewall = pickle.loads(data)
        else:
            module = _backends()
            self.backend, self.firewall = module.FakeLinkBackend(), module.FakeFirewall()
        return self

    def save(self) -> None:
        """Write the state back (atomically: a reader never sees half a file)."""
        import io
        import pickle
        import threading

        class _Pickler(pickle.Pickler):
            # The fakes guard their state with locks, which do not pickle: store fresh ones.
            def reducer_override(self, obj: Any) -> Any:
                if isinstance(obj, type(threading.Lock())):
                    return threading.Lock, ()
                if isinstance(obj, type(threading.RLock())):
                    return threading.RLock, ()
                return NotImplemented

        buffer = io.BytesIO()
        _Pickler(buffer).dump((self.backend, self.firewall))
        tmp = f"{self.path}.tmp.{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def __exit__(self, *exc: object) -> None:
        try:
            self.save()
        finally:
            os.close(self._lock_fd)
            self._lock_fd = -1


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


def _choose_backend(environ: Mapping[str, str]) -> LinkBackend:
    chosen: LinkBackend = _backends().select_backend(None, environ)
    return chosen


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
    import importlib

    from cnicore.plugins._loopback import LoopbackExecHandler

    route_socket = importlib.import_module("cnicore.backends._rtnl").RouteSocket
    return LoopbackExecHandler(route_socket.open)


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
    environment asks for (on the fake kernel persisted in ``CNICORE_FAKE_STATE``,
    loaded and saved around the command).
    """

    supported_versions = ALL_VERSIONS  # every plugin served here accepts every version

    def __init__(self, name: str, environ: Mapping[str, str]) -> None:
        self.name = name
        self._environ = environ
        self._built: Any = None

    def handle(self, command: str, env: CNIEnvironment, config: dict[str, Any], config_bytes: bytes,
               cni_version: str) -> str | None:
        """See :class:`~cnicore.plugins._skel.ExecHandler`."""
        handler = _exec_handler(self.name, self._environ)
        if handler is not None:
            self._built = handler
            return handler.handle(command, env, config, config_bytes, cni_version)
        from cnicore.plugins._skel import plugin_handler

        fake = _fake_state(self._environ)
        if fake is None:
            built = self._built = plugin_handler(build_plugin(self.name, self._environ))
            return built.handle(command, env, config, config_bytes, cni_version)
        with fake:
            built = self._built = plugin_handler(build_plugin(self.name, self._environ, fake))
            return built.handle(command, env, config, config_bytes, cni_version)

    def close(self) -> None:
        """Close what the built handler holds (stores release their locks and descriptors). Idempotent."""
        built, self._built = self._built, None
        close = getattr(getattr(built, "plugin", built), "close", None)
        if close is not None:
            close()


def _exec_handler(name: str, environ: Mapping[str, str]) -> ExecHandler | None:
    if name == "host-local":
        from cnicore.plugins._hostlocal import HostLocalExecHandler

        return HostLocalExecHandler()
    if name == "loopback":
        return loopback_exec_handler(environ)
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
    from cnicore import __version__
    from cnicore.plugins._skel import run_exec

    handler = DeferredHandler(name, environ)
    try:
        return run_exec(handler, environ=environ, version=f"cnicore {__version__}",
                        allow_legacy_nameless=name == "loopback", reference_codes=True)
    finally:
        handler.close()  # stores release their locks and descriptors before the process goes
