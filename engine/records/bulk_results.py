"""Bulk create with a result per row: create every valid row, report the others.

``RecordService.bulk_create`` is all or nothing: one bad row refuses the batch
with errors keyed by row (``"3.phone"``). ``create_each`` builds the
"per row" mode on it: when the batch is refused for some rows, those rows are
set aside with their errors and the rest is inserted in a second transaction
(a third if a concurrent insert took a unique key meanwhile). Every attempt is
the same validated, scoped, activity-logging insert; nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.actor import Actor
from engine.errors import ValidationError
from engine.records.service import RecordService

#: Attempts: field errors, then duplicates (checked once fields pass), then the insert,
#: and one more if a concurrent insert took a unique key meanwhile.
MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class RowResult:
    """What happened to row ``index`` of the request: created as ``id``, or refused."""

    index: int
    id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def created(self) -> bool:
        return self.id is not None


def _by_row(errors: Mapping[str, str]) -> dict[int, dict[str, str]] | None:
    """``{"3.phone": m}`` -> ``{3: {"phone": m}}``; None if an error names no row."""
    found: dict[int, dict[str, str]] = {}
    for key, message in errors.items():
        row, dot, name = key.partition(".")
        if not dot or not row.isdigit():
            return None
        found.setdefault(int(row), {})[name] = message
    return found


def create_each(records: RecordService, actor: Actor, entity: str,
                rows: Sequence[Mapping[str, Any]]) -> list[RowResult]:
    """Create the valid rows of ``rows``; one ``RowResult`` per row, in order.

    A refusal that is not about particular rows (the actor may not create at
    all, an error naming no row) is raised as is: nothing is created then.
    """
    remaining = list(range(len(rows)))
    refused: dict[int, dict[str, str]] = {}
    created: dict[int, int] = {}
    for _ in range(MAX_ATTEMPTS):
        if not remaining:
            break
        try:
            ids = records.bulk_create(actor, entity, [rows[i] for i in remaining])
        except ValidationError as exc:
            by_row = _by_row(exc.field_errors)
            if not by_row:
                raise
            for position, errors in by_row.items():
                refused[remaining[position]] = errors
            remaining = [i for position, i in enumerate(remaining) if position not in by_row]
            continue
        created.update(zip(remaining, ids, strict=True))
        remaining = []
    for i in remaining:  # still refused after MAX_ATTEMPTS races: say so, row by row
        refused[i] = {"": "not created: the batch kept conflicting with concurrent writes"}
    return [RowResult(i, id=created.get(i), errors=refused.get(i, {})) for i in range(len(rows))]
