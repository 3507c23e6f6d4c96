"""What in-app notifications cost a rule run: the same drop with and without the hook.

Run ``python -m bench.bench_notifications [--rows N] [--repeat R]`` (SQLite). Each
round builds two fresh databases of the rules test world (``item`` records held by
one rep, all untouched past a 7-day drop rule) and times ``run_rules`` on each:
once with every write hook the runtime installs, once with all of them except
the notifications hooks (``engine.workflow.notifications.install``). A drop of N
records held by one rep writes one ``taken`` digest per batch (inside its unit; a
rep is told "N records of yours ...", not once per record). Results go to the
``Notifications (issue 9)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from bench.results import write_section
from engine.actor import Actor
from engine.metadata.parse import registry_from_document
from engine.records import RecordService
from engine.runtime import install_hooks
from engine.storage.database import make_engine
from engine.storage.tables import build_schema
from engine.workflow import notifications
from engine.workflow.rule_runner import run_rules
from tests.integration.workflow import _rules_world as world
from tests.integration.workflow.test_wf_rules import UNTOUCHED


def _records(path: Path, *, rows: int, notify: bool) -> RecordService:
    engine = make_engine(f"sqlite:///{path}")
    pool = copy.deepcopy(world.BASE_POOL)
    pool["rules"] = [{k: v for k, v in UNTOUCHED.items() if k != "warn_before_hours"}]
    registry = registry_from_document({
        "entities": {"item": world.ITEM, "visit": world.VISIT},
        "pipelines": {"item_flow": world.PIPELINE}, "pools": {"item_pool": pool},
        "roles": {"chief": world.ROLE}})
    schema = build_schema(registry)
    schema.metadata.create_all(engine)
    records = RecordService(engine=engine, schema=schema, clock=world.Clock())
    installer = notifications.install
    if not notify:  # every other hook stays: the ledger, clocks, capacity
        notifications.install = lambda records: None
    try:
        install_hooks(records)
    finally:
        notifications.install = installer
    users = world._org(engine)
    records.bulk_create(Actor.system("bench"), "item", [
        {"name": f"x{i}", "grade": "C", "owner_id": users["a1"]} for i in range(rows)])
    return records


def _time_run(records: RecordService) -> tuple[float, int]:
    start = time.perf_counter()
    report = run_rules(records, now=world.T0 + timedelta(days=8))
    return time.perf_counter() - start, report.moved


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    base: list[float] = []
    told: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for notify, out in ((False, base), (True, told)):
                seconds, moved = _time_run(_records(Path(tmp) / f"{notify}{i}.db",
                                                    rows=args.rows, notify=notify))
                assert moved == args.rows, moved
                out.append(seconds)
    best_base, best_told = min(base), min(told)
    body = (f"`python -m bench.bench_notifications --rows {args.rows} --repeat {args.repeat}` "
            f"(SQLite): a rule run dropping {args.rows:,} held records, best of "
            f"{args.repeat}.\n\n"
            "| run | seconds | ratio |\n|---|---|---|\n"
            f"| all hooks except notifications (baseline) | {best_base:.2f} | 1.00 |\n"
            f"| all hooks, {args.rows:,} records told (one `taken` digest per batch) | "
            f"{best_told:.2f} | "
            f"{best_told / best_base:.2f} |\n")
    print(body)
    if not args.no_write:
        write_section("Notifications (issue 9)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
