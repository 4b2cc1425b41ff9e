"""The global options after the environment and the defaults, and the runtime they configure."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import posixpath
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from cnicore._errors import CNIError, DecodingError, InvalidConfigError, InvalidEnvironmentError, NotFoundError

if TYPE_CHECKING:
    from cnicore.runtime import Runtime

#: Where network configurations are looked up (``NETCONFPATH``).
DEFAULT_CONF_DIR: Final = "/etc/cni/net.d"
#: Where plugins are looked up (``CNI_PATH``).
DEFAULT_PLUGIN_PATH: Final = "/opt/cni/bin"
#: Where the result cache lives (``<dir>/results``), as libcni's default.
DEFAULT_CACHE_DIR: Final = "/var/lib/cni"
DEFAULT_TIMEOUT: Final = 60.0

_FAKE_STATE_ENV = "CNICORE_FAKE_STATE"


# ------------------------------------------------------------------------------------------------
# Settings: options, then environment, then defaults
# ------------------------------------------------------------------------------------------------


class _Settings:
    """The global options after the environment and the defaults were applied."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.conf_dir: str = args.conf_dir or environ.get("NETCONFPATH") or DEFAULT_CONF_DIR
        path_text = args.plugin_path if args.plugin_path is not None else environ.get("CNI_PATH")
        self.plugin_path = [p for p in (path_text or DEFAULT_PLUGIN_PATH).split(":") if p]
        self.cache_dir: str = args.cache_dir or environ.get("CNICORE_CACHE_DIR") or DEFAULT_CACHE_DIR
        backend = args.backend or environ.get("CNICORE_BACKEND", "").strip().lower() or "auto"
        known = backend_names()
        if backend not in known:
            raise InvalidEnvironmentError(f"unknown link backend CNICORE_BACKEND={backend} (expected one of "
                                          f"{', '.join(known)})", key="CNICORE_BACKEND", value=backend)
        self.backend: str = backend
        timeout = args.timeout
        if timeout is None and environ.get("CNICORE_TIMEOUT"):
            text = environ["CNICORE_TIMEOUT"]
            try:
                timeout = _positive_float(text)
            except argparse.ArgumentTypeError as exc:
                raise InvalidEnvironmentError(f"invalid CNICORE_TIMEOUT={text}: {exc}", key="CNICORE_TIMEOUT",
                                              value=text) from exc
        self.timeout: float = DEFAULT_TIMEOUT if timeout is None else timeout
        self.json: bool = bool(args.json)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _go_abs(path: str) -> str:
    """Go's ``filepath.Abs``: joined with the working directory and cleaned (symlinks are kept)."""
    joined = posixpath.normpath(path if posixpath.isabs(path) else posixpath.join(os.getcwd(), path))
    if joined.startswith("//"):
        joined = "/" + joined.lstrip("/")  # Go's Clean collapses the leading "//" normpath keeps
    return joined


def cnitool_container_id(netns: str) -> str:
    """The container ID cnitool derives from a namespace path: ``cnitool-`` + hex of SHA-512[:10].

    The path is made absolute first (relative to the working directory), as cnitool does.
    """
    digest = hashlib.sha512(_go_abs(netns).encode("utf-8", "surrogateescape")).digest()
    return "cnitool-" + digest[:10].hex()


def _parse_args_text(text: str, source: str) -> tuple[tuple[str, str], ...]:
    """``K=V;K2=V2`` as cnitool reads it: each pair exactly one ``=`` and a non-empty key and value."""
    if text == "":
        return ()
    pairs = []
    for pair in text.split(";"):
        key, sep, value = pair.partition("=")
        if not sep or not key or not value or "=" in value:
            raise InvalidEnvironmentError(f'invalid {source} pair "{pair}" (expected KEY=VALUE pairs separated '
                                          'by ";")', key=source, value=text)
        pairs.append((key, value))
    return tuple(pairs)


def _parse_capability_args(text: str, source: str) -> dict[str, Any]:
    from cnicore._json import decode

    try:
        value = decode(text, what=source)
    except DecodingError as exc:
        raise DecodingError(f"invalid {source}: {exc.msg}", key=source, value=text) from exc
    if not isinstance(value, dict):
        raise DecodingError(f"invalid {source}: expected a JSON object of capability name to value",
                            key=source, value=text)
    return value


# ------------------------------------------------------------------------------------------------
# The runtime and its backends
# ------------------------------------------------------------------------------------------------


def _backends_module() -> Any:
    from cnicore._plugin_main import _backends

    return _backends()


def backend_names() -> tuple[str, ...]:
    """The link backends ``--backend`` and ``CNICORE_BACKEND`` accept: the built-in ones
    :func:`cnicore.backends.select_backend` knows, from its own list (read when the parser is built; the
    backends package loads its names on first use, so this costs one small module)."""
    return tuple(_backends_module().BUILTIN_BACKENDS)


@contextlib.contextmanager
def _runtime(settings: _Settings, *, netns: str | None = None, create_netns: bool = False) -> Iterator[Runtime]:
    """A :class:`~cnicore.runtime.Runtime` for the settings, with the chosen backend (and fake state)."""
    from cnicore.runtime import Runtime

    environ = dict(settings.environ)
    environ["CNICORE_BACKEND"] = settings.backend
    with contextlib.ExitStack() as stack:
        if settings.backend == "fake":
            fake_state = environ.pop(_FAKE_STATE_ENV, "")
            if fake_state:
                from cnicore._plugin_main import FakeState

                state = stack.enter_context(FakeState(fake_state))
                backend, firewall = state.backend, state.firewall
            else:
                module = _backends_module()
                backend, firewall = module.FakeLinkBackend(), module.FakeFirewall()
            if create_netns and netns and netns not in backend.namespaces():
                backend.add_namespace(netns)
        else:
            backend = _backends_module().select_backend(settings.backend)
            firewall = None  # the runtime's default: the one the exec'd plugins use
        yield stack.enter_context(Runtime(config_dir=settings.conf_dir, plugin_path=settings.plugin_path,
                                          cache_dir=settings.cache_dir, backend=backend, firewall=firewall,
                                          timeout=settings.timeout, environ=environ))


@contextlib.contextmanager
def _network_named(runtime: Runtime, name: str) -> Iterator[None]:
    """Report a network name the configuration directory does not know as the caller's input error.

    The runtime calls a missing network "not found" (a system failure for a
    library caller holding a name it read somewhere); on the command line the
    name was typed by the user, as ``libcni`` and the configuration engine see it (code 7).
    """
    try:
        yield
    except NotFoundError as exc:
        try:
            runtime.network(name)
        except NotFoundError as lookup:
            if lookup.msg == exc.msg:
                raise InvalidConfigError(exc.msg, exc.details, key="NETWORK", value=name) from exc
        except CNIError:
            pass
        raise
