"""A unit of work: several writes on one connection, one transaction, one activity batch.

``with records.transaction(actor) as tx:`` opens a write transaction and yields a
``Transaction``; its methods are the service's writes (same checks, same
errors), run on ``tx.conn``. On leaving the block the buffered activity entries
are written in one batch, the in-transaction hooks see every ``WriteEvent``
(and may refuse the unit), then the transaction commits and the after-commit
hooks run. Any error rolls back everything the unit wrote. Every public write
method of ``RecordService`` is a one-call unit of work over this class.

``via`` (or ``Actor.via``) names the rule or job behind a system write; it is
stored on each activity entry of the unit and shown in the feed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Connection

from engine.actor import Actor
from engine.errors import TidepoolError
from engine.records import activity as feed
from engine.records.coerce import InputSource
from engine.records.events import BatchEvent, Event, WriteEvent, expand
from engine.records.hooks import MAX_ROUNDS
from engine.records.record import Record
from engine.storage.database import write_transaction
from engine.storage.fanout import insert_group, insert_per_record

if TYPE_CHECKING:
    from engine.records._plan import EntityPlan
    from engine.records.service import RecordService

T = TypeVar("T")
log = logging.getLogger(__name__)
_open = threading.local()  # units of work open on this thread (0 or 1)


@dataclass(frozen=True)
class _Entries:
    """Activity entries of several records equal but for the record id (``log_batch``)."""

    entity: str
    shared: dict[str, Any]
    ids: list[int]


class UnitOfWorkError(TidepoolError):
    """The unit of work cannot go on: an earlier write in it failed, or hooks never settle."""


class Transaction:
    """The writes of one unit of work; get one from ``RecordService.transaction``."""

    def __init__(self, service: RecordService, conn: Connection, actor: Actor, *,
                 via: str | None) -> None:
        self.service = service
        self.conn = conn
        self.actor = actor
        self.via = via
        self.events: list[Event] = []
        self._delivered = 0  # events already shown to the in-transaction handlers
        self._activity: list[dict[str, Any] | _Entries] = []
        self._on_commit: list[Callable[[], None]] = []
        self._failed = False

    # --- the writes ---------------------------------------------------------------

    def create(self, entity: str, values: Mapping[str, Any], *,
               source: InputSource = InputSource.JSON) -> Record:
        """Validate and insert one record (``RecordService.create``)."""
        return self._run(lambda: self.service._create(self, entity, values, source=source))

    def bulk_create(self, entity: str, rows: Sequence[Mapping[str, Any]], *,
                    source: InputSource = InputSource.JSON) -> list[int]:
        """Insert many records, all or nothing (``RecordService.bulk_create``)."""
        return self._run(lambda: self.service._bulk_create(self, entity, rows, source=source))

    def update(self, entity: str, record_id: int, values: Mapping[str, Any], *, version: int,
               source: InputSource = InputSource.JSON) -> Record:
        """Change fields if the record is at ``version`` (``RecordService.update``)."""
        return self._run(lambda: self.service._update_in(self, entity, record_id, values,
                                                         version=version, source=source))

    def move_stage(self, entity: str, record_id: int, *, to: str, version: int,
                   values: Mapping[str, Any] | None = None,
                   source: InputSource = InputSource.JSON) -> Record:
        """Move a record to stage ``to`` (``RecordService.move_stage``)."""
        return self._run(lambda: self.service._move_stage_in(
            self, entity, record_id, to=to, version=version, values=values, source=source))

    def assign(self, entity: str, record_id: int, owner_id: int | None, *,
               version: int | None = None) -> Record:
        """Give a record to another owner (``RecordService.assign``)."""
        return self._run(lambda: self.service._assign_in(self, entity, record_id, owner_id,
                                                         version=version))

    def delete(self, entity: str, record_id: int, *, version: int | None = None) -> None:
        """Recycle-bin or hard delete (``RecordService.delete``)."""
        self._run(lambda: self.service._delete_in(self, entity, record_id, version=version))

    def restore(self, entity: str, record_id: int) -> Record:
        """Bring a record back from the recycle bin (``RecordService.restore``)."""
        return self._run(lambda: self.service._restore_in(self, entity, record_id))

    def comment(self, entity: str, record_id: int, body: str) -> None:
        """Add a comment to a record's feed (``RecordService.comment``)."""
        self._run(lambda: self.service._comment_in(self, entity, record_id, body))

    def reown(self, entity: str, record_ids: Sequence[int], *, owner_id: int | None,
              pool_id: str | None, kind: str, action: str | None,
              guard: Sequence[ColumnElement[bool]] = (),
              reason: str | None = None,
              serialise: ColumnElement[Any] | None = None,
              locked: Sequence[Any] | None = None) -> Mapping[int, dict[str, Any]]:
        """Set owner and pool of the records that pass ``guard``: one conditional UPDATE.

        The ownership primitive pool operations and rules stand on (engine/workflow).
        ``action``: the records must also be inside the actor's row scope for that
        action (None: no scope check, for system writes already authorised).
        Returns the changed records' values before the change, by id (converted when
        read); a record that fails the guard is simply not changed (the caller says why).
        The hooks get one ``BatchEvent`` per group of records that had the same owner and
        pool (a lone record: its ``WriteEvent``).
        ``serialise``: a lock expression (e.g. a PostgreSQL advisory lock) evaluated by
        the statement that row-locks the records, before the UPDATE.
        ``locked``: the records' rows as ``EntityPlan.select_all`` reads them, already read
        and row-locked on ``self.conn`` by the caller (``record_ids`` is then their ids):
        a rule run picks its batch and reads it in one statement (engine/workflow/rule_runner.py).
        """
        return self._run(lambda: self.service._reown_in(
            self, entity, record_ids, owner_id=owner_id, pool_id=pool_id, kind=kind,
            action=action, guard=guard, reason=reason, serialise=serialise, locked=locked))

    # --- what hooks and the service use ------------------------------------------------

    def on_commit(self, effect: Callable[[], None]) -> None:
        """Run ``effect`` after COMMIT; dropped if the unit rolls back."""
        self._on_commit.append(effect)

    def emit(self, event: Event) -> None:
        """Record a change for the write hooks: once per record, or once per ``BatchEvent``."""
        self.events.append(event)

    def event(self, plan: EntityPlan, record_id: int, kind: str, *,
              before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
              at: datetime, reason: str | None = None, body: str | None = None) -> None:
        """Shorthand for ``emit`` with this unit's actor and ``via``."""
        self.events.append(WriteEvent(entity=plan.name, record_id=record_id, kind=kind,
                                      actor=self.actor, before=before, after=after,
                                      via=self.via, at=at, reason=reason, body=body))

    def log(self, plan: EntityPlan, record_id: int, kind: str, *, at: datetime,
            changes: Sequence[Mapping[str, Any]] | None, body: str | None = None) -> None:
        """Buffer one activity entry; the unit writes them in one batch before COMMIT."""
        if not plan.activity:
            return
        self._activity.append({**feed.row(plan, record_id=record_id, kind=kind,
                                          actor_id=self.actor.user_id, at=at,
                                          changes=changes, via=self.via), "body": body})

    def log_batch(self, plan: EntityPlan, record_ids: Sequence[int], kind: str, *,
                  at: datetime, changes: Sequence[Mapping[str, Any]] | None,
                  body: str | None = None) -> None:
        """Buffer one activity entry per record of ``record_ids`` (distinct), equal but for
        the record: a batch moved by one rule or pool write. Written with one
        INSERT ... SELECT, in its place among the unit's other entries."""
        if not plan.activity or not record_ids:
            return
        shared = {**feed.row(plan, record_id=0, kind=kind, actor_id=self.actor.user_id, at=at,
                             changes=changes, via=self.via), "body": body}
        del shared["record_id"]
        self._activity.append(_Entries(plan.name, shared, list(record_ids)))

    def flush(self) -> None:
        """Write the buffered activity entries now, in their order: one INSERT ... SELECT
        per group of entries equal but for the record (a rule's batch), one batch for
        the rest."""
        if not self._activity:
            return
        buffered, self._activity = self._activity, []
        target = self.service.schema.system[feed.ACTIVITY_TABLE]
        rows: list[dict[str, Any]] = []
        for item in buffered:
            if isinstance(item, _Entries):
                insert_per_record(self.conn, target, rows, source_of=self.service.schema.table)
                rows = []
                insert_group(self.conn, target, item.shared, item.ids,
                             source=self.service.schema.table(item.entity))
            else:
                rows.append(item)
        insert_per_record(self.conn, target, rows, source_of=self.service.schema.table)

    def _run(self, write: Callable[[], T]) -> T:
        if self._failed:
            raise UnitOfWorkError("an earlier write of this unit of work failed; "
                                  "leave the `with` block so it rolls back")
        try:
            return write()
        except BaseException:
            # On PostgreSQL the transaction may be aborted; on both, part of the
            # failed write may stand. Nothing more may run, and nothing commits.
            self._failed = True
            raise

    def _settle(self) -> None:
        """Before COMMIT: flush activity, run the in-transaction handlers until quiet."""
        if self._failed:
            raise UnitOfWorkError("an earlier write of this unit of work failed; "
                                  "nothing was saved")
        hooks = self.service.hooks
        handlers = hooks.in_transaction_handlers
        for _ in range(MAX_ROUNDS):
            self.flush()
            fresh = self.events[self._delivered:]
            if not fresh or not handlers:
                return
            self._delivered = len(self.events)
            for handler in handlers:
                handler(self, fresh if hooks.takes_batches(handler) else per_record(fresh))
        raise UnitOfWorkError(f"write hooks still writing after {MAX_ROUNDS} rounds")


