"""The benchmark suite's cheapest figures run in process with tiny sizes and render a well-formed table.

No speed is asserted: the figures are measurements, not tests.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest

from benchmarks.__main__ import FIGURES, README_BEGIN, README_END, main, provenance, run_suite, write_readme
from benchmarks._floor import CEILINGS, FLOORS, SYSCALLS_PER_CYCLE
from benchmarks._harness import Row, machine_summary, render_markdown
from benchmarks.alloc import occupancy_rows

HEADER = "| figure | ours | anchor | ratio | target | verdict |"
ROW = re.compile(r"^\| (?P<figure>[^|]+) \| (?P<ours>[^|]+) \| (?P<anchor>[^|]+) \| (?P<ratio>[0-9.]+x|infx) "
                 r"\| (?P<target>-|[<>]= [0-9.]+x) \| (?P<verdict>pass|MISS|info) \|$")


def _check_table(text: str, rows: list[Row]) -> None:
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    assert any(line.startswith("Machine: ") for line in lines)
    start = lines.index(HEADER)
    assert lines[start + 1] == "|---|---|---|---|---|---|"
    body = lines[start + 2:start + 2 + len(rows)]
    assert len(body) == len(rows)
    for line, row in zip(body, rows, strict=True):
        match = ROW.match(line)
        assert match is not None, line
        assert match["figure"].startswith(row.figure)
        assert match["verdict"] == row.verdict
        assert match["target"] == row.target_text


def test_quick_allocation_and_range_figures_render_a_table() -> None:
    rows = run_suite(True, ["throughput", "range"])
    figures = [row.figure for row in rows]
    assert any("1 process" in f for f in figures)
    assert any("2 processes" in f for f in figures)
    # The store's target is set against the crash-safe floor, at every process count.
    targeted = [row for row in rows if row.figure.startswith("file store allocate+release") and row.target]
    assert [row.anchor_name for row in targeted] == ["crash-safe floor, 1 process", "crash-safe floor, 2 processes"]
    assert any("/8" in f for f in figures) and any("/64" in f for f in figures)
    for row in rows:
        if "skipped" in row.note:
            continue
        assert row.ours > 0 and row.anchor > 0 and math.isfinite(row.ratio), row
    _check_table(render_markdown(rows, title="smoke", machine=machine_summary()), rows)


def test_quick_occupancy_sweep_compares_every_point_to_the_empty_store(tmp_path: Path) -> None:
    rows = occupancy_rows(True, chart_path=str(tmp_path / "chart.png"))
    targeted = [row for row in rows if row.target is not None]
    assert {row.figure.split(":")[0] for row in targeted} == {f"occupancy {p}% of 10.129.0.0/22" for p in (0, 50, 90)}
    # Every point has its own anchor: the empty store measured in rounds alternating with that point.
    assert all(row.anchor_name == "ours, empty, alternating with this level" and row.target == 2.0
               for row in targeted)
    assert all(row.ours > 0 and row.anchor > 0 for row in targeted)
    assert len({row.anchor for row in targeted}) > 2
    _check_table(render_markdown(rows, title="smoke", machine="m"), rows)


def test_command_line_prints_the_table_and_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--only", "range", "--no-save"]) == 0
    out = capsys.readouterr().out
    assert HEADER in out
    assert "Command: `" in out and "-m benchmarks --quick --only range --no-save`" in out


def test_every_figure_is_registered() -> None:
    assert list(FIGURES) == ["throughput", "occupancy", "range", "exec", "bridge-exec", "links", "chain",
                             "etcd", "podman"]


@pytest.mark.parametrize("floor", sorted({**FLOORS, **CEILINGS}))
def test_each_floor_leaves_the_layout_as_it_found_it(tmp_path: Path, floor: str) -> None:
    # A floor that skipped its work (left reservations behind, wrote no cursor) would not be a floor; nor would
    # the ceiling be the store's calls.
    net = tmp_path / "net"
    {**FLOORS, **CEILINGS}[floor](str(net), 300, first_ip="10.128.0.250", owner="o")
    assert sorted(p.name for p in net.iterdir()) == ["last_reserved_ip.0", "lock"]
    assert (net / "last_reserved_ip.0").read_bytes().startswith(b"10.128.2.37")  # the 300th address
    assert set(SYSCALLS_PER_CYCLE) == set(FLOORS) | set(CEILINGS)


def test_the_readme_block_is_replaced_and_headed_by_the_commit(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Benchmarks\n\n{README_BEGIN}\nold table\n{README_END}\n\n## License\n")
    header = provenance()
    assert re.fullmatch(r"Commit: `([0-9a-f]{12}|unknown \(not a git checkout\))`( plus uncommitted changes)?\. "
                        r"Date: \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", header), header
    write_readme(f"{header}\n\nnew table\n", str(readme))
    text = readme.read_text()
    assert "old table" not in text
    assert f"{README_BEGIN}\n{header}\n\nnew table\n{README_END}\n\n## License" in text
    (tmp_path / "other.md").write_text("no markers\n")
    with pytest.raises(RuntimeError, match="no"):
        write_readme("t\n", str(tmp_path / "other.md"))


def test_podman_lifecycle_row_says_why_it_was_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import podman

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    (row,) = podman.lifecycle_rows(True)
    assert (row.note, row.verdict) == ("skipped: needs root", "info")


def test_verdict_follows_the_direction_of_the_ratio() -> None:
    fast = Row(figure="f", ours=8.0, anchor=10.0, unit="s", anchor_name="a", target=1.0, higher_is_better=False)
    rate = Row(figure="r", ours=8.0, anchor=10.0, unit="ops/s", anchor_name="a", target=1.0, higher_is_better=True)
    assert (fast.verdict, rate.verdict) == ("pass", "MISS")
