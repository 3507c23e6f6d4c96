"""The conversion benchmark runs end to end at a small size (timings are never asserted)
and prints the table RESULTS.md takes; it asserts every lead became a customer."""

from __future__ import annotations

import pytest

from bench import bench_conversion


@pytest.mark.slow
def test_bench_conversion_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_conversion.main(["--leads", "5", "--backends", "sqlite", "--no-write"]) == 0
    assert "| sqlite | 5 |" in capsys.readouterr().out
