"""Leased job rows: one holder at a time across connections, expiry, renewal, release."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from engine.metadata.parse import registry_from_document
from engine.storage import jobs
from engine.storage.database import make_engine
from engine.storage.tables import build_schema

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    build_schema(registry_from_document({"entities": {}})).metadata.create_all(db_engine)
    yield db_engine


def test_one_holder_then_expiry_then_release(engine: Engine) -> None:
    first = jobs.acquire(engine, kind="k", key="a", owner="p1", now=T0, ttl=TTL)
    assert first is not None
    assert jobs.acquire(engine, kind="k", key="a", owner="p2", now=T0 + timedelta(minutes=1),
                        ttl=TTL) is None
    # Another key is another job.
    assert jobs.acquire(engine, kind="k", key="b", owner="p2", now=T0, ttl=TTL) is not None
    # The first holder died: its lease expires and someone else takes the job.
    second = jobs.acquire(engine, kind="k", key="a", owner="p2", now=T0 + timedelta(minutes=6),
                          ttl=TTL)
    assert second is not None and second.job_id == first.job_id
    with engine.begin() as conn:
        assert jobs.renew(conn, first, now=T0 + timedelta(minutes=7), ttl=TTL) is None
        assert jobs.renew(conn, second, now=T0 + timedelta(minutes=7), ttl=TTL,
                          progress={"done": 3}) is not None
    jobs.release(engine, first, now=T0 + timedelta(minutes=8))      # not held: no effect
    with engine.connect() as conn:
        (job,) = [j for j in jobs.list_jobs(conn, kind="k") if j.key == "a"]
    assert (job.state, job.lease_owner, job.progress, job.runs) == ("running", "p2",
                                                                    {"done": 3}, 2)
    jobs.release(engine, second, now=T0 + timedelta(minutes=9), progress={"done": 5})
    with engine.connect() as conn:
        (job,) = [j for j in jobs.list_jobs(conn, kind="k") if j.key == "a"]
    assert (job.state, job.lease_owner, job.progress) == ("done", None, {"done": 5})
    assert jobs.acquire(engine, kind="k", key="a", owner="p3", now=T0 + timedelta(minutes=9),
                        ttl=TTL) is not None


def test_racing_processes_get_one_lease(engine: Engine, db_url: str) -> None:
    """Eight threads, each with its own engine (own connections), race for one job."""
    engines = [make_engine(db_url) for _ in range(8)]
    won: list[str] = []
    barrier = threading.Barrier(len(engines))

    def race(i: int) -> None:
        barrier.wait()
        lease = jobs.acquire(engines[i], kind="race", key="one", owner=f"p{i}", now=T0, ttl=TTL)
        if lease is not None:
            won.append(lease.owner)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(engines))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in engines:
        e.dispose()
    assert len(won) == 1
