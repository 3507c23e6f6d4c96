"""Write events: what a unit of work changed, handed to the write hooks.

Every write of the records service (and every pool operation built on it)
produces one ``WriteEvent`` per record touched. The in-transaction hooks see
them before commit and may refuse the whole unit or keep derived values; the
after-commit hooks see them once the change is durable (engine/records/hooks.py).
``before``/``after`` are the stored column values (``EntityPlan.to_values``), so
a hook can compare owner, pool, stage or any field without reading the row again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
