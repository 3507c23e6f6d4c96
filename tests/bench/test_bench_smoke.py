"""The records and HTTP benchmarks run end to end at a small size (numbers are not checked:
timings are never asserted in tests) and print the tables RESULTS.md takes."""

from __future__ import annotations

import os
from typing import Any

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
@pytest.mark.parametrize("client", ["asyncio", "wrk"])
def test_bench_http_runs_on_sqlite(capsys: pytest.CaptureFixture[str], client: str) -> None:
    if client == "wrk" and bench_http.WRK is None:
        pytest.skip("wrk is not installed")
    code = bench_http.main(["--rows", "300", "--seconds", "0.3", "--clients", "2",
                            "--client", client, "--no-write"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"load generator: {client}" in out
    rows = [[c.strip() for c in line.split("|")] for line in out.splitlines()
            if line.startswith("| sqlite |")]
    assert out.count("rows/s (") == 2  # bulk create, with 1 and 2 workers
    assert sorted((r[3], r[4], r[5]) for r in rows) == sorted(
        (workers, op, target) for workers in ("1", "2")
        for op, target in (("list", "api"), ("list", "bare"), ("get", "api"), ("get", "bare"),
                           ("patch", "api"), ("patch", "bare"), ("html", "page")))
    # One worker counts SQL statements per request: the API list is its page query
    # plus, now and then, a stamp read.
    api_list = next(r for r in rows if r[3] == "1" and r[4] == "list" and r[5] == "api")
    assert 1 <= float(api_list[9]) < 2
    # wrk's own CPU is counted per request, and with it the cores the run kept busy
    # (never more than the machine has); the asyncio client runs in this process.
    for row in rows:
        if client == "wrk":
            assert float(row[18]) > 0
            assert 0 < float(row[19]) <= (os.cpu_count() or 1) * 1.1
        else:
            assert row[18] == row[19] == ""


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


@pytest.mark.slow
def test_bench_rules_runs_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import bench_rules

    code = bench_rules.main(["--rows", "2000", "--new", "300", "--batch", "70",
                             "--backends", "sqlite", "--no-write"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| sqlite | 2,000 | 200 |" in out        # 10% moved, equal to the hand UPDATE
    assert "| sqlite | 300 |" in out


@pytest.mark.slow
def test_api_requests_tool_serves_and_dumps(tmp_path: Any, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    """bench/api_requests.py (the instruction-count tool for the API's hot reads): set up,
    timed and dumped through uvicorn's protocol; the dumped list is a 200 with a next link."""
    from bench import api_requests

    api_requests.main(["setup", str(tmp_path / "db"), "--rows", "300"])
    for op in ("list", "get"):
        api_requests.main(["time", str(tmp_path / "db"), "--op", op, "--requests", "3",
                           "--rounds", "1"])
    api_requests.main(["count", str(tmp_path / "db"), "--requests", "2"])
    api_requests.main(["dump", str(tmp_path / "db"), str(tmp_path / "out")])
    assert "list ms/request" in capsys.readouterr().out
    first = (tmp_path / "out" / "00").read_bytes()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nlink: <http://" in first
    assert b"\r\nx-frame-options: DENY\r\n" in first
