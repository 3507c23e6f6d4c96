"""Write events: what a unit of work changed, handed to the write hooks.

Every write of the records service (and every pool operation built on it)
produces one ``WriteEvent`` per record touched. The in-transaction hooks see
them before commit and may refuse the whole unit or keep derived values; the
after-commit hooks see them once the change is durable (engine/records/hooks.py).
``before``/``after`` are the stored column values (``EntityPlan.to_values``), so
a hook can compare owner, pool, stage or any field without reading the row again.

A write that changes many records alike (a rule's batch, a distribution, a bulk pool
operation: ``Transaction.reown``) produces one ``BatchEvent`` per group of records
that were equal in the columns it changes instead: the ids, the shared before and
after values. A hook registered with ``batches=True`` takes it whole (one ledger
INSERT ... SELECT for thousands of records); every other hook is handed the
per-record ``WriteEvent``s it amounts to (``BatchEvent.events``), so a hook that does
not know batches sees exactly what it saw before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.actor import Actor

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
RESTORE = "restore"
ASSIGN = "assign"
STAGE = "stage"
COMMENT = "comment"
HARD_DELETE = "hard_delete"
#: Ownership changes made by pool operations (engine/workflow); the activity
#: feed and the pool-event ledger use the same words.
POOL_KINDS: frozenset[str] = frozenset(
    {"claim", "return", "recycle", "move", "lock", "unlock", "drop"})
KINDS: frozenset[str] = frozenset(
    {CREATE, UPDATE, DELETE, RESTORE, ASSIGN, STAGE, COMMENT, HARD_DELETE}) | POOL_KINDS


@dataclass(frozen=True)
class WriteEvent:
    """One record changed by a unit of work.

    ``kind``: create | update | delete | restore | assign | stage | comment |
    hard_delete, or a pool kind (claim, return, recycle, move, lock, unlock, drop).
    ``before`` is None on create, ``after`` is None on a hard delete. ``via``
    names the rule or job behind a system write (``"rule:<pool>.<rule>"``), None
    for a person's own write.
    """

    entity: str
    record_id: int
    kind: str
    actor: Actor
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    via: str | None
    at: datetime
    reason: str | None = None  # why, as given by the person or rule (pool operations)
    body: str | None = None  # a comment's text (mentions are read from it after commit)

    def changed(self, name: str) -> bool:
        """Whether the column ``name`` differs between before and after."""
        old = None if self.before is None else self.before.get(name)
        new = None if self.after is None else self.after.get(name)
        return bool(old != new)


def creations(entity: str, ids: Sequence[int], afters: Iterable[Mapping[str, Any]], *,
               actor: Actor, via: str | None, at: datetime) -> list[WriteEvent]:
    """The ``create`` events of a bulk insert, equal to ``WriteEvent(...)`` each.

    A frozen dataclass sets its fields one ``object.__setattr__`` call at a time:
    for the thousands of events of a bulk create that cost five times building
    their values. The fields go into each instance's ``__dict__`` at once instead,
    so a field added to ``WriteEvent`` (or slots, or a ``__post_init__``) must be
    added here too: tests/unit/records/test_rec_events.py fails until it is.
    """
    shared = {"entity": entity, "kind": CREATE, "actor": actor, "before": None, "via": via,
              "at": at, "reason": None, "body": None}
    new = object.__new__
    out = []
    for record_id, after in zip(ids, afters):
        event = new(WriteEvent)
        attrs = event.__dict__
        attrs.update(shared)
        attrs["record_id"] = record_id
        attrs["after"] = after
        out.append(event)
    return out


@dataclass(frozen=True)
class BatchEvent:
    """Many records of one entity changed alike by one write (``Transaction.reown``).

    ``record_ids[i]`` was stored as ``rows[i]`` before the write (a result row of
    ``EntityPlan.select_all``: ``row._mapping`` gives the columns by name, a money
    field's amount under the field's name). ``before`` holds the columns the write
    changed, equal for every record before it (owner_id, pool_id); ``after`` the
    values it set on every record (owner_id, pool_id, updated_at); each record's
    ``version`` also went up by one. ``events()`` gives the equivalent per-record
    ``WriteEvent``s, built on first use.
    """

    entity: str
    kind: str
    record_ids: tuple[int, ...]
    actor: Actor
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    via: str | None
    at: datetime
    rows: Sequence[Any]
    to_values: Callable[[Any], dict[str, Any]] = field(repr=False, compare=False)
    reason: str | None = None
    _expanded: list[WriteEvent] = field(default_factory=list, repr=False, compare=False)

    def changed(self, name: str) -> bool:
        """Whether the column ``name`` differs between before and after (for every record)."""
        return bool(self.before.get(name) != self.after.get(name))

    def columns(self) -> Iterator[Mapping[str, Any]]:
        """Each record's stored columns before the write, in ``record_ids`` order."""
        return (row._mapping for row in self.rows)

    def events(self) -> list[WriteEvent]:
        """The per-record events this batch amounts to (for hooks that take no batches)."""
        if not self._expanded and self.record_ids:
            for record_id, row in zip(self.record_ids, self.rows, strict=True):
                old = self.to_values(row)
                self._expanded.append(WriteEvent(
                    entity=self.entity, record_id=record_id, kind=self.kind,
                    actor=self.actor, before=old, after=self._after(old), via=self.via,
                    at=self.at, reason=self.reason))
        return self._expanded

    def after_of(self, record_id: int) -> Mapping[str, Any] | None:
        """One record's values after the write, or None when it is not in the batch (only
        its row is converted: a pool operation asks this of a batch of thousands)."""
        try:
            position = self.record_ids.index(record_id)
        except ValueError:
            return None
        return self._after(self.to_values(self.rows[position]))

    def _after(self, old: Mapping[str, Any]) -> dict[str, Any]:
        return {**old, **self.after, "version": int(old["version"]) + 1}


class RowValues(Mapping[int, dict[str, Any]]):
    """Record id -> its values read from a stored row, converted on first access.

    What ``Transaction.reown`` returns: a rule run only counts the records it moved,
    so thousands of rows need not become value dicts nobody reads.
    """

    def __init__(self, rows: Mapping[int, Any], to_values: Callable[[Any], dict[str, Any]]):
        self._rows = rows
        self._to_values = to_values
        self._done: dict[int, dict[str, Any]] = {}

    def __getitem__(self, record_id: int) -> dict[str, Any]:
        got = self._done.get(record_id)
        if got is None:
            got = self._done[record_id] = self._to_values(self._rows[record_id])
        return got

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


#: What a unit of work hands its hooks: per-record events, and batches to hooks that take them.
Event = WriteEvent | BatchEvent


def expand(events: Sequence[Event]) -> list[WriteEvent]:
    """``events`` with every batch replaced by its per-record events, in order."""
    out: list[WriteEvent] = []
    for event in events:
        if isinstance(event, BatchEvent):
            out.extend(event.events())
        else:
            out.append(event)
    return out
