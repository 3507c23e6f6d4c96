"""The merge benchmark runs end to end at a small size (timings are never asserted)."""

from __future__ import annotations

import pytest

from bench import bench_merge


@pytest.mark.slow
def test_bench_merge_runs_on_sqlite() -> None:
    best = bench_merge.run(children=20, repeat=1)
    assert set(best) == {"by hand", "merge", "undo"}
