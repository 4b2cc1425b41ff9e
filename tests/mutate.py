"""`make mutate`: run mutmut over the safety-critical core, then report what survived.

Usage, from the repository root (mutmut installed: extra ``mutate``)::

    python tests/mutate.py            # mutmut run over SCOPE, then the report
    python tests/mutate.py --report   # the report of the last run only

The modules mutmut mutates and the tests it runs are in ``[tool.mutmut]`` of pyproject.toml; SCOPE below says
which of their functions a run covers, MUST_KILL which of those must have no mutant left alive. The report lists
every mutant in scope not killed, the kill rate per module, overall and per MUST_KILL group, and exits 1 when a
MUST_KILL mutant survives or no test reaches it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

# mutmut names a mutant ``<module>.x_<function>__mutmut_<n>`` or ``<module>.xǁ<Class>ǁ<method>__mutmut_<n>``.
_FILECORE = "cnicore.stores._filecore.xǁFileStoreCoreǁ"

#: Functions where every mutant must be killed: the stores' reserve/release paths and GC's decision.
MUST_KILL = {
    "store reserve/release": (
        f"{_FILECORE}reserve_key__*",
        f"{_FILECORE}release_key__*",
        f"{_FILECORE}release_owner_keys__*",
        f"{_FILECORE}_unlink__*",
        "cnicore.stores._memory.xǁMemoryStoreǁreserve__*",
        "cnicore.stores._memory.xǁMemoryStoreǁrelease__*",
        "cnicore.stores._memory.xǁMemoryStoreǁrelease_owner__*",
        "cnicore.stores._memory.x_release_owner_in_index__*",
        "cnicore.stores._keyindex.x_release_owner_keys__*",
    ),
    "GC keep/release": (
        "cnicore.ipam._engine.x_gc__*",
    ),
}

#: What a run mutates: the allocator and host-local's operations, the memory store, the owner-key rules, the file
#: store's reserve and release (with the file creation and cursor they go through), the result cache, the journal.
SCOPE = (
    *(f"cnicore.ipam._engine.x_{function}__*" for function in (
        "candidate_spans", "_store_order_spans", "allocate", "_rewrap", "add", "delete", "check", "gc",
        "attachment_owner", "owner_texts")),
    "cnicore.ipam._allocator.*",
    "cnicore.ipam._hostlocal.*",
    "cnicore.ipam._keyport.*",
    "cnicore.stores._memory.*",
    "cnicore.stores._keyindex.x_release_owner_keys__*",
    "cnicore.stores._keyindex.x_find_owner_keys__*",
    *MUST_KILL["store reserve/release"],
    f"{_FILECORE}_create__*",
    f"{_FILECORE}_create_unnamed__*",
    f"{_FILECORE}_write_last_reserved__*",
    "cnicore.runtime._cache.*",
    "cnicore.runtime._journal.*",
)

# mutmut's exit codes per mutant (restated from mutmut.stats so that the report needs no mutmut import):
# 1 and 3 are kills; a timeout also means the tests noticed.
_KILLED = {1, 3}
_TIMEOUT = {36, 24, -24, 152, 255}
_STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", None: "not checked"}


def _status(code: int | None) -> str:
    if code in _KILLED:
        return "killed"
    if code in _TIMEOUT:
        return "timeout"
    return _STATUS.get(code, "suspicious")


def _rate(statuses: list[str]) -> str:
    caught = sum(s in ("killed", "timeout") for s in statuses)
    return f"{caught}/{len(statuses)} ({100 * caught / len(statuses):.1f}%)" if statuses else "0/0"


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch(name, pattern) for pattern in patterns)


def report(root: Path = Path("mutants")) -> int:
    results: dict[str, str] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        results.update({name: _status(code) for name, code in codes.items() if _matches(name, SCOPE)})
    if not results:
        print(f"no mutmut results under {root}/: run `mutmut run` first", file=sys.stderr)
        return 2
    missed = {name: status for name, status in results.items() if status not in ("killed", "timeout")}
    for name, status in sorted(missed.items()):
        print(f"{status:>12}  {name}")
    print()
    by_module: dict[str, list[str]] = {}
    for name, status in results.items():
        by_module.setdefault(name.split(".x", 1)[0], []).append(status)
    for module, statuses in sorted(by_module.items()):
        print(f"{module:<32} {_rate(statuses):>22}   {dict(Counter(statuses))}")
    print(f"{'all in scope':<32} {_rate(list(results.values())):>22}")
    failed = False
    for group, patterns in MUST_KILL.items():
        statuses = [status for name, status in results.items() if _matches(name, patterns)]
        gaps = sorted(name for name in missed if _matches(name, patterns))
        print(f"{group:<32} {_rate(statuses):>22}" + (f"   NOT KILLED: {len(gaps)}" if gaps else ""))
        failed |= bool(gaps) or not statuses
    return 1 if failed else 0


def run() -> int:
    """mutmut over SCOPE (its progress goes to mutants.log); then the report."""
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutate"}
    print("mutmut run: progress in mutants.log", flush=True)
    with open("mutants.log", "wb") as log:
        done = subprocess.run([str(mutmut), "run", "--max-children", "2", *SCOPE], env=env, stdout=log,
                              stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        print(Path("mutants.log").read_bytes()[-3000:].decode(errors="replace"), file=sys.stderr)
        return done.returncode
    return report()


if __name__ == "__main__":
    sys.exit(report() if sys.argv[1:] == ["--report"] else run())
