"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME ...]``.

Every figure is measured side by side with its anchor in this one run and
reported as a ratio; the table is printed and saved to
``benchmarks/results/latest.md`` (``quick.md`` with ``--quick``, where sizes are
tiny: a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable

from benchmarks._harness import Row, machine_summary, render_markdown

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


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


#: The figures, in the order they run and appear in the table.
FIGURES: dict[str, Callable[[bool], list[Row]]] = {
    "throughput": _throughput,
    "occupancy": _occupancy,
    "range": _range,
    "exec": _exec,
    "links": _links,
    "chain": _chain,
    "etcd": _etcd,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="run only these figures")
    parser.add_argument("--no-save", action="store_true", help="print the table without saving it")
    args = parser.parse_args(argv)
    command = shlex.join([os.path.relpath(sys.executable), "-m", "benchmarks", *(sys.argv[1:] if argv is None
                                                                                 else argv)])
    rows = run_suite(args.quick, args.only, log=lambda line: print(line, file=sys.stderr, flush=True))
    title = "cnicore benchmarks" + (" (quick: tiny sizes, not a measurement)" if args.quick else "")
    table = render_markdown(rows, title=title, machine=machine_summary())
    table += f"\nCommand: `{command}`\n"
    print(table)
    if not args.no_save:
        os.makedirs(RESULTS_DIR, exist_ok=True)
        path = os.path.join(RESULTS_DIR, "quick.md" if args.quick else "latest.md")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(table)
        print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
