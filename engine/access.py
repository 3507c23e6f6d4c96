"""The access-policy hook the records service consults on every read and write.

The records service depends only on this protocol; engine/permissions provides
the real implementation (Casbin action checks, row scopes compiled to SQL,
field permissions). ``Unrestricted`` is the policy for the engine itself: the
CLI, migrations, seeding and scheduled jobs acting as ``Actor.system()``.

Row scopes come back as *branches* that are OR-ed together: the records service
runs one branch as a plain WHERE and several as a UNION of per-branch keyset
queries, because an OR across columns sends both SQLite and PostgreSQL into full
sorts at 1M rows (shared/notes/casbin-rowfilter.md, section 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, Table, true

from engine.actor import Actor
from engine.metadata.model import Entity


@dataclass(frozen=True)
class RowScope:
    """Which rows an actor may touch for one (entity, action).

    ``branches`` are OR-ed; an empty tuple means no row at all. A single
    ``true()`` branch means every row.
    """

    branches: tuple[ColumnElement[bool], ...]
    #: The same rows written for a count or aggregate, which keeps no order: a form
    #: that would sort every visible row under a page's ORDER BY can seek an index
    #: there (None: ``branches``).
    counting: tuple[ColumnElement[bool], ...] | None = None

    @classmethod
    def everything(cls) -> RowScope:
        return cls((true(),))

    @classmethod
    def nothing(cls) -> RowScope:
        return cls(())

    @property
    def is_empty(self) -> bool:
        return not self.branches


class AccessPolicy(Protocol):
    """What the records service asks before it reads or writes."""

    def check_action(self, actor: Actor, entity: Entity, action: str) -> None:
        """Raise ``ForbiddenError`` unless the actor may perform ``action`` on the entity at all."""

    def allows(self, actor: Actor, entity: Entity, action: str) -> bool:
        """Whether ``check_action`` would pass, as a yes/no: screens ask it for every
        button, and a refusal should not cost an exception and its message."""

    def row_scope(self, actor: Actor, entity: Entity, table: Table, action: str) -> RowScope:
        """The rows of ``table`` the actor may ``action`` (read, update, delete, ...)."""

    def hidden_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        """Fields the actor may not see: removed from every payload returned."""

    def readonly_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        """Fields the actor may see but not write: a write to one is a validation error."""


class Unrestricted:
    """Everything allowed: for the engine acting on its own behalf."""

    def check_action(self, actor: Actor, entity: Entity, action: str) -> None:
        return None

    def allows(self, actor: Actor, entity: Entity, action: str) -> bool:
        return True

    def row_scope(self, actor: Actor, entity: Entity, table: Table, action: str) -> RowScope:
        return RowScope.everything()

    def hidden_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        return frozenset()

    def readonly_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        return frozenset()
