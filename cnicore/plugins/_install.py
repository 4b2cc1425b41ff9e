"""Installing the plugins as executables a runtime can find on ``CNI_PATH``.

:func:`install_plugins` writes ``loopback``, ``bridge``, ``host-local`` and the
others into a directory: copies of one tiny script that runs the plugin named
like the file it was executed as (:func:`cnicore._plugin_main.main` dispatches on
that name). Each carries :data:`~cnicore.plugins._delegate.PLUGIN_MARKER`, by
which the bridge plugin recognises our own host-local on ``CNI_PATH`` and runs it
in process instead.

A runtime executes a plugin once per container and command, so its start
matters; and libcni asks every plugin of a network for VERSION before each ADD
and each DEL: with podman's default chain, eight executions per container that
only print a fixed line. So the script is a shell script and a Python script at
once. Run by the kernel, its shebang starts ``/bin/sh``, which answers VERSION
itself, with the text :func:`cnicore._plugin_main.version_answer` gives, written
in when installing (VERSION needs no variable but ``CNI_COMMAND``, so nothing
else can change it), and for any other command replaces itself with the
interpreter running the same file. Python reads the shell part as a string and
runs what follows it. A shell starts in under a millisecond here, Python in over
ten.

The interpreter runs with ``-IS``: isolated from ``PYTHON*`` variables, the
user's site-packages and the current directory, and without :mod:`site`, whose
processing of ``.pth`` files (an editable install's import hook above all)
costs more than many a plugin's work. The script then puts on ``sys.path``,
after the standard library as ``site`` does, what ``site`` would have given
cnicore, computed when installing from the running interpreter: its
site-packages (and the plain directories their ``.pth`` files name), and, for
an editable install, a finder for the cnicore packages where they really are.
Every script first turns the cycle collector off: the process lives for one
command, reference counting frees what is acyclic, and the collections the
imports' allocations would trigger cost an executed host-local ADD about a
twentieth of its run.
Installing for another interpreter, or when cnicore's dependencies are not
found there, writes a script that keeps ``site``: slower to start, but it runs
wherever that interpreter runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cnicore._errors import InvalidConfigError, IOFailureError
from cnicore._plugin_main import version_answer
from cnicore.plugins._delegate import PLUGIN_MARKER

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = ["INSTALLED_PLUGINS", "ImportLayout", "entry_point_script", "import_layout", "install_plugins"]

#: The executables :func:`install_plugins` writes.
INSTALLED_PLUGINS = ("loopback", "bridge", "host-local", "tuning", "firewall", "portmap", "mesos-cni-port-mapper")

# What the plugins import from outside the standard library, to be found on the isolated path.
_DEPENDENCIES = ("netaddr", "attrs", "attr")
_HEADER = "# A CNI plugin: runs the plugin named like this file (loopback, bridge, host-local, ...).\n"
# A plugin process lives for one command: the cycle collector, run again and again by the allocations of the imports,
# only costs it time (reference counting still frees everything acyclic, and the process's end frees the rest).
_NO_CYCLE_COLLECTOR = "import gc\ngc.disable()  # one command, then the process ends: no cycle collection\n"


class ImportLayout(NamedTuple):
    """Where the running interpreter finds cnicore and its dependencies.

    Attributes:
        path: the directories ``site`` puts on ``sys.path`` (site-packages and
            what their ``.pth`` files name), in ``site``'s order.
        packages: for a package not found through ``path`` (an editable
            install), the directory holding it: ``{"cnicore": "/src", ...}``.
    """

    path: tuple[str, ...]
    packages: dict[str, str]


def _pth_directories(site_dir: str) -> list[str]:
    # The plain directory lines of the .pth files, as site adds them; "import" lines are hooks
    # (such as an editable install's finder) that the script replaces with its own finder.
    found: list[str] = []
    try:
        names = sorted(name for name in os.listdir(site_dir) if name.endswith(".pth"))
    except OSError:
        return found
    for name in names:
        try:
            with open(os.path.join(site_dir, name), encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            line = line.strip()
            if not line or line.startswith(("#", "import ", "import\t")):
                continue
            directory = os.path.realpath(os.path.join(site_dir, line))
            if os.path.isdir(directory):
                found.append(directory)
    return found


def _package_folder(spec: ModuleSpec | None) -> str | None:
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.realpath(next(iter(spec.submodule_search_locations)))


def import_layout() -> ImportLayout | None:
    """Where the running interpreter finds cnicore and its dependencies; None if ``site`` is needed.

    None when a dependency is not found through the site-packages directories
    (say, one that only an import hook provides), or when the cnicore packages
    live in folders not named after them.
    """
    import importlib.util
    import site
    from importlib.machinery import PathFinder

    site_dirs = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    site_dirs.extend(site.getsitepackages())
    directories: list[str] = []
    for site_dir in site_dirs:
        if os.path.isdir(site_dir):
            # As site adds them: each site directory, then the directories its .pth files name.
            directories.append(site_dir)
            directories.extend(_pth_directories(site_dir))
    path = list(dict.fromkeys(os.path.realpath(d) for d in directories))
    if any(PathFinder.find_spec(dependency, path) is None for dependency in _DEPENDENCIES):
        return None
    package = _package_folder(importlib.util.find_spec("cnicore"))
    backends = _package_folder(importlib.util.find_spec("cnicore.backends"))
    if package is None or backends is None:
        return None
    packages: dict[str, str] = {}
    if _package_folder(PathFinder.find_spec("cnicore", path)) != package:
        packages["cnicore"] = os.path.dirname(package)
    if backends != os.path.join(package, "backends"):
        packages["cnicore.backends"] = os.path.dirname(backends)
    for name, holder in packages.items():
        # The script's finder looks a package up by its last name in the folder holding it.
        if _package_folder(PathFinder.find_spec(name, [holder])) != (package if name == "cnicore" else backends):
            return None
    return ImportLayout(tuple(path), packages)


_QUOTE = "'"
# The line both languages read: for the shell two empty words and ``true``; for Python the opening of a string
# that the front's last line closes.
_BOTH = _QUOTE * 4 + "true\n"
_CLOSE = _QUOTE * 3 + "\n"


def _shell_front(python: str, options: str) -> str:
    """The script's first part: shell that answers VERSION, and otherwise runs ``python options`` on the file."""
    arms: dict[str, list[str]] = {}
    for name in INSTALLED_PLUGINS:
        text = version_answer(name)
        # (A text the shell could not quote as it is, which would also end the Python string, is left to Python.)
        if text is not None and _QUOTE not in text:
            arms.setdefault(text.removesuffix("\n"), []).append(name)
    lines = ["#!/bin/sh\n", f"{PLUGIN_MARKER}\n", _HEADER,
             "# VERSION is answered by the shell, without starting Python (libcni asks every plugin before each\n",
             "# ADD and DEL); any other command runs the Python part of this file (see cnicore.plugins._install).\n",
             _BOTH,
             'case "$CNI_COMMAND/${0##*/}" in\n']
    for text, names in arms.items():
        patterns = "|".join(f"VERSION/{name}" for name in names)
        lines.append(f"{patterns}) printf '%s\\n' {_QUOTE}{text}{_QUOTE}; exit ;;\n")
    lines += ["esac\n", f'exec {_QUOTE}{python}{_QUOTE}{options} -- "$0" "$@"\n', _CLOSE]
    return "".join(lines)


