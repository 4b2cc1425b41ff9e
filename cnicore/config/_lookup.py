"""Finding a plugin binary on the plugin path (libcni's ``invoke.FindInPath``).

The first ``<dir>/<type>`` that is a regular file wins, in path order. Nothing is
executed and the file's mode is not checked for the execute bit (libcni does not
either: exec reports that later). Only ``os.path`` and ``os.stat`` calls happen
here, so the lookup stays in the pure core.
"""

from __future__ import annotations

import os
import posixpath
import stat

from cnicore._errors import InvalidConfigError, NotFoundError
from cnicore._gofmt import go_quote, go_value_list

TYPE_CHECKING = False  # typing is left to type checkers: this module is on every exec'd plugin's path
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["find_in_path"]


def _go_join(directory: str, name: str) -> str:
    # Go's filepath.Join: empty elements are dropped and the result is cleaned;
    # unlike posixpath.normpath, Clean collapses a leading "//" too.
    if directory == "":
        return posixpath.normpath(name)
    joined = posixpath.normpath(posixpath.join(directory, name))
    if joined.startswith("//"):
        joined = "/" + joined.lstrip("/")
    return joined


def find_in_path(plugin: str, paths: Sequence[str]) -> str:
    """The path of plugin binary ``plugin`` in the first directory of ``paths`` holding it.

    Raises:
        InvalidConfigError: (code 7) ``no plugin name provided``, ``invalid plugin
            name: <name>`` (it contains ``/``), or ``no paths provided``.
        NotFoundError: ``failed to find plugin "<name>" in path [a b]``.
    """
    if plugin == "":
        raise InvalidConfigError("no plugin name provided", key="type", value=plugin)
    if "/" in plugin:
        raise InvalidConfigError(f"invalid plugin name: {plugin}", key="type", value=plugin)
    if len(paths) == 0:
        raise InvalidConfigError("no paths provided", key="CNI_PATH", value=list(paths))
    for directory in paths:
        candidate = _go_join(directory, plugin)
        try:
            info = os.stat(candidate)
        except (OSError, ValueError):
            continue  # missing, unreadable, or a name with a NUL byte
        if stat.S_ISREG(info.st_mode):
            return candidate
    raise NotFoundError(f"failed to find plugin {go_quote(plugin)} in path {go_value_list(paths)}")
