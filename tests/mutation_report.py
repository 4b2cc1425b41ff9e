"""Summarise a `make mutate` run (mutmut's results under mutants/): every mutant not killed, the kill rate
overall and per module, and the kill rate of the paths that must have none surviving.

Exits 1 when a mutant of those paths survives (or no test reaches it), so `make mutate` fails on a gap there.
Run from the repository root after ``mutmut run``: ``python tests/mutation_report.py``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

#: Functions where every mutant must be killed, by mutmut's mangled name prefix (``x_<function>`` for a
#: function, ``xǁ<Class>ǁ<method>`` for a method): the stores' reserve/release paths and GC's decision.
MUST_KILL = {
    "store reserve/release": (
        "cnicore.stores._filecore.xǁFileStoreCoreǁreserve_key__",
        "cnicore.stores._filecore.xǁFileStoreCoreǁrelease_key__",
        "cnicore.stores._filecore.xǁFileStoreCoreǁrelease_owner_keys__",
        "cnicore.stores._filecore.xǁFileStoreCoreǁ_create__",
        "cnicore.stores._filecore.xǁFileStoreCoreǁ_unlink__",
        "cnicore.stores._memory.xǁMemoryStoreǁreserve__",
        "cnicore.stores._memory.xǁMemoryStoreǁrelease__",
        "cnicore.stores._memory.xǁMemoryStoreǁrelease_owner__",
        "cnicore.stores._memory.x_release_owner_in_index__",
        "cnicore.stores._keyindex.x_release_owner_keys__",
    ),
    "GC keep/release": (
        "cnicore.ipam._hostlocal.x_gc__",
    ),
}

# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code, restated so that this report needs no
# mutmut import): 1 and 3 are kills; a timeout also means the tests noticed.
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


def main(root: Path = Path("mutants")) -> int:
    results: dict[str, str] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        results.update({name: _status(code) for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()})
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
    print(f"{'all mutated modules':<32} {_rate(list(results.values())):>22}")
    failed = False
    for group, prefixes in MUST_KILL.items():
        statuses = [status for name, status in results.items() if name.startswith(prefixes)]
        gaps = sorted(name for name in missed if name.startswith(prefixes))
        print(f"{group:<32} {_rate(statuses):>22}" + (f"   NOT KILLED: {len(gaps)}" if gaps else ""))
        failed |= bool(gaps) or not statuses
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
