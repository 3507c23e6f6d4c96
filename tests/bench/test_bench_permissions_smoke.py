"""The permissions benchmark runs end to end at a small size and reports every shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_permissions


@pytest.mark.slow
def test_bench_permissions_runs_on_sqlite(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "RESULTS.md"
    code = bench_permissions.main(["--rows", "2000", "--users", "200", "--backend", "sqlite",
                                   "--runs", "5", "--results", str(results)])
    assert code == 0
    printed = capsys.readouterr().out
    text = results.read_text(encoding="utf-8")
    assert "## Permissions (issue 3)" in text
    assert "2,000 customer rows" in text
    rows = [line for line in text.splitlines() if line.startswith("| sqlite |")]
    shapes = [line.split("|")[2].strip() for line in rows]
    for expected in ("admin: every row", "rep: own + pool + shared",
                     "team supervisor: department + pool + shared",
                     "company manager: subtree of 81 teams + pool + shared + A-grade rule",
                     "Casbin enforce, allowed (rep, org, customer, read)",
                     "index build from the rule lists"):
        assert expected in shapes, expected
    for line in rows[:9]:   # list rows: three ratios, every one a number
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert len(cells) == 10 and all(float(c) > 0 for c in cells[7:10]), line
    assert "| backend | scope shape |" in printed
