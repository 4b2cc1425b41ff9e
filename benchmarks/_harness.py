"""Side-by-side measurement: every figure is a ratio of two things timed in the same run.

Shared machines are noisy, so an absolute time means little; a ratio of two
measurements taken interleaved (A, B, A, B, ...) in one process run mostly
cancels the noise. Each figure reports the median of several rounds.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Row", "fresh_filesystem", "host_namespace_refusal", "host_namespaces", "interleave", "machine_summary",
           "median_time", "render_markdown", "run_in_namespace"]

# The checkout the benchmarks run from (children started in a namespace import ``benchmarks`` from it).
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Row:
    """One line of the results table.

    ``higher_is_better`` says how to read the ratio: throughputs want a high
    ratio (ours / anchor), latencies and costs a low one.
    """

    figure: str
    ours: float
    anchor: float
    unit: str
    anchor_name: str
    target: float | None
    higher_is_better: bool
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        if self.anchor == 0:
            return float("inf") if self.ours else 1.0
        return self.ours / self.anchor

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return (">= " if self.higher_is_better else "<= ") + f"{self.target:g}x"

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        ok = self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target
        return "pass" if ok else "MISS"


def median_time(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Median wall time of ``number`` calls of ``fn``, over ``repeat`` rounds, in seconds per call."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def interleave(fns: dict[str, Callable[[], float]], *, rounds: int = 5) -> dict[str, float]:
    """Run each measurement ``rounds`` times, interleaved, and return each one's median.

    Each callable runs one measurement and returns its figure (a time or a rate).
    The order rotates each round, so that no measurement always follows the same
    one: what one leaves behind (a filesystem that just freed a thousand inodes
    skips them for a while when it allocates, a warm or cold cache) falls on each
    in turn rather than on one alone.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for round_number in range(rounds):
        shift = round_number % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            samples[name].append(fns[name]())
    return {name: statistics.median(values) for name, values in samples.items()}


@contextmanager
def fresh_filesystem(size_mib: int = 512) -> Iterator[tuple[str | None, str]]:
    """A fresh ext4 file system (mkfs defaults: with its journal) on a sparse image, mounted for the block.

    Yields ``(directory, label)``: the mount point and how a row names where it ran;
    or ``(None, label)`` naming why not (not root, no ``mkfs.ext4``, no loop device),
    and the rows then run in the system's temporary directory. Unmounted and removed
    afterwards, whatever happened.

    Why: creating and deleting files costs what the file system's recent history makes
    it cost. On a shared disk (and on ext4 without a journal, which skips inodes freed in
    the last seconds when it allocates) anyone's deletions slow everyone's creations for a
    while, and a ratio of two such measurements swings tenfold between runs. A file
    system of its own, as a container host's would be, leaves the figures to the code.
    """
    if os.geteuid() != 0:
        yield None, "in the temporary directory (not root: no file system of its own)"
        return
    tools = [shutil.which(name) for name in ("mkfs.ext4", "mount", "umount")]
    if None in tools:
        yield None, "in the temporary directory (mkfs.ext4 or mount missing)"
        return
    work = tempfile.mkdtemp(prefix="cnicore-bench-fs-")
    image, mount_point = os.path.join(work, "fs.img"), os.path.join(work, "mnt")
    mounted = False
    try:
        with open(image, "wb") as handle:
            handle.truncate(size_mib * 1024 * 1024)
        os.mkdir(mount_point)
        made = subprocess.run(["mkfs.ext4", "-q", "-F", image], capture_output=True, text=True, check=False)
        if made.returncode == 0:
            made = subprocess.run(["mount", "-o", "loop", image, mount_point], capture_output=True, text=True,
                                  check=False)
        if made.returncode != 0:
            why = (made.stderr or made.stdout).strip().splitlines()[-1:] or ["failed"]
            yield None, f"in the temporary directory (no file system of its own: {why[0]})"
            return
        mounted = True
        yield mount_point, f"on a fresh ext4 ({size_mib} MiB, with journal) made for the run"
    finally:
        if mounted:
            done = subprocess.run(["umount", mount_point], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", mount_point], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


def host_namespace_refusal() -> str | None:
    """Why the figures that run in a namespace playing the host cannot run here; None when they can."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "iproute2 not installed"
    return None


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


@contextmanager
def host_namespaces(host: str, others: Sequence[str], *, work_prefix: str) -> Iterator[str]:
    """Network namespaces ``host`` (its ``lo`` up: it plays the host) and ``others``, and a work directory.

    Yields the work directory (named ``work_prefix...``); afterwards the namespaces are deleted and the
    directory removed, whatever happened. The names must be unique to the run (``cnt-`` and a random tag):
    the figures measure in namespaces of their own and never touch the real host's links.
    """
    work = tempfile.mkdtemp(prefix=work_prefix)
    made: list[str] = []
    try:
        for ns in [host, *others]:
            _ip("netns", "add", ns)
            made.append(ns)
        _ip("-n", host, "link", "set", "lo", "up")
        yield work
    finally:
        for ns in reversed(made):
            _ip("netns", "del", ns, check=False)
        shutil.rmtree(work, ignore_errors=True)


def run_in_namespace(host: str, argv: Sequence[str], what: str) -> Any:
    """Run ``argv`` inside namespace ``host`` (``ip netns exec``) from the checkout; return its stdout as JSON.

    The child finds the ``benchmarks`` package (``PYTHONPATH`` and the working directory are the checkout).
    Raises :class:`RuntimeError` naming ``what`` with the end of the child's stderr when it fails.
    """
    env = dict(os.environ, PYTHONPATH=_REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(["ip", "netns", "exec", host, *argv], capture_output=True, check=False, cwd=_REPO, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(proc.stdout)


def machine_summary() -> str:
    """One line naming the machine the figures came from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.1f} µs"
        if value < 1:
            return f"{value * 1e3:.2f} ms"
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    if unit == "syscalls":
        return f"{value:.1f} syscalls"
    return f"{value:,.0f} {unit}"


def render_markdown(rows: list[Row], *, title: str, machine: str, provenance: str = "",
                    heading: bool = True) -> str:
    """The results table as Markdown: figure, ours, anchor, ratio, target, verdict.

    ``provenance`` (the commit and date measured) goes above the machine line; without ``heading`` the
    title line is left out (for a table embedded under a heading of its own).
    """
    lines = [f"# {title}", ""] if heading else []
    if provenance:
        lines += [provenance, ""]
    lines += [
        f"Machine: {machine}",
        "",
        "| figure | ours | anchor | ratio | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        anchor = f"{_fmt(row.anchor, row.unit)} ({row.anchor_name})"
        note = f" — {row.note}" if row.note else ""
        lines.append(
            f"| {row.figure}{note} | {_fmt(row.ours, row.unit)} | {anchor} | {row.ratio:.2f}x "
            f"| {row.target_text} | {row.verdict} |"
        )
    return "\n".join(lines) + "\n"
