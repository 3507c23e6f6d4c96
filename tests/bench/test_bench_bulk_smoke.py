"""The bulk-create benchmark runs end to end at a small size (timings are never asserted):
both actors' runs, their re-inserted baselines (the bench checks it re-inserts every stored
row) and the HTTP loads are in the table it prints."""

from __future__ import annotations

from typing import Any

import pytest

from bench import bench_bulk


@pytest.mark.slow
def test_bench_bulk_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_bulk.main(["--rows", "300", "--batch", "100", "--rounds", "1",
                            "--http-seconds", "0.5", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| system |" in out and "| rep |" in out
    assert "- new names:" in out and "- repeated names:" in out


@pytest.mark.slow
def test_bulk_counts_tool_sets_up_and_counts(tmp_path: Any) -> None:
    """bench/bulk_counts.py (the instruction-count tool for bulk creates): its database is
    set up once and each count works on a copy, so the setup's rows stay as they were."""
    from sqlalchemy import create_engine, func, select, table

    from bench import bulk_counts

    bulk_counts.main(["setup", str(tmp_path)])
    customers = table("customer")

    def stored() -> int:
        engine = create_engine(f"sqlite:///{tmp_path / bulk_counts.DATABASE}")
        with engine.connect() as conn:
            found = int(conn.execute(select(func.count()).select_from(customers)).scalar_one())
        engine.dispose()
        return found

    before = stored()
    assert before >= 20_000
    for actor in ("rep", "system"):
        bulk_counts.main(["count", str(tmp_path), "--actor", actor, "--batches", "1"])
    assert stored() == before
