"""What a merge costs next to doing it by hand, and what its undo costs.

Run ``python -m bench.bench_merge [--children N] [--repeat R]`` (SQLite, the CRM
app's metadata). Each round makes two customers, the second with N contacts and
N/10 comments in its feed, then times:

* by hand (the baseline): each contact's ``customer`` updated through the records
  service, then the twin deleted;
* ``records.merge`` of the twin into the survivor (contacts, feed, shares... moved
  in one unit of work, snapshot written);
* ``records.undo_merge`` of it.

Results go to the ``Merge (issue 10)`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.results import write_section
from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.records import RecordService
from engine.runtime import install_hooks
from engine.storage.database import make_engine
from engine.storage.tables import build_schema

CRM = Path(__file__).resolve().parent.parent / "apps" / "crm"
SYSTEM = Actor.system("bench")


def _world(path: Path) -> RecordService:
    engine = make_engine(f"sqlite:///{path}")
    schema = build_schema(load_packages([CRM]))
    schema.metadata.create_all(engine)
    records = RecordService(engine=engine, schema=schema)
    install_hooks(records)  # the ledger, rollups, notifications: as a server runs
    return records


def _pair(records: RecordService, children: int, tag: str) -> tuple[int, int, list[int]]:
    keep = records.create(SYSTEM, "customer", {"name": f"Keep {tag}"}).id
    twin = records.create(SYSTEM, "customer", {"name": f"Twin {tag}"}).id
    ids = records.bulk_create(SYSTEM, "contact", [
        {"name": f"c{i}", "customer": twin} for i in range(children)])
    for i in range(max(1, children // 10)):
        records.comment(SYSTEM, "customer", twin, f"note {i}")
    return keep, twin, ids


def run(children: int, repeat: int) -> dict[str, float]:
    """Best seconds of each step over ``repeat`` rounds."""
    best = {"by hand": float("inf"), "merge": float("inf"), "undo": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        records = _world(Path(tmp) / "merge.db")
        for r in range(repeat):
            keep, twin, ids = _pair(records, children, f"h{r}")
            start = time.perf_counter()
            for child in ids:
                current = records.get(SYSTEM, "contact", child)
                records.update(SYSTEM, "contact", child, {"customer": keep},
                               version=current.version)
            records.delete(SYSTEM, "customer", twin)
            best["by hand"] = min(best["by hand"], time.perf_counter() - start)

            keep, twin, ids = _pair(records, children, f"m{r}")
            start = time.perf_counter()
            done = records.merge(SYSTEM, "customer", keep, [twin])
            best["merge"] = min(best["merge"], time.perf_counter() - start)
            start = time.perf_counter()
            records.undo_merge(SYSTEM, "customer", done.id)
            best["undo"] = min(best["undo"], time.perf_counter() - start)
        records.engine.dispose()
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    best = run(args.children, args.repeat)
    base = best["by hand"]
    rows = "".join(f"| {name} | {seconds:.3f} | {seconds / base:.2f} |\n"
                   for name, seconds in best.items())
    body = (f"`python -m bench.bench_merge --children {args.children} --repeat {args.repeat}` "
            f"(SQLite, CRM metadata, every write hook): a customer with {args.children:,} contacts and "
            f"{max(1, args.children // 10):,} feed entries folded into another; best of "
            f"{args.repeat}.\n\n| run | seconds | ratio |\n|---|---|---|\n{rows}\n"
            "By hand is each contact re-pointed through the records service, then the twin "
            "deleted (the baseline). The merge moves the same references with one UPDATE "
            "per referring field and per system table and writes its snapshot; the undo "
            "moves them back.\n")
    print(body)
    if not args.no_write:
        write_section("Merge (issue 10)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
