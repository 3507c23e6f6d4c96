"""Leased job rows: work that several processes may start, done by exactly one at a time.

A job is one row of ``tp_job`` named by (kind, key), e.g. ("pool_rule",
"customer_pool.untouched_7d"). A process takes it with one conditional UPDATE
(``lease_owner`` empty or its lease expired); the database serialises two
such UPDATEs on the row, so exactly one process wins and the others skip the
job. The holder renews the lease between batches, writes progress, and
releases it when done or failed. A crashed holder's lease simply expires.

Generic on purpose: the rule scheduler uses it today; imports and long
migrations can lease their own kinds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.storage.applied import SYSTEM_TABLES
from engine.storage.database import write_transaction
from engine.storage.rule_tables import JOB_TABLE


def job_table() -> Any:
    """The ``tp_job`` table (from the shared system metadata)."""
    return SYSTEM_TABLES[JOB_TABLE]


@dataclass(frozen=True)
class Lease:
    """A job held by ``owner`` until ``expires_at`` (renew before then)."""

    job_id: int
    kind: str
    key: str
    owner: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class Job:
    """A job row as an admin sees it."""

    kind: str
    key: str
    state: str
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    progress: dict[str, Any] | None
    runs: int
    error: str | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def _ensure(conn: Connection, kind: str, key: str, now: dt.datetime) -> None:
    table = job_table()
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(make(table).values(kind=kind, key=key, state="idle", runs=0, created_at=now)
                 .on_conflict_do_nothing(index_elements=["kind", "key"]))


def acquire(engine: Engine, *, kind: str, key: str, owner: str, now: dt.datetime,
            ttl: dt.timedelta) -> Lease | None:
    """Take the job's lease if nobody holds a live one; None when another process does."""
    table = job_table()
    expires = now + ttl
    with write_transaction(engine) as conn:
        _ensure(conn, kind, key, now)
        taken = conn.execute(
            update(table)
            .where(table.c.kind == kind, table.c.key == key,
                   or_(table.c.lease_owner.is_(None), table.c.lease_expires_at < now))
            .values(lease_owner=owner, lease_expires_at=expires, state="running",
                    started_at=now, finished_at=None, error=None, runs=table.c.runs + 1,
                    progress=None)
            .returning(table.c.id)
        ).scalar_one_or_none()
    if taken is None:
        return None
    return Lease(job_id=int(taken), kind=kind, key=key, owner=owner, expires_at=expires)


def _held(lease: Lease) -> Any:
    table = job_table()
    return and_(table.c.id == lease.job_id, table.c.lease_owner == lease.owner)


def renew(conn: Connection, lease: Lease, *, now: dt.datetime, ttl: dt.timedelta,
          progress: dict[str, Any] | None = None) -> Lease | None:
    """Extend a lease still held (None if it was lost), recording progress on the way."""
    table = job_table()
    expires = now + ttl
    values: dict[str, Any] = {"lease_expires_at": expires}
    if progress is not None:
        values["progress"] = progress
    done = conn.execute(update(table).where(_held(lease)).values(**values)).rowcount
    if not done:
        return None
    return Lease(job_id=lease.job_id, kind=lease.kind, key=lease.key, owner=lease.owner,
                 expires_at=expires)


def release(engine: Engine, lease: Lease, *, now: dt.datetime, state: str = "done",
            progress: dict[str, Any] | None = None, error: str | None = None) -> None:
    """Give the job back (done or failed), keeping its last progress and error."""
    table = job_table()
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "state": state,
                              "finished_at": now, "error": error}
    if progress is not None:
        values["progress"] = progress
    with write_transaction(engine) as conn:
        conn.execute(update(table).where(_held(lease)).values(**values))


def list_jobs(conn: Connection, *, kind: str | None = None) -> list[Job]:
    """Every job (of one kind), by kind and key."""
    table = job_table()
    query = select(table).order_by(table.c.kind, table.c.key)
    if kind is not None:
        query = query.where(table.c.kind == kind)
    return [Job(kind=r.kind, key=r.key, state=r.state, lease_owner=r.lease_owner,
                lease_expires_at=r.lease_expires_at, progress=r.progress, runs=r.runs,
                error=r.error, started_at=r.started_at, finished_at=r.finished_at)
            for r in conn.execute(query)]


__all__ = ["Job", "Lease", "acquire", "list_jobs", "release", "renew"]
