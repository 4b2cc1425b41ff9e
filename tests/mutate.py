"""`make mutate`: run mutmut over the safety-critical core, then report what survived.

Usage, from the repository root (mutmut installed: extra ``mutate``)::

    python tests/mutate.py            # mutmut run over MUST_KILL (`make mutate`), then the report
    python tests/mutate.py --all      # mutmut run over SCOPE (`make mutate-all`), then the report
    python tests/mutate.py --report   # the report of the last run only

The modules mutmut mutates and the tests it runs are in ``[tool.mutmut]`` of pyproject.toml; SCOPE below says
which of their functions the wider run covers, MUST_KILL which must have no mutant left alive (the default run
covers those only). mutmut runs, for each mutant, only the tests that called the mutated function, fastest first,
stopping at the first failure. The report lists every mutant of the last run not killed (equivalent ones
aside), the kill rate per module (killed of all but the equivalent ones), overall and per MUST_KILL group, and
exits 1 when a MUST_KILL mutant survives or no test reaches it.

A mutant that no test can tell from the original is listed in EQUIVALENT by what it changes (the function, the
original line, the mutated line) with the reason, never by mutmut's number, so that an entry stops matching
(and the mutant shows as a survivor again) as soon as the code it describes changes.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from fnmatch import fnmatch
from functools import cache
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

_JOURNAL = "cnicore.runtime._journal."
_CACHE = "cnicore.runtime._cache."
_CODEC = "codec names are case-insensitive: the same codec"
_FOLD = "Go's decoder matches keys whatever their case (go_field): every spelling of the name finds the same keys"
_NO_FD = "only the sign of the descriptor is ever tested (>= 0)"
_PACE = ("the pause between attempts to take a held lock: it changes only how soon a lock let go is noticed and "
         "the time spent polling, never whether it is granted before the deadline or refused after it")

#: Mutants no test can tell from the original: (function pattern, original line, mutated line, why). Only the
#: bookkeeping of caches, a fast path whose slow path gives the same answer, spellings Python takes as the same
#: (codec names, a false value for False), polling pace, and error paths no test can reach belong here; code
#: whose mutants cannot matter (an argument nobody reads) is simplified instead.
EQUIVALENT = (
    (f"{_FILECORE}reserve_key__*", "if index.has_key(key):", "if index.has_key(None):",
     "a fast path: inside the transaction the index holds every reservation file, and creating a name that is "
     "taken fails (FileExistsError) with the same answer, False, nothing changed; only the cost differs"),
    (f"{_FILECORE}reserve_key__*", "if not self._all_verified:", "if self._all_verified:",
     "which entries were read since a persisted index was loaded is a cache: an entry left out is read again "
     "when next needed, and holds what this store just wrote"),
    (f"{_FILECORE}reserve_key__*", "self._verified.add(key)", "self._verified.add(None)",
     "the same cache of read entries: an entry left out is read again when next needed"),
    (f"{_FILECORE}_unlink__*", "self._verified.discard(key)", "self._verified.discard(None)",
     "the same cache: it is consulted only for keys the index holds, and a key comes back into the index only "
     "by a reserve or a read, both of which mark it read"),
    (f"{_FILECORE}_unlink__*", "self._sigs.set(key, None)", "self._sigs.set(None, None)",
     "a removed file's signature (inode, ctime) left behind: a new file is re-read whenever its ctime is at or "
     "after the state's seal time, so the stale signature could only hide a file created before that seal "
     "with the same inode number and the same ctime to the nanosecond as the removed one"),
    *((f"{_JOURNAL}x__encode__*", f'"{key}": base64.b64encode({value}).decode("ascii"),{tail}',
       f'"{key}": base64.b64encode({value}).decode("ASCII"),{tail}', _CODEC)
      for key, value, tail in (("config", "entry.config", ""),)),
    (f"{_JOURNAL}x__encode__*", '"plugins": [base64.b64encode(p).decode("ascii") for p in entry.plugins],',
     '"plugins": [base64.b64encode(p).decode("ASCII") for p in entry.plugins],', _CODEC),
    *((f"{_JOURNAL}x_create_pending__*",
       'tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}")', mutated,
       "the random part of the temporary name needs only to make it unique")
      for mutated in ('tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(9)}")',
                      'tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(None)}")')),
    (f"{_JOURNAL}x_create_pending__*", "fd = -1", "fd = -2", _NO_FD),
    (f"{_JOURNAL}x_create_pending__*", "linked = False", "linked = None", "None is false as False is"),
    *((f"{_JOURNAL}x_create_pending__*", "fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)",
       mutated, "fchmod gives the file exactly 0600 before a byte is written, and nobody sees it before it is linked")
      for mutated in ("fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, )",
                      "fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 385)")),
    (f"{_JOURNAL}x_create_pending__*", "fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)",
     "fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL & os.O_CLOEXEC, 0o600)",
     "drops O_EXCL and O_CLOEXEC: os.open makes every descriptor non-inheritable anyway (PEP 446), and the "
     "temporary name holds 16 random hex digits, so no file of that name exists to refuse"),
    (f"{_JOURNAL}x_create_pending__*", "with contextlib.suppress(OSError):", "with contextlib.suppress(None):",
     "the suppress around removing the entry this call linked, after a later step failed: the call holds the "
     "entry's lock, so no claimer can have removed it and the unlink does not fail (the other suppress of the "
     "function, around removing the temporary file, is killed: that file is missing when open failed)"),
    (f"{_JOURNAL}x__lock_abandoned__*", "same = False", "same = None", "None is false as False is"),
    (f"{_JOURNAL}x_sweep_temporaries__*", "mtime = os.stat(path, follow_symlinks=False).st_mtime",
     "mtime = os.stat(path, follow_symlinks=None).st_mtime", "None is false as False is"),
    *((function, f'raise IOFailureError(f"failed to lock {what}: {{exc.strerror or exc}}") from exc', mutated,
       "unreachable: flock with LOCK_NB on an open regular file fails only with EWOULDBLOCK (held elsewhere), "
       "handled above, or ENOLCK (the kernel out of lock memory), which no test can cause")
      for function, what in ((f"{_JOURNAL}x__lock_abandoned__*", "journal entry {path}"),
                             (f"{_JOURNAL}xǁ_Flockǁ_wait_for__*", "{self._path}"))
      for mutated in ("raise IOFailureError(None) from exc",
                      f'raise IOFailureError(f"failed to lock {what}: {{exc.strerror and exc}}") from exc')),
    (f"{_JOURNAL}x_claim_pending__*", "data = read_open(fd, MAX_DOCUMENT_BYTES, path=path)",
     "data = read_open(fd, MAX_DOCUMENT_BYTES, )",
     "the path only names the file in the OSError, and only its strerror goes into the message"),
    (f"{_JOURNAL}xǁPendingLockǁrelease__*", "self._fd = -1", "self._fd = -2", _NO_FD),
    *((f"{_JOURNAL}xǁ_Flockǁ__init__*", "self._fd = -1", mutated,
       "__exit__, the only reader, runs only after __enter__ has set the descriptor")
      for mutated in ("self._fd = None", "self._fd = +1", "self._fd = -2")),
    *((f"{_JOURNAL}xǁ_Flockǁ__exit__*", "self._fd = -1", mutated,
       "__exit__ runs once per __enter__, which sets the descriptor anew")
      for mutated in ("self._fd = None", "self._fd = +1", "self._fd = -2")),
    (f"{_JOURNAL}xǁ_Flockǁ__enter__*", "fd, _ = open_regular(self._path, flags=os.O_RDWR, create_mode=0o600)",
     "fd, _ = open_regular(self._path, create_mode=0o600)",
     "flock needs no write access: a read-only descriptor takes the same lock"),
    *((f"{_JOURNAL}xǁ_Flockǁ_wait_for__*", original, mutated, _PACE)
      for original, mutated in (("pause = 0.001", "pause = 1.001"),
                                ("pause = min(pause * 2, 0.05)", "pause = min(pause / 2, 0.05)"),
                                ("pause = min(pause * 2, 0.05)", "pause = min(pause * 3, 0.05)"),
                                ("pause = min(pause * 2, 0.05)", "pause = min(pause * 2, 1.05)"),
                                ("if time.monotonic() >= deadline:", "if time.monotonic() > deadline:"))),
    (f"{_JOURNAL}xǁRuntimeLocksǁattach_stripe__*",
     'stripe = zlib.crc32(container_id.encode("utf-8", "surrogateescape")) % _STRIPES',
     'stripe = zlib.crc32(container_id.encode("UTF-8", "surrogateescape")) % _STRIPES', _CODEC),
    (f"{_JOURNAL}xǁRuntimeLocksǁattach_stripe__*",
     'return _Flock(os.path.join(self._dir, f"attach-{stripe:02d}"), shared=False, timeout=self._timeout,',
     'return _Flock(os.path.join(self._dir, f"attach-{stripe:02d}"), shared=None, timeout=self._timeout,',
     "None is false as False is: the lock stays exclusive"),
    *((f"{_CACHE}x_encode_cache_entry__*", line, line.replace(f'"{codec}")', f'"{codec.upper()}")'), _CODEC)
      for line, codec in (('("config", marshal(base64.b64encode(config).decode("ascii"))),', "ascii"),
                          ('fields.append(("capabilityArgs", go_map_marshal(rebuild(capability_args))'
                           '.decode("utf-8")))', "utf-8"),
                          ('fields.append(("result", go_map_marshal(rebuild(result_obj)).decode("utf-8")))', "utf-8"),
                          ('return ("{" + ",".join(f"{marshal(name)}:{value}" for name, value in fields) + "}")'
                           '.encode("utf-8")', "utf-8"))),
    (f"{_CACHE}x_list_cache_entries__*",
     'names = sorted(os.listdir(directory), key=lambda n: n.encode("utf-8", "surrogateescape"))',
     'names = sorted(os.listdir(directory), key=lambda n: n.encode("UTF-8", "surrogateescape"))', _CODEC),
    *((f"{_CACHE}x_read_cached_result__*", "exc.details, code=exc.code) from exc", mutated,
       "the conversion errors (spec/_convert.py) all carry their class's own code, which the class gives again")
      for mutated in ("exc.details, code=None) from exc", "exc.details, ) from exc")),
    *((f"{_CACHE}x_{function}__*", line, line.replace(f'"{key}"', f'"{spelling}"'), _FOLD)
      for function, line, key in (
          ("_config_bytes", 'value = _field(doc, "config")', "config"),
          ("_cni_args", 'value = _field(doc, "cniArgs")', "cniArgs"),
          ("_current_entry", 'if _string(doc, "kind") != CACHE_KIND:', "kind"),
          ("_current_entry", 'raw_result = _object(doc, "result")', "result"),
          ("_current_entry", 'capability_args = _object(doc, "capabilityArgs")', "capabilityArgs"),
          ("_current_entry", 'capability_args = _object(decode(data, keep_negative_zero=True), "capabilityArgs")',
           "capabilityArgs"),
          ("_current_entry", 'network=_string(doc, "networkName"),', "networkName"),
          ("_current_entry", 'container_id=_string(doc, "containerId"),', "containerId"),
          ("_current_entry", 'ifname=_string(doc, "ifName"),', "ifName"),
          ("_current_entry", 'netns=_string(doc, "netns"),', "netns"))
      for spelling in sorted({key.lower(), key.upper()} - {key})),
    (f"{_CACHE}x__current_entry__*", 'if capability_args and b"-0" in data:', 'if capability_args or b"-0" in data:',
     "a fast path: the second decode differs from the first only in keeping -0, so running it also when there is "
     "no -0 or no capabilityArgs gives the same values"),
    (f"{_CACHE}x_sweep_cache_temporaries__*", "st = os.stat(path, follow_symlinks=False)",
     "st = os.stat(path, follow_symlinks=None)", "None is false as False is"),
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
    counted = sum(s != "equivalent" for s in statuses)
    return f"{caught}/{counted} ({100 * caught / counted:.1f}%)" if counted else "0/0"


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch(name, pattern) for pattern in patterns)


@cache
def _functions(path: Path) -> dict[str, str]:
    """Every function of a file mutmut wrote, by name, with its source."""
    source = path.read_text()
    lines = source.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno])
            for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}


def _change(root: Path, name: str) -> tuple[str, str] | None:
    """The mutant's change as (original lines, mutated lines), stripped; None when it cannot be found."""
    module, _, function = name.partition(".x")
    functions = _functions(root / (module.replace(".", "/") + ".py"))
    mutant = functions.get("x" + function)
    original = functions.get("x" + function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
    if mutant is None or original is None:
        return None
    removed: list[str] = []
    added: list[str] = []
    for line in difflib.ndiff(original.splitlines()[1:], mutant.splitlines()[1:]):
        if line.startswith("- "):
            removed.append(line[2:].strip())
        elif line.startswith("+ "):
            added.append(line[2:].strip())
    return "\n".join(removed), "\n".join(added)


def _equivalent(root: Path, name: str) -> bool:
    change = None
    for pattern, original, mutated, _why in EQUIVALENT:
        if fnmatch(name, pattern):
            change = change or _change(root, name)
            if change == (original, mutated):
                return True
    return False


def report(root: Path = Path("mutants")) -> int:
    results: dict[str, str] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        results.update({name: _status(code) for name, code in codes.items() if _matches(name, SCOPE)})
    unchecked = [name for name, status in results.items() if status == "not checked"]
    for name in unchecked:  # outside the last run (`make mutate` covers MUST_KILL only): no verdict to report
        del results[name]
    for name, status in results.items():
        if status == "survived" and _equivalent(root, name):
            results[name] = "equivalent"
    if not results:
        print(f"no mutmut results under {root}/: run `mutmut run` first", file=sys.stderr)
        return 2
    missed = {name: status for name, status in results.items() if status not in ("killed", "timeout", "equivalent")}
    for name, status in sorted(missed.items()):
        print(f"{status:>12}  {name}")
    print()
    by_module: dict[str, list[str]] = {}
    for name, status in results.items():
        by_module.setdefault(name.split(".x", 1)[0], []).append(status)
    for module, statuses in sorted(by_module.items()):
        print(f"{module:<32} {_rate(statuses):>22}   {dict(Counter(statuses))}")
    print(f"{'all checked':<32} {_rate(list(results.values())):>22}"
          + (f"   ({len(unchecked)} more in SCOPE not checked by this run)" if unchecked else ""))
    failed = False
    for group, patterns in MUST_KILL.items():
        statuses = [status for name, status in results.items() if _matches(name, patterns)]
        gaps = sorted(name for name in missed if _matches(name, patterns))
        print(f"{group:<32} {_rate(statuses):>22}" + (f"   NOT KILLED: {len(gaps)}" if gaps else ""))
        failed |= bool(gaps) or not statuses
    return 1 if failed else 0


def run(patterns: tuple[str, ...]) -> int:
    """mutmut over ``patterns`` (its progress goes to mutants.log), one worker per CPU; then the report."""
    mutmut = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "HYPOTHESIS_PROFILE": "mutate"}
    print("mutmut run: progress in mutants.log", flush=True)
    started = time.monotonic()
    with open("mutants.log", "wb") as log:
        done = subprocess.run([str(mutmut), "run", "--max-children", str(os.cpu_count() or 2), *patterns],
                              env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    print(f"mutmut run: {time.monotonic() - started:.0f} s", flush=True)
    if done.returncode != 0:
        print(Path("mutants.log").read_bytes()[-3000:].decode(errors="replace"), file=sys.stderr)
        return done.returncode
    return report()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["--report"]:
            sys.exit(report())
        case ["--all"]:
            sys.exit(run(SCOPE))
        case []:
            sys.exit(run(tuple(pattern for group in MUST_KILL.values() for pattern in group)))
        case _:
            sys.exit(__doc__)
