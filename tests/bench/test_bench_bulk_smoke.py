"""The bulk-create benchmark runs end to end at a small size (timings are never asserted):
both actors' runs, their re-inserted baselines (the bench checks it re-inserts every stored
row) and the HTTP loads are in the table it prints."""

from __future__ import annotations

import pytest

from bench import bench_bulk


@pytest.mark.slow
def test_bench_bulk_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_bulk.main(["--rows", "300", "--batch", "100", "--rounds", "1",
                            "--http-seconds", "0.5", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| system |" in out and "| rep |" in out
    assert "- new names:" in out and "- repeated names:" in out