def per_record(events: Sequence[Event]) -> Sequence[WriteEvent]:
    """What a hook that takes no batches sees: every batch as its per-record events."""
    if not any(isinstance(e, BatchEvent) for e in events):
        return events  # type: ignore[return-value]  # no batch: all WriteEvents
    return expand(events)


@contextmanager
def unit_of_work(service: RecordService, actor: Actor, *,
                 via: str | None = None) -> Iterator[Transaction]:
    """The body of ``RecordService.transaction`` (see there)."""
    via = via if via is not None else actor.via
    if getattr(_open, "units", 0):
        # A second write transaction on this thread would wait for the first one's
        # lock (SQLite) or commit apart from it (PostgreSQL): use the open unit's tx.
        raise UnitOfWorkError("a unit of work is already open on this thread; write "
                              "through its Transaction instead of the service")
    _open.units = 1
    try:
        with write_transaction(service.engine) as conn:
            tx = Transaction(service, conn, actor, via=via)
            yield tx
            tx._settle()
    finally:
        _open.units = 0
    for effect in tx._on_commit:
        try:
            effect()
        except Exception:  # committed: report, never undo
            log.exception("on_commit effect %r failed", effect)
    if tx.events:
        events = tuple(tx.events)
        hooks = service.hooks
        for handler in hooks.after_commit_handlers:
            try:
                handler(events if hooks.takes_batches(handler) else per_record(events))
            except Exception:  # committed: report, never undo
                log.exception("after_commit handler %r failed", handler)
