"""The architecture, enforced: what the pure core may import, and which way imports point.

spec <- config, links, the host-local engine (ipam/_engine.py) <- stores <- the typed IPAM API (the rest of
ipam) <- plugins <- runtime <- cli; backends depend on the core, never the reverse.

The host-local engine is pure in the strict sense: the standard library and
cnicore's own engine-level modules only (no netaddr, no attrs, no store), so
that the executed plugin can run it without loading them. The typed IPAM API
(attrs values with netaddr addresses) adapts it and reaches reservations through
the store port, so it sits above the stores.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnicore"

# The parts that parse, validate, convert and decide (the typed IPAM API is an adapter over the engine and the
# store port: it is held to the layer rules below, not to these).
PURE = ("spec", "config", "links")
PURE_THIRD_PARTY = {"netaddr", "attrs"}
# The host-local engine and what it may import: the standard library and these cnicore modules, nothing else.
ENGINE = PACKAGE / "ipam" / "_engine.py"
ENGINE_MAY_IMPORT = {"cnicore._errors", "cnicore._gofmt", "cnicore._json", "cnicore._readfile", "cnicore.spec._goint",
                     "cnicore.spec._version", "cnicore.spec._args", "cnicore.spec._validate"}
# The bridge's engine and the link layer's plans on strings: the standard library and these cnicore modules only.
BRIDGE_ENGINE = {
    PACKAGE / "plugins" / "_bridgecore.py": {"cnicore._errors", "cnicore._gofmt", "cnicore._linkplan",
                                             "cnicore.plugins._netconf", "cnicore.spec._args",
                                             "cnicore.spec._resultobj", "cnicore.spec._goint"},
    # (cnicore._lazy: the SHA-512 module imported by name, on first use)
    PACKAGE / "_linkplan.py": {"cnicore._gofmt", "cnicore.spec._goint", "cnicore._lazy"},
}
# Modules of the standard library that do I/O with other processes or the kernel's network stack.
FORBIDDEN_IN_PURE = {"subprocess", "socket", "ctypes", "multiprocessing", "asyncio"}

# Which layers each layer may import (besides the top-level private helpers such as cnicore._errors).
ALLOWED_LAYERS: dict[str, set[str]] = {
    "spec": {"spec"},
    "config": {"spec", "config"},
    # The typed IPAM API over the engine: the store port and the stores it opens by default.
    "ipam": {"spec", "ipam", "stores"},
    "links": {"spec", "links"},
    "stores": {"spec", "stores"},
    "plugins": {"spec", "config", "ipam", "stores", "links", "plugins"},
    "runtime": {"spec", "config", "ipam", "stores", "links", "plugins", "runtime"},
}


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Absolute module names imported by a file, with line numbers (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT).with_suffix("")
    package_parts = list(rel.parts[:-1])  # a module and a package __init__ share their package
    if package_parts and package_parts[0] == "backends":
        package_parts = ["cnicore", *package_parts]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((module, node.lineno))
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "cnicore" or len(parts) < 2:
        return None
    return parts[1]


@pytest.mark.parametrize("layer", PURE)
def test_pure_core_imports_only_stdlib_netaddr_attrs(layer: str) -> None:
    problems = []
    for path in _python_files(PACKAGE / layer):
        for module, line in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN_IN_PURE:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            elif top == "cnicore" or top == "__future__" or top in PURE_THIRD_PARTY:
                continue
            elif top not in sys.stdlib_module_names:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports third-party {module}")
    assert problems == []


@pytest.mark.parametrize("layer", sorted(ALLOWED_LAYERS))
def test_imports_point_down_the_layers(layer: str) -> None:
    problems = []
    for path in _python_files(PACKAGE / layer):
        for module, line in _imports(path):
            target = _layer(module)
            if target is None or target.startswith("_") or target == "testing":
                # cnicore itself or its private helpers (_errors, _json, _gofmt)
                if target == "testing":
                    problems.append(f"{path.relative_to(ROOT)}:{line} imports the testing helpers")
                continue
            if target not in ALLOWED_LAYERS[layer]:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {layer} imports {module}")
    assert problems == []


def test_core_never_imports_backends_statically() -> None:
    # Nor by the checkout's folder name ("backends"), which an installed cnicore does not have (it is
    # cnicore.backends there): such an import works in this repository and fails for every user.
    problems = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _python_files(PACKAGE)
        for module, line in _imports(path)
        if module.startswith("cnicore.backends") or module.split(".")[0] == "backends"
    ]
    assert problems == []


def test_backends_depend_only_on_the_core() -> None:
    problems = []
    for path in _python_files(ROOT / "backends"):
        for module, line in _imports(path):
            target = _layer(module)
            if target in ("runtime", "cli", "plugins", "testing"):
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert problems == []


def test_importing_the_pure_core_loads_no_backend_or_subprocess() -> None:
    code = (
        "import sys\n"
        "import cnicore, cnicore.spec, cnicore.config, cnicore.ipam, cnicore.links\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pyroute2', 'subprocess')"
        " or m.startswith('cnicore.backends') or m.startswith('cnicore.runtime'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_the_host_local_engine_imports_only_the_standard_library_and_engine_modules() -> None:
    problems = []
    for module, line in _imports(ENGINE):
        top = module.split(".")[0]
        if top == "cnicore":
            if module not in ENGINE_MAY_IMPORT:
                problems.append(f"{ENGINE.relative_to(ROOT)}:{line} imports {module}")
        elif top != "__future__" and (top not in sys.stdlib_module_names or top in FORBIDDEN_IN_PURE):
            problems.append(f"{ENGINE.relative_to(ROOT)}:{line} imports {module}")
    assert problems == []


@pytest.mark.parametrize("path", sorted(BRIDGE_ENGINE), ids=lambda p: p.name)
def test_the_bridge_engine_imports_only_the_standard_library_and_engine_modules(path: Path) -> None:
    problems = []
    for module, line in _imports(path):
        top = module.split(".")[0]
        if top == "cnicore":
            if module not in BRIDGE_ENGINE[path]:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
        elif top != "__future__" and (top not in sys.stdlib_module_names or top in FORBIDDEN_IN_PURE):
            problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert problems == []


def test_the_stores_never_import_ipam() -> None:
    # The engine sits below the stores and the typed API above them: a store importing ipam would close a cycle.
    problems = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                for path in _python_files(PACKAGE / "stores") for module, line in _imports(path)
                if _layer(module) == "ipam"]
    assert problems == []


def test_importing_the_engine_loads_no_typed_value_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import cnicore.ipam._engine as engine\n"
        "engine.decode_config({'name': 'n', 'cniVersion': '1.0.0', 'ipam': {'subnet': '10.0.0.0/24'}}, 'IP=10.0.0.5')\n"
        "bad = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('attr', 'attrs', 'netaddr', 'typing',"
        " 'ipaddress')"
        " or m.startswith(('cnicore.stores', 'cnicore.ipam._', 'cnicore.spec._result'))"
        " and m != 'cnicore.ipam._engine')\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""
