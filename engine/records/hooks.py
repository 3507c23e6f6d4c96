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
``in_transaction(handler)``
    Phase: inside the unit of work, after its writes and before COMMIT.
    Signature: ``handler(tx: Transaction, events: Sequence[WriteEvent]) -> None``.
    May: raise an engine error (``ValidationError``, ``ForbiddenError``,
    ``ConflictError``...) to refuse the whole unit, which then rolls back; write
    derived values (last-touched times, counters, rollups, ledgers) through
    ``tx.conn``, or further records through ``tx``'s methods (their events are
    delivered to the in-transaction handlers in a next round, at most
    ``MAX_ROUNDS`` rounds); queue effects with ``tx.on_commit(fn)``.
    Must not: commit, roll back or open another connection to write.

``after_commit(handler)``
    Phase: after COMMIT only; never called for a unit that rolled back.
    Signature: ``handler(events: Sequence[WriteEvent]) -> None``.
    May: notify, enqueue jobs, call webhooks, write in its own transactions.
    An exception is logged and swallowed: the change is already durable.

A bulk write delivers one call with all its events; a unit of work with
several writes delivers one call with the events of all of them, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.records.events import WriteEvent

if TYPE_CHECKING:
    from engine.records.transaction import Transaction

InTransactionHandler = Callable[["Transaction", Sequence[WriteEvent]], None]
AfterCommitHandler = Callable[[Sequence[WriteEvent]], None]

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
    "in_transaction": HookSpec(
        name="in_transaction", phase="before commit, inside the unit of work",
        signature="handler(tx: Transaction, events: Sequence[WriteEvent]) -> None",
        may="refuse the unit by raising an engine error; write derived values through "
            "tx.conn or records through tx; queue effects with tx.on_commit"),
    "after_commit": HookSpec(
        name="after_commit", phase="after commit only (never after a rollback)",
        signature="handler(events: Sequence[WriteEvent]) -> None",
        may="notify, enqueue, call out; errors are logged, the change stands"),
}


class WriteHooks:
    """The handlers registered on one RecordService (``records.hooks``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_transaction: tuple[InTransactionHandler, ...] = ()
        self._after_commit: tuple[AfterCommitHandler, ...] = ()

    def in_transaction(self, handler: InTransactionHandler) -> InTransactionHandler:
        """Register ``handler`` for the in-transaction phase (usable as a decorator)."""
        with self._lock:
            if handler not in self._in_transaction:
                self._in_transaction = (*self._in_transaction, handler)
        return handler

    def after_commit(self, handler: AfterCommitHandler) -> AfterCommitHandler:
        """Register ``handler`` for the after-commit phase (usable as a decorator)."""
        with self._lock:
            if handler not in self._after_commit:
                self._after_commit = (*self._after_commit, handler)
        return handler

    @property
    def in_transaction_handlers(self) -> tuple[InTransactionHandler, ...]:
        return self._in_transaction

    @property
    def after_commit_handlers(self) -> tuple[AfterCommitHandler, ...]:
        return self._after_commit
