"""Bulk create of CRM customers in process: instructions per row, steady on a shared machine.

Not part of ``run_all``: a tool for work on ``RecordService.bulk_create`` (issue 13,
item 5). ``bench_bulk`` measures rows per CPU second, which moves ±10 % from run to run
when other work shares the cores; an instruction count does not.

  PYTHONPATH=TREE python -m bench.bulk_counts setup DIR
      a demo database (users, pools, territories) in DIR grown to 20,000 customers
  PYTHONPATH=TREE python -m bench.bulk_counts count DIR --actor rep --batches N
      on a copy of DIR's database (the copy is made first, DIR stays as it was): three
      5,000-row batches of generated customers are made, the first is bulk-created as a
      warm-up (compiled row preparation, statement caches), then N more. Run under
      ``valgrind --tool=cachegrind --cache-sim=no`` with N and with 0: the difference
      over N x 5,000 is the instructions per row (``--actor system``: the system actor,
      whose rows go through the territory distribution).
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.bench_bulk import CRM, ENTITY, REP, _engine_actor, writable_rows
from engine.actor import Actor
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import open_runtime
from engine.seeding import generate_rows

BATCH = 5000
DATABASE = "bulk.db"


def _url(directory: Path) -> str:
    return f"sqlite:///{directory / DATABASE}"


def setup(directory: Path) -> None:
    """The demo database with 20,000 customers (the system actor's, distributed)."""
    from engine.demo import prepare_demo

    directory.mkdir(parents=True, exist_ok=True)
    prepare_demo(_url(directory), apps=[CRM], out=io.StringIO(), rows=200)
    runtime = open_runtime(_url(directory), policy_factory=CasbinAccessPolicy)
    try:
        entity = runtime.registry.entity(ENTITY)
        for k in range(4):
            runtime.records.bulk_create(Actor.system("bench"), ENTITY, list(generate_rows(
                entity, count=BATCH, seed=50 + k, start=500_000 + BATCH * k)))
    finally:
        runtime.engine.dispose()


def count(directory: Path, *, actor_name: str, batches: int) -> None:
    """Warm up with one batch, then bulk-create ``batches`` more (at most 2), on a copy."""
    if not 0 <= batches <= 2:
        raise SystemExit("--batches must be 0, 1 or 2")
    with tempfile.TemporaryDirectory(prefix="tidepool-bulk-counts-") as tmp:
        work = Path(tmp)
        shutil.copy(directory / DATABASE, work / DATABASE)
        runtime = open_runtime(_url(work), policy_factory=CasbinAccessPolicy)
        try:
            entity = runtime.registry.entity(ENTITY)
            actor = _engine_actor(runtime.engine, runtime, REP) if actor_name == "rep" \
                else Actor.system("bench")
            # Made whatever N is, so that N and 0 differ by the bulk creates alone.
            made = [writable_rows(runtime, actor, entity, count=BATCH, seed=100 + k,
                                  start=100_000 + BATCH * k) for k in range(3)]
            runtime.records.bulk_create(actor, ENTITY, made[0])
            for rows in made[1:batches + 1]:
                runtime.records.bulk_create(actor, ENTITY, rows)
        finally:
            runtime.engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_counts",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup").add_argument("directory", type=Path)
    counting = sub.add_parser("count")
    counting.add_argument("directory", type=Path)
    counting.add_argument("--actor", choices=("rep", "system"), default="rep")
    counting.add_argument("--batches", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "setup":
        setup(args.directory)
    else:
        count(args.directory, actor_name=args.actor, batches=args.batches)


if __name__ == "__main__":
    main()
