"""Package names that load on first use (PEP 562's module ``__getattr__`` and ``__dir__``).

A package lists its public names in ``__all__`` and maps each to the submodule
that defines it; :func:`lazy_names` makes the two module functions. The first
access imports the submodule and stores the value in the package, so later
accesses are plain attribute reads.

Imported on every exec'd plugin's path: it imports nothing itself (not even
``typing``) until a name is asked for.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["import_module", "lazy_names"]


def import_module(name: str) -> Any:
    """The module named ``name`` (absolute), imported if need be: :func:`importlib.import_module` without
    importing :mod:`importlib`, whose package loads :mod:`warnings` too (about half a millisecond of every
    exec'd plugin's start)."""
    import sys

    module = sys.modules.get(name)
    if module is None:
        __import__(name)
        module = sys.modules[name]
    return module


def lazy_names(namespace: dict[str, Any], where: Mapping[str, str]) -> tuple[Callable[[str], Any],
                                                                            Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the package whose ``globals()`` is ``namespace``.

    ``where`` maps each name to the submodule that defines it, relative to the
    package (``"_result"`` for ``cnicore.spec._result``). ``__dir__`` lists the
    package's ``__all__``. Usage, at the end of a package's ``__init__``::

        __getattr__, __dir__ = lazy_names(globals(), {"Result": "_result"})
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace["__all__"])

    return __getattr__, __dir__
