"""Run every benchmark of bench/ in turn; each rewrites its section of bench/RESULTS.md.

``make bench`` calls this. Pass ``--quick`` for small sizes (a smoke run, minutes
instead of the full 1M-row runs).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Sequence
from pathlib import Path

#: Arguments for a quick run, per benchmark module.
QUICK = {
    "bench_records": ["--bulk-rows", "5000", "--sizes", "5000,20000", "--runs", "30"],
    "bench_permissions": ["--rows", "20000", "--users", "200", "--runs", "20"],
    "bench_http": ["--rows", "2000", "--seconds", "0.5"],
    "bench_signin": ["--runs", "5", "--backends", "sqlite"],
    "bench_write_scope": ["--rows", "2000", "--runs", "3"],
    "bench_reports": ["--customers", "20000", "--follow-ups", "100000", "--runs", "30"],
    "bench_pools": ["--claims", "100", "--clients", "4"],
    "bench_rules": ["--rows", "20000", "--new", "2000"],
    "bench_import": ["--rows", "3000"],
    "bench_bulk": ["--rows", "2000", "--rounds", "1", "--http-seconds", "1"],
    "bench_notifications": ["--rows", "2000", "--repeat", "1"],
    "bench_conversion": ["--leads", "50"],
    "bench_merge": ["--children", "100", "--repeat", "1"],
    "bench_dedup": ["--rows", "2000", "--check", "500", "--single", "50"],
    "bench_kanban": ["--rows", "20000", "--runs", "5", "--slow-runs", "1"],
    "bench_servers": ["--rows", "2000", "--seconds", "1", "--workers", "1"],
}


def benchmarks() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if m.name.startswith("bench_"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, no RESULTS.md update")
    parser.add_argument("--only", action="append", help="run only these benchmark modules")
    args = parser.parse_args(argv)
    status = 0
    for name in args.only or benchmarks():
        module = importlib.import_module(f"bench.{name}")
        extra = [*QUICK.get(name, []), "--no-write"] if args.quick else []
        print(f"== {name} {' '.join(extra)}", flush=True)
        status = max(status, int(module.main(extra)))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
