"""One compiled scope branch, and the explanation ``why`` builds from branches."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from engine.permissions.index import Grant


@dataclass(frozen=True)
class Branch:
    """One compiled scope branch and what it stands for (for ``why``).

    ``key`` identifies the rows the branch covers, so two grants yielding the
    same rows share one branch (one UNION arm).
    """

    key: tuple[object, ...]
    clause: ColumnElement[bool]
    grants: tuple[Grant, ...]
    description: str
    #: The UNION arms the clause runs as when one arm would plan badly (``_owners``);
    #: empty: the clause is the one arm.
    arms: tuple[ColumnElement[bool], ...] = ()
    #: The same rows written for one walk of the sort index OR-ed with other branches
    #: (owner indexes hidden: ``_owners.owner_walk``); None: the clause itself.
    walk: ColumnElement[bool] | None = None
    #: The same rows written for a count, which keeps no order (``RowScope.counting``);
    #: None: the clause itself.
    count: ColumnElement[bool] | None = None

    @property
    def runs_as(self) -> tuple[ColumnElement[bool], ...]:
        return self.arms or (self.clause,)


@dataclass(frozen=True)
class Explanation:
    """Why a user may or may not ``action`` one record (for admins and ``perms why``)."""

    allowed: bool
    entity: str
    record_id: int
    action: str
    granted_by: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else "refused"
        return f"{self.action} {self.entity} {self.record_id}: {verdict}: {self.reason}"
