"""The import benchmark runs end to end at a small size (timings are never asserted) and
prints the table RESULTS.md takes; every generated row goes in (it asserts the counts)."""

from __future__ import annotations

import pytest

from bench import bench_import


@pytest.mark.slow
def test_bench_import_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_import.main(["--rows", "300", "--batch", "100", "--backends", "sqlite",
                              "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| sqlite | 300 |" in out
