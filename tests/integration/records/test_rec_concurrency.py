"""Two writers at once, on two connections: exactly one wins, the other gets our error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import ConflictError, DuplicateError
from engine.records import ListQuery, RecordService
from engine.storage.tables import StorageSchema


def race(*jobs: Callable[[], Any]) -> list[Any]:
    """Run jobs in threads released together; returns each result or exception."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int, job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_same_version_updates_one_wins(service: RecordService, system: Actor) -> None:
    for round_ in range(3):
        rec = service.create(system, "account", {"name": f"r{round_}"})
        results = race(
            lambda rid=rec.id: service.update(system, "account", rid, {"name": "left"},
                                              version=1),
            lambda rid=rec.id: service.update(system, "account", rid, {"name": "right"},
                                              version=1))
        conflicts = [r for r in results if isinstance(r, ConflictError)]
        wins = [r for r in results if not isinstance(r, Exception)]
        assert len(conflicts) == 1 and len(wins) == 1, results
        final = service.get(system, "account", rec.id)
        assert final.version == 2 and final["name"] == wins[0]["name"]
        assert [e.kind for e in service.activity(system, "account", rec.id)] == \
            ["update", "create"]


def test_concurrent_duplicate_insert_one_wins(service: RecordService, system: Actor,
                                              db_engine: Engine,
                                              schema: StorageSchema) -> None:
    for round_ in range(3):
        phone = f"1380000{round_:04d}"
        results = race(
            lambda p=phone: service.create(system, "account", {"name": "L", "phone": p}),
            lambda p=phone: service.create(system, "account", {"name": "R", "phone": p}))
        dups = [r for r in results if isinstance(r, DuplicateError)]
        wins = [r for r in results if not isinstance(r, Exception)]
        assert len(dups) == 1 and len(wins) == 1, results
        assert dups[0].existing_id == wins[0].id
    table = schema.table("account")
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 3


def test_auto_numbers_unique_under_concurrency(service: RecordService, system: Actor) -> None:
    jobs = [(lambda i=i: service.create(system, "account", {"name": f"n{i}"}))
            for i in range(6)]
    jobs.append(lambda: service.bulk_create(system, "account",
                                            [{"name": f"bulk{i}"} for i in range(20)]))
    results = race(*jobs)
    assert not [r for r in results if isinstance(r, Exception)], results
    everything = {r["number"] for r in _all(service, system)}
    assert len(everything) == 26
    assert everything == {f"ACC-2026-{n:04d}" for n in range(1, 27)}


def _all(service: RecordService, system: Actor) -> list[Any]:
    rows: list[Any] = []
    query = ListQuery(limit=10)
    while True:
        page = service.list(system, "account", query)
        rows += page.rows
        if not page.has_more:
            return rows
        query = ListQuery(limit=10, after=page.next_token)


def test_unique_violation_from_the_database_becomes_duplicate_error(
        service: RecordService, system: Actor, monkeypatch: Any) -> None:
    """The pre-check can miss a row a concurrent writer commits; the constraint catches it."""
    import engine.records.service as module

    first = service.create(system, "account", {"name": "A", "phone": "555000"})
    real = module.duplicates
    calls = []

    def blind_first_check(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return [] if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(module, "duplicates", blind_first_check)
    try:
        service.create(system, "account", {"name": "B", "phone": "555000"})
    except DuplicateError as err:
        assert err.existing_id == first.id
    else:
        raise AssertionError("no DuplicateError")
    assert len(calls) == 2
    assert service.count(system, "account") == 1
