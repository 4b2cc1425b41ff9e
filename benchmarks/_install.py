"""cnicore installed as users install it, for every figure that executes a plugin.

The project's own virtual environment is an editable install, whose site hook
(an import finder named in a ``.pth`` file) makes starting Python about twice as
slow here; a figure timed against ``python -c pass`` there flatters every ratio.
So a full run builds a throwaway virtual environment from the same base
interpreter, installs the checkout into it with ``pip install .`` (a wheel: no
hook), and writes the plugins with its own ``cnicore install-plugins``. Every
exec figure runs those plugins, and its Python anchor is that environment's
``python -IS -c "import json"``: what any Python plugin that reads its JSON
configuration pays before doing anything (the installed plugins also start
with ``-IS``).

The install is made once per run, on first use, and removed when the run ends.
A figure added later (a container runtime's lifecycle, say) takes it from
:func:`installed` and reports its rows beside the others.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

__all__ = ["Install", "InstallUnavailable", "installed", "json_floor"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class InstallUnavailable(RuntimeError):
    """The non-editable install could not be made here (the message says why)."""


@dataclass(frozen=True)
class Install:
    """A non-editable install of the checkout.

    Attributes:
        python: the install's interpreter (a virtual environment's, on the run's base interpreter).
        plugins: the directory its ``cnicore install-plugins`` wrote ``loopback``, ``bridge`` and ``host-local``
            into: a ``CNI_PATH``.
        editable: True only for ``--quick`` runs, which use the running (editable) environment to stay fast;
            their exec figures are a smoke test, not a measurement.
    """

    python: str
    plugins: str
    editable: bool = False

    def plugin(self, name: str) -> str:
        """The path of one installed plugin executable."""
        return os.path.join(self.plugins, name)

    @property
    def label(self) -> str:
        """How a row names the install its figure ran."""
        return "editable install (quick run)" if self.editable else "non-editable install"


def json_floor(install: Install) -> list[str]:
    """The anchor of every Python plugin: the install's interpreter starting isolated and importing json."""
    return [install.python, "-IS", "-c", "import json"]


def bare_start(install: Install) -> list[str]:
    """The install's interpreter starting isolated and doing nothing: below this no Python plugin can go.

    cnicore's plugins read JSON without the ``json`` package (see :mod:`cnicore._json`), so
    they may beat :func:`json_floor`; rows set against it say how far they are from this.
    """
    return [install.python, "-IS", "-c", "pass"]


_made: dict[bool, Install] = {}


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise InstallUnavailable(f"{what} failed: {' / '.join(tail)}")


def installed(quick: bool) -> Install:
    """The run's install (made on first use; :class:`InstallUnavailable` when it cannot be)."""
    if quick in _made:
        return _made[quick]
    work = tempfile.mkdtemp(prefix="cnicore-bench-install-")
    atexit.register(shutil.rmtree, work, True)
    if quick:
        from cnicore.plugins import install_plugins

        plugins = os.path.join(work, "plugins")
        install_plugins(plugins)
        made = Install(python=sys.executable, plugins=plugins, editable=True)
    else:
        # A copy of the working tree (what the in-process figures import), so that building the wheel leaves no
        # build/ or egg-info behind in the checkout.
        source = os.path.join(work, "source")
        shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "results"))
        venv = os.path.join(work, "venv")
        python = os.path.join(venv, "bin", "python")
        _run([sys.executable, "-m", "venv", "--without-pip", venv], "python -m venv")
        # This environment's pip installs into the new one: the checkout built as a wheel, as users install it.
        _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--disable-pip-version-check",
              "--no-input", source], "pip install .")
        plugins = os.path.join(work, "plugins")
        _run([os.path.join(venv, "bin", "cnicore"), "install-plugins", plugins], "cnicore install-plugins")
        made = Install(python=python, plugins=plugins)
    _made[quick] = made
    return made
