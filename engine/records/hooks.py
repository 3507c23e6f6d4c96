"""The write hooks: every extension point of the records service, documented here.

Like Datasette's ``hookspecs.py``, this module is the one list of hooks; a test
(tests/unit/records/test_rec_hooks_documented.py) fails when code registers a
hook that is not in ``HOOKS`` or not described in docs/hooks.md.

A hook provider is a callable ``install(records: RecordService) -> None`` that
registers its handlers; ``engine.runtime`` runs every provider in
``engine.runtime.HOOK_PROVIDERS`` each time it builds services, so core
behaviour (pools, rollups) is registered exactly like an app's would be.

Hooks
-----
``before_insert(handler)``
    Phase: inside the unit of work, when the rows of a create (one record or a
    bulk create) are valid, free of duplicates, not given away without the assign
    grant and numbered, just before they are inserted (the owner scope is checked on
    the written rows after). Signature:
    ``handler(tx: Transaction, entity: str, rows: Sequence[dict[str, Any]], at: datetime)
    -> Callable[[Sequence[int]], None] | None``.
    ``rows`` are the prepared values (fields and ``owner_id``) in payload order.
    May: set ``pool_id`` on rows that have no ``owner_id`` (the only column a handler
    may set: the row is then written once, already in its pool); read through
    ``tx.conn``; return a callable that runs once the rows are inserted and their
    create events emitted, with the new ids in row order (it may write through
    ``tx``, e.g. ``tx.reown``, whose events follow the creates'); raise an engine
    error to refuse the unit. Must not: change field values (they were validated),
    commit, roll back or open another connection to write.

``in_transaction(handler)``
    Phase: inside the unit of work, after its writes and before COMMIT.
    Signature: ``handler(tx: Transaction, events: Sequence[WriteEvent]) -> None``;
    registered with ``batches=True``, ``events`` may also hold ``BatchEvent``s
    (engine/records/events.py: many records changed alike, taken whole), else each
    batch reaches the handler as its per-record ``WriteEvent``s.
    May: raise an engine error (``ValidationError``, ``ForbiddenError``,
    ``ConflictError``...) to refuse the whole unit, which then rolls back; write
    derived values (last-touched times, counters, rollups, ledgers) through
    ``tx.conn``, or further records through ``tx``'s methods (their events are
    delivered to the in-transaction handlers in a next round, at most
    ``MAX_ROUNDS`` rounds); queue effects with ``tx.on_commit(fn)``.
    Must not: commit, roll back or open another connection to write.

``after_commit(handler)``
    Phase: after COMMIT only; never called for a unit that rolled back.
    Signature: ``handler(events: Sequence[WriteEvent]) -> None``
    (``batches=True`` as for ``in_transaction``).
    May: notify, enqueue jobs, call webhooks, write in its own transactions.
    An exception is logged and swallowed: the change is already durable.

A bulk write delivers one call with all its events; a unit of work with
several writes delivers one call with the events of all of them, in order.
A handler that takes batches gets them in their place among the other events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.records.events import Event, WriteEvent

if TYPE_CHECKING:
    from engine.records.transaction import Transaction

#: Runs once the rows of a ``before_insert`` call are inserted: their ids, in row order.
AfterInsert = Callable[[Sequence[int]], None]
BeforeInsertHandler = Callable[["Transaction", str, Sequence[dict[str, Any]], datetime],
                               "AfterInsert | None"]
InTransactionHandler = Callable[["Transaction", Sequence[WriteEvent]], None]
AfterCommitHandler = Callable[[Sequence[WriteEvent]], None]
#: Handlers registered with ``batches=True`` get ``Event``s (``WriteEvent | BatchEvent``).
BatchInTransactionHandler = Callable[["Transaction", Sequence[Event]], None]
BatchAfterCommitHandler = Callable[[Sequence[Event]], None]

#: Rounds of in-transaction handlers a unit runs before refusing (a handler whose
#: writes keep triggering handlers would otherwise never end).
MAX_ROUNDS = 8


@dataclass(frozen=True)
class HookSpec:
    """One documented hook: its name, when it runs, its handler's signature."""

    name: str
    phase: str
    signature: str
    may: str


HOOKS: dict[str, HookSpec] = {
    "before_insert": HookSpec(
        name="before_insert", phase="inside the unit of work, before a create's rows are "
                                    "inserted (after validation)",
        signature="handler(tx: Transaction, entity: str, rows: Sequence[dict[str, Any]], "
                  "at: datetime) -> Callable[[Sequence[int]], None] | None",
        may="set pool_id on rows without an owner; return a callable given the new ids "
            "once inserted (writes through tx follow the creates); refuse the unit by "
            "raising an engine error"),
    "in_transaction": HookSpec(
        name="in_transaction", phase="before commit, inside the unit of work",
        signature="handler(tx: Transaction, events: Sequence[WriteEvent]) -> None",
        may="refuse the unit by raising an engine error; write derived values through "
            "tx.conn or records through tx; queue effects with tx.on_commit; with "
            "batches=True, take a BatchEvent whole"),
    "after_commit": HookSpec(
        name="after_commit", phase="after commit only (never after a rollback)",
        signature="handler(events: Sequence[WriteEvent]) -> None",
        may="notify, enqueue, call out; errors are logged, the change stands; with "
            "batches=True, take a BatchEvent whole"),
}


class WriteHooks:
    """The handlers registered on one RecordService (``records.hooks``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._before_insert: tuple[BeforeInsertHandler, ...] = ()
        self._in_transaction: tuple[Callable[..., None], ...] = ()
        self._after_commit: tuple[Callable[..., None], ...] = ()
        self._batched: frozenset[Callable[..., None]] = frozenset()

    def before_insert(self, handler: BeforeInsertHandler) -> BeforeInsertHandler:
        """Register ``handler`` for the before-insert phase of creates (see the module doc)."""
        with self._lock:
            if handler not in self._before_insert:
                self._before_insert = (*self._before_insert, handler)
        return handler

    def in_transaction(self, handler: Callable[..., None], *,
                       batches: bool = False) -> Callable[..., None]:
        """Register ``handler`` for the in-transaction phase (usable as a decorator).

        ``batches=True``: the handler takes ``BatchEvent``s whole (see the module doc).
        """
        with self._lock:
            if handler not in self._in_transaction:
                self._in_transaction = (*self._in_transaction, handler)
            if batches:
                self._batched = self._batched | {handler}
        return handler

    def after_commit(self, handler: Callable[..., None], *,
                     batches: bool = False) -> Callable[..., None]:
        """Register ``handler`` for the after-commit phase (usable as a decorator)."""
        with self._lock:
            if handler not in self._after_commit:
                self._after_commit = (*self._after_commit, handler)
            if batches:
                self._batched = self._batched | {handler}
        return handler

    def takes_batches(self, handler: Callable[..., None]) -> bool:
        """Whether ``handler`` was registered with ``batches=True``."""
        return handler in self._batched

    @property
    def before_insert_handlers(self) -> tuple[BeforeInsertHandler, ...]:
        return self._before_insert

    @property
    def in_transaction_handlers(self) -> tuple[Callable[..., None], ...]:
        return self._in_transaction

    @property
    def after_commit_handlers(self) -> tuple[Callable[..., None], ...]:
        return self._after_commit
