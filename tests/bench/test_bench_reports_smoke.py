"""The reports benchmark runs end to end at a small size and prints the table RESULTS.md
takes (numbers are not checked: timings are never asserted in tests)."""

from __future__ import annotations

import pytest

from bench import bench_reports


@pytest.mark.slow
def test_bench_reports_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_reports.main(["--customers", "600", "--follow-ups", "3000", "--runs", "3",
                               "--backends", "sqlite", "--no-write"])
    assert code == 0
    out = capsys.readouterr().out
    # each backend's table is printed when it finishes, and all of them at the end
    cases = list(dict.fromkeys(line.split("|")[3].strip() for line in out.splitlines()
                               if line.startswith("| sqlite | 600 customers")
                               and line.count("|") == 7))
    assert len(cases) == 11 and cases[0].startswith("leaderboard follow_ups")
    assert "rollup rebuild" in out
