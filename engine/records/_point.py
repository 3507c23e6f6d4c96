"""The point-read statement of ``RecordService._scoped_row``, built once per scope shape.

Building ``SELECT ... WHERE id = :id AND (scope)`` and its cache key cost more
CPU than SQLite spends running it (issue 13: a point read was ~400x its SQL).
The scope's branch clauses are memoised per user and policy state by the access
policy, so the same objects come back request after request: keyed by their
identities (kept alive by the memoised statement itself), the statement is
built once and only the record id is bound per call.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, case, false, or_, select

from engine.records._plan import EntityPlan

#: Statements kept before the memo starts over (users x entities x shapes).
MEMO_LIMIT = 20_000
RECORD_ID = "tp_record_id"

_memo: dict[tuple[object, ...], tuple[Select[Any], tuple[object, ...]]] = {}
_lock = threading.Lock()


def point_statement(plan: EntityPlan, read: Sequence[ColumnElement[bool]],
                    allowed: Sequence[ColumnElement[bool]] | None, *,
                    deleted: bool | None) -> Select[Any]:
    """``SELECT columns, allowed AS _allowed WHERE id = :tp_record_id AND (read)``.

    ``allowed`` None means no action is asked (``_allowed`` is always 0); an empty
    sequence means the action is allowed on no row.
    """
    key = (id(plan), tuple(map(id, read)),
           None if allowed is None else tuple(map(id, allowed)), deleted)
    found = _memo.get(key)
    if found is not None:
        return found[0]
    table = plan.table
    allowed_clause: ColumnElement[Any] = or_(*allowed) if allowed else false()
    stmt = select(*plan.select_columns, case((allowed_clause, 1), else_=0).label("_allowed")) \
        .where(table.c.id == bindparam(RECORD_ID), or_(*read))
    if plan.soft_delete and deleted is not None:
        col = table.c.deleted_at
        stmt = stmt.where(col.is_not(None) if deleted else col.is_(None))
    with _lock:
        if len(_memo) >= MEMO_LIMIT:
            _memo.clear()
        # The key's objects are kept alive with the statement, so their ids stay theirs.
        _memo[key] = (stmt, (plan, tuple(read), tuple(allowed or ())))
    return stmt
