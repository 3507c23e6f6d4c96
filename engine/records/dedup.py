"""Which stored records already hold the unique keys of some rows: the lookup every
entry path that must decide "new or existing" shares (imports' skip and upsert modes).

One indexed probe per key per chunk of rows, on the key columns of normalised
fields (engine/storage/matchkeys.py), so ``130 0000 0003`` finds the record saved
as ``+86 130-0000-0003``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from engine.records._plan import EntityPlan
from engine.records._write import duplicates


def holders(conn: Connection, plan: EntityPlan, rows: Sequence[Mapping[str, Any]]
            ) -> list[int | None]:
    """Per row, the id of a stored record holding one of its unique keys (None: new).

    Rows hold coerced field values. Every record is considered, including ones the
    caller cannot read: the caller decides what to tell (a hidden holder's id is
    never shown, only that one exists).
    """
    found: list[int | None] = [None] * len(rows)
    for dup in duplicates(conn, plan, rows):
        if dup.existing_id is not None and found[dup.index] is None:
            found[dup.index] = int(dup.existing_id)
    return found


def key_of_row(plan: EntityPlan, row: Mapping[str, Any]) -> tuple[tuple[Any, ...], ...]:
    """The normalised unique keys of one row (empty parts make a key absent: None)."""
    keys: list[tuple[Any, ...]] = []
    for spec in plan.uniques:
        k = spec.key_of(row)
        keys.append(k if None not in k else ())
    return tuple(keys)
