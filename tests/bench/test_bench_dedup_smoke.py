"""The dedup benchmark runs end to end at a small size (timings are never asserted) and
finds the planted matches: every other checked row warns."""

from __future__ import annotations

import pytest

from bench import bench_dedup


@pytest.mark.slow
def test_bench_dedup_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_dedup.main(["--rows", "200", "--check", "100", "--single", "10",
                             "--batch", "50", "--backends", "sqlite", "--no-write"]) == 0
    assert "| 50 of 100 |" in capsys.readouterr().out
