"""Choosing a link backend: explicit injection, then entry points, then what the machine allows.

Order: an object passed in wins; otherwise ``CNICORE_BACKEND`` (or the ``name``
argument) names one: ``netlink``, ``iproute2``, ``pyroute2``, ``fake``, ``auto``
(the default), or the name of a third-party backend registered in the entry-point
group ``cnicore.backends``. ``auto`` takes netlink (which needs nothing beyond the
standard library) when the process holds CAP_NET_ADMIN, else the in-memory fake;
``pyroute2`` and ``iproute2`` are only ever chosen by name.
"""

from __future__ import annotations

import os

from cnicore._errors import InternalError, InvalidConfigError

# The exec'd loopback asks this module only whether it may administer the network:
# typing, the port types and importlib.metadata (milliseconds each) load when a
# backend is actually chosen.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from cnicore.links import LinkBackend

__all__ = ["BUILTIN_BACKENDS", "ENTRY_POINT_GROUP", "ENV_VAR", "has_net_admin", "select_backend"]

ENV_VAR = "CNICORE_BACKEND"
ENTRY_POINT_GROUP = "cnicore.backends"
BUILTIN_BACKENDS = ("netlink", "iproute2", "pyroute2", "fake", "auto")
_CAP_NET_ADMIN = 12


def has_net_admin(status_path: str = "/proc/self/status") -> bool:
    """True when the process's effective capabilities include CAP_NET_ADMIN."""
    try:
        with open(status_path, "rb") as handle:  # bytes: no codec to load in an exec'd plugin
            for line in handle:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except (OSError, ValueError):
        return False
    return False


def _builtin(name: str) -> LinkBackend:
    if name == "netlink":
        from ._netlink import NetlinkLinkBackend

        return NetlinkLinkBackend()
    if name == "iproute2":
        from ._iproute2 import IPRoute2LinkBackend

        return IPRoute2LinkBackend()
    if name == "pyroute2":
        from ._pyroute2 import Pyroute2LinkBackend

        return Pyroute2LinkBackend()
    from ._fake import FakeLinkBackend

    return FakeLinkBackend()


def _auto() -> LinkBackend:
    return _builtin("netlink" if has_net_admin() else "fake")


def select_backend(
    name: str | LinkBackend | None = None,
    environ: Mapping[str, str] | None = None,
) -> LinkBackend:
    """The link backend to use.

    Args:
        name: a backend object (returned as is), a backend name, or ``None`` to
            read ``CNICORE_BACKEND`` from ``environ`` (default ``auto``).
        environ: the environment to read (default ``os.environ``).

    Raises :class:`InvalidConfigError` naming the variable and value for an
    unknown name.
    """
    if name is not None and not isinstance(name, str):
        return name
    env = os.environ if environ is None else environ
    from_env = name is None
    chosen = (env.get(ENV_VAR, "") if from_env else str(name)).strip().lower() or "auto"
    if chosen == "auto":
        return _auto()
    if chosen in BUILTIN_BACKENDS:
        return _builtin(chosen)
    from importlib import metadata

    from cnicore.links import LinkBackend

    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == chosen:
            try:
                factory = entry.load()
                backend = factory()
            except Exception as exc:  # a third party's failure, reported as ours
                raise InternalError(f"link backend {chosen!r} from {entry.value} failed to load: {exc}") from exc
            if not isinstance(backend, LinkBackend):
                raise InternalError(f"link backend {chosen!r} from {entry.value} does not implement LinkBackend")
            return backend
    known = ", ".join(BUILTIN_BACKENDS)
    where = f"{ENV_VAR}={chosen}" if from_env else f"backend {chosen!r}"
    raise InvalidConfigError(
        f"unknown link backend {where} (expected one of {known}, or an entry point in {ENTRY_POINT_GROUP!r})",
        key=ENV_VAR, value=chosen,
    )