def _isolated_script(python: str, layout: ImportLayout) -> str:
    lines = [_shell_front(python, " -IS"),
             "# Started isolated and without site (see cnicore.plugins._install); the import path is set here.\n",
             _NO_CYCLE_COLLECTOR,
             "import sys\n",
             f"sys.path += {list(layout.path)!r}\n"]
    if layout.packages:
        lines += ["from importlib.machinery import PathFinder\n",
                  "\n",
                  "\n",
                  "class _Packages:\n",
                  "    # cnicore installed in editable mode: its packages are found where they live.\n",
                  f"    where = {layout.packages!r}\n",
                  "\n",
                  "    @classmethod\n",
                  "    def find_spec(cls, name, path=None, target=None):\n",
                  "        where = cls.where.get(name)\n",
                  "        return None if where is None else PathFinder.find_spec(name, [where])\n",
                  "\n",
                  "\n",
                  "sys.meta_path.insert(0, _Packages)\n"]
    lines += ["from cnicore._plugin_main import exec_main\n", "exec_main()\n"]
    return "".join(lines)


def entry_point_script(interpreter: str | None = None) -> str:
    """The text of an entry point run by ``interpreter`` (default: the running one).

    For the running interpreter the script starts it isolated and without
    ``site`` and sets the import path itself (see the module docstring).
    """
    python = interpreter or sys.executable
    if not python or any(c.isspace() or c in "'\\" for c in python):
        # Written between single quotes in the shell part, which Python reads as a string: no quote, no backslash;
        # and no blanks, which every other place that names the interpreter would have to quote.
        raise InvalidConfigError(f"interpreter path {python!r} cannot be written into the plugin script (blanks, "
                                 "quotes and backslashes are refused)", key="interpreter", value=python)
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        layout = import_layout()
        if layout is not None:
            return _isolated_script(python, layout)
    return (f"{_shell_front(python, '')}"
            f"{_NO_CYCLE_COLLECTOR}"
            "import sys\n"
            "from cnicore._plugin_main import exec_main\n"
            "exec_main()\n")


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
