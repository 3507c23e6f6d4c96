"""The records and HTTP benchmarks run end to end at a small size (numbers are not checked:
timings are never asserted in tests) and print the tables RESULTS.md takes."""

from __future__ import annotations

import pytest

from bench import bench_http, bench_records


@pytest.mark.slow
def test_bench_records_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_records.main(["--bulk-rows", "500", "--sizes", "800", "--runs", "3",
                               "--backends", "sqlite", "--no-write"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| sqlite | 500 |" in out  # the bulk row
    cases = [line.split("|")[3].strip() for line in out.splitlines()
             if line.startswith("| sqlite | 800 |")]
    assert cases == [case for case, _ in [
        ("first page, newest first", 0), ("21st page (keyset token)", 0),
        ("filter industry = saas", 0), ("sort by grade (indexed)", 0),
        ("search 'chen' (text fields)", 0)]]


@pytest.mark.slow
def test_bench_http_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_http.main(["--rows", "300", "--requests", "8", "--concurrency", "2",
                            "--no-write"])
    assert code == 0
    out = capsys.readouterr().out
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| sqlite |")]
    assert sorted((r[3].strip(), r[4].strip()) for r in rows) == sorted(
        (target, clients) for target in ("bare", "api", "html") for clients in ("1", "2"))


@pytest.mark.slow
def test_run_all_quick_runs_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import run_all

    assert set(run_all.QUICK) == set(run_all.benchmarks())  # each has quick arguments
    assert run_all.main(["--quick", "--only", "bench_records"]) == 0
    assert "== bench_records" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_pools_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import bench_pools

    code = bench_pools.main(["--claims", "20", "--clients", "2", "--backends", "sqlite",
                             "--no-write"])
    assert code == 0
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| sqlite |")]
    assert [(r[2].strip()) for r in rows] == ["2"]
