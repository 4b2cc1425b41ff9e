"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME ...] [--readme]``.

Every figure is measured side by side with its anchor in this one run and
reported as a ratio; the table, headed by the commit it was measured on and
the date, is printed and saved to ``benchmarks/results/latest.md``
(``quick.md`` with ``--quick``, where sizes are tiny: a smoke test, not a
measurement). ``--readme`` (what ``make bench`` passes) also writes it into
the README's Benchmarks section, between the ``bench:begin`` and
``bench:end`` markers.

Adding a figure: write a module with ``run(quick: bool) -> list[Row]``
(:class:`benchmarks._harness.Row`: ours, its anchor measured in the same run,
the unit, a target or None) and register it in :data:`FIGURES`. A figure
that executes plugins takes the run's non-editable install from
:func:`benchmarks._install.installed` (its ``plugins`` directory is a
``CNI_PATH``; :func:`benchmarks._install.json_floor` is the Python anchor),
and one that needs root or a tool returns a single row whose note starts with
``skipped:`` and says why. A container runtime's lifecycle (podman with our
plugin directory against the reference's, paired) belongs here as such a
figure.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks._harness import Row, machine_summary, render_markdown

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
REPO = os.path.dirname(HERE)
README = os.path.join(REPO, "README.md")
README_BEGIN = "<!-- bench:begin (written by `make bench`; do not edit by hand) -->"
README_END = "<!-- bench:end -->"


def _throughput(quick: bool) -> list[Row]:
    from benchmarks.alloc import throughput_rows

    return throughput_rows(quick)


def _occupancy(quick: bool) -> list[Row]:
    from benchmarks.alloc import occupancy_rows

    chart = os.path.join(RESULTS_DIR, "occupancy-quick.png" if quick else "occupancy.png")
    return occupancy_rows(quick, chart_path=chart)


def _range(quick: bool) -> list[Row]:
    from benchmarks.startup import range_rows

    return range_rows(quick)


def _exec(quick: bool) -> list[Row]:
    from benchmarks.startup import exec_rows

    return exec_rows(quick)


def _bridge_exec(quick: bool) -> list[Row]:
    from benchmarks.bridge_exec import run

    return run(quick)


def _links(quick: bool) -> list[Row]:
    from benchmarks.links import run

    return run(quick)


def _chain(quick: bool) -> list[Row]:
    from benchmarks.chain import run

    return run(quick)


def _etcd(quick: bool) -> list[Row]:
    from benchmarks import etcd_alloc

    if not os.access(etcd_alloc.ETCD, os.X_OK):
        return [Row(figure="etcd store", ours=0.0, anchor=0.0, unit="allocs/s", anchor_name="absent", target=None,
                    higher_is_better=True, note=f"skipped: {etcd_alloc.ETCD} not installed")]
    return etcd_alloc.run(quick)


def _podman(quick: bool) -> list[Row]:
    from benchmarks.podman import lifecycle_rows

    return lifecycle_rows(quick)


#: The figures, in the order they run and appear in the table.
FIGURES: dict[str, Callable[[bool], list[Row]]] = {
    "throughput": _throughput,
    "occupancy": _occupancy,
    "range": _range,
    "exec": _exec,
    "bridge-exec": _bridge_exec,
    "links": _links,
    "chain": _chain,
    "etcd": _etcd,
    "podman": _podman,
}


def run_suite(quick: bool, only: list[str] | None = None, *, log: Callable[[str], None] | None = None) -> list[Row]:
    """Run the chosen figures (all by default) and return their rows."""
    rows: list[Row] = []
    for name, figure in FIGURES.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        got = figure(quick)
        if log is not None:
            log(f"{name}: {len(got)} rows in {time.perf_counter() - start:.1f} s")
        rows.extend(got)
    return rows


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=REPO)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def provenance() -> str:
    """The line naming what was measured: the commit (and whether the tree differed from it) and the date."""
    commit = _git("rev-parse", "--short=12", "HEAD") or "unknown (not a git checkout)"
    dirty = _git("status", "--porcelain", "--", ".", ":!benchmarks/results", ":!README.md")
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    state = " plus uncommitted changes" if dirty else ""
    return f"Commit: `{commit}`{state}. Date: {date}."


def write_readme(block: str, path: str = README) -> None:
    """Replace what lies between the README's bench markers with ``block``."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    pattern = re.compile(re.escape(README_BEGIN) + r"\n.*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise RuntimeError(f"{path} has no {README_BEGIN!r} ... {README_END!r} block")
    text = pattern.sub(lambda _: f"{README_BEGIN}\n{block}{README_END}", text, count=1)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="run only these figures")
    parser.add_argument("--no-save", action="store_true", help="print the table without saving it")
    parser.add_argument("--readme", action="store_true", help="also write the table into README.md")
    args = parser.parse_args(argv)
    if args.readme and (args.quick or args.only or args.no_save):
        parser.error("--readme takes a full run: not with --quick, --only or --no-save")
    command = shlex.join([os.path.relpath(sys.executable), "-m", "benchmarks", *(sys.argv[1:] if argv is None
                                                                                 else argv)])
    header = provenance()  # before the run: the tree it measures
    rows = run_suite(args.quick, args.only, log=lambda line: print(line, file=sys.stderr, flush=True))
    title = "cnicore benchmarks" + (" (quick: tiny sizes, not a measurement)" if args.quick else "")
    table = render_markdown(rows, title=title, machine=machine_summary(), provenance=header)
    table += f"\nCommand: `{command}`\n"
    print(table)
    if not args.no_save:
        os.makedirs(RESULTS_DIR, exist_ok=True)
        path = os.path.join(RESULTS_DIR, "quick.md" if args.quick else "latest.md")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(table)
        print(f"saved {path}", file=sys.stderr)
    if args.readme:
        body = render_markdown(rows, title="", machine=machine_summary(), provenance=header, heading=False)
        write_readme(body + f"\nCommand: `{command}` (`make bench`).\n")
        print(f"wrote the table into {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
