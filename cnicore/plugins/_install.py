"""Installing the plugins as executables a runtime can find on ``CNI_PATH``.

:func:`install_plugins` writes ``loopback``, ``bridge`` and ``host-local`` into a
directory: three copies of one tiny script whose shebang is the absolute path of
the running interpreter (so the virtual environment cnicore lives in is the one
that runs it) and which calls :func:`cnicore._plugin_main.main`; that dispatches
on the name the script was executed under. Each script carries
:data:`~cnicore.plugins._delegate.PLUGIN_MARKER`, by which the bridge plugin
recognises our own host-local on ``CNI_PATH`` and runs it in process instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cnicore._errors import InvalidConfigError, IOFailureError
from cnicore.plugins._delegate import PLUGIN_MARKER

__all__ = ["INSTALLED_PLUGINS", "entry_point_script", "install_plugins"]

#: The executables :func:`install_plugins` writes.
INSTALLED_PLUGINS = ("loopback", "bridge", "host-local")


def entry_point_script(interpreter: str | None = None) -> str:
    """The text of an entry point run by ``interpreter`` (default: the running one)."""
    python = interpreter or sys.executable
    if not python or any(c.isspace() for c in python):
        # A shebang line cannot quote: a path with blanks would be split by the kernel.
        raise InvalidConfigError(f"interpreter path {python!r} cannot appear in a shebang line",
                                 key="interpreter", value=python)
    return (f"#!{python}\n"
            f"{PLUGIN_MARKER}\n"
            "# A CNI plugin: runs the plugin named like this file (loopback, bridge, host-local).\n"
            "import sys\n"
            "from cnicore._plugin_main import main\n"
            "sys.exit(main())\n")


def install_plugins(directory: str | os.PathLike[str], *, interpreter: str | None = None) -> tuple[Path, ...]:
    """Write the plugin executables into ``directory`` (created if needed); return their paths.

    Existing files of those names are replaced atomically (a runtime executing one
    meanwhile sees the old or the new file, never half of one). Idempotent.

    Raises :class:`~cnicore.IOFailureError` when the directory cannot be written.
    """
    target = Path(directory)
    script = entry_point_script(interpreter)
    written: list[Path] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in INSTALLED_PLUGINS:
            path = target / name
            tmp = target / f".{name}.tmp.{os.getpid()}"
            tmp.write_text(script, encoding="utf-8")
            tmp.chmod(0o755)
            os.replace(tmp, path)
            written.append(path)
    except OSError as exc:
        raise IOFailureError(f"cannot install plugins into {str(target)!r}: {exc.strerror or exc}") from exc
    return tuple(written)
