"""Two rule runners at once (threads, separate engines and connections): each record moves
once and the counts add up exactly, with and without the job lease protecting the rule."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.records import RecordService
from engine.runtime import install_hooks
from engine.storage.database import make_engine
from engine.workflow.rule_runner import RunReport, run_rules
from tests.integration.workflow._rules_world import DAY, T0, World

RULE = {"name": "idle", "kind": "drop", "clock": "created", "after": {"days": 3}}
ROWS = 120


@pytest.mark.parametrize("ttl", [timedelta(minutes=5), timedelta(0)],
                         ids=["leased", "lease-expires-at-once"])
def test_two_runners_move_each_record_once(make_rules_world: Callable[..., World], db_url: str,
                                           ttl: timedelta) -> None:
    w = make_rules_world(rules=[RULE])
    owners = ["a1", "a2", "a3"]
    with w.records.transaction(w.system) as tx:
        tx.bulk_create("item", [{"name": f"r{i}", "owner_id": w.users[owners[i % 3]]}
                                for i in range(ROWS)])
    engines = [make_engine(db_url) for _ in range(2)]
    reports: list[RunReport] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(2)

    def runner(i: int) -> None:
        records = install_hooks(RecordService(engine=engines[i], schema=w.schema,
                                              clock=w.clock))
        barrier.wait()
        try:
            reports.append(run_rules(records, now=T0 + 4 * DAY, batch=7, owner=f"runner{i}",
                                     lease_ttl=ttl))
        except Exception as exc:  # noqa: BLE001 -- surfaced below by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in engines:
        e.dispose()
    assert errors == []
    assert sum(r.moved for r in reports) == ROWS
    table = w.schema.table("item")
    ledger = w.schema.system["tp_pool_event"]
    with w.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)
                            .where(table.c.owner_id.is_not(None))).scalar_one() == 0
        per_record = conn.execute(select(ledger.c.record_id, func.count())
                                  .where(ledger.c.kind == "drop")
                                  .group_by(ledger.c.record_id)).all()
    assert len(per_record) == ROWS and {n for _, n in per_record} == {1}
