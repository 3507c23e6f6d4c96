"""Sharing-rule conditions compiled to SQL, with the meaning list filters give them.

The permissions layer sits below the records service, so it cannot borrow
``engine.records.query.filter_clause``; this is the same translation for the
closed vocabulary of ``engine.metadata.conditions`` (values were checked when
the packages loaded). A test runs both compilers over the same rows and
demands the same ids, so a rule and the equal list filter never disagree.

A condition that no longer fits the entity (a field removed since) compiles to
``false()``: a rule that cannot be evaluated shares nothing rather than
everything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, false, func, or_

from engine.metadata.conditions import condition_problem
from engine.metadata.model import TEXT_LIKE_TYPES, Condition, Entity, FieldType

#: Stored as JSON: "no value" is SQL NULL or a JSON null (geo points excepted).
_JSON_TYPES = frozenset({FieldType.MULTI_SELECT, FieldType.ADDRESS, FieldType.FILE})
_DECIMALS = frozenset({FieldType.DECIMAL, FieldType.MONEY, FieldType.PERCENT})


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so the operand matches literally (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions_clause(entity: Entity, columns: Any,
                      where: Sequence[Condition]) -> ColumnElement[bool]:
    """AND of every condition on the table columns ``columns`` (``table.c``)."""
    return and_(*(condition_clause(entity, columns, c) for c in where))


def condition_clause(entity: Entity, columns: Any, cond: Condition) -> ColumnElement[bool]:
    """One condition as a clause; ``false()`` if it does not fit the entity any more."""
    field = next((f for f in entity.fields if f.name == cond.field), None)
    if field is None or cond.field not in columns:
        return false()
    options = [o.value for o in field.options]
    if condition_problem(field.type, cond.op, cond.value, options=options) is not None:
        return false()
    col = columns[cond.field]
    ftype = field.type
    op = cond.op
    if op in ("is_empty", "not_empty"):
        if ftype in _JSON_TYPES:
            empty = func.coalesce(cast(col, String), "null") == "null"
        elif ftype in TEXT_LIKE_TYPES or ftype is FieldType.SELECT:
            empty = or_(col.is_(None), col == "")
        else:
            empty = col.is_(None)
        return empty if op == "is_empty" else ~empty
    clause: ColumnElement[bool]
    if op == "in":
        clause = col.in_([_operand(ftype, v) for v in cond.value])
    elif op == "between":
        low, high = (_operand(ftype, v) for v in cond.value)
        clause = col.between(low, high)
    elif op in ("contains", "starts_with") and ftype is FieldType.MULTI_SELECT:
        # Options are stored as a JSON array of strings: match the quoted option.
        clause = cast(col, String).like(f'%"{escape_like(cond.value)}"%', escape="\\")
    elif op in ("contains", "starts_with"):
        pattern = escape_like(cond.value)
        clause = col.ilike(f"%{pattern}%" if op == "contains" else f"{pattern}%", escape="\\")
    else:
        return _compare(col, op, _operand(ftype, cond.value))
    return clause


def _compare(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "eq":
        return col == value  # type: ignore[no-any-return]
    if op == "ne":
        return or_(col != value, col.is_(None))  # "not X" includes the empty ones
    compared: ColumnElement[bool] = {"lt": col < value, "lte": col <= value,
                                     "gt": col > value, "gte": col >= value}[op]
    return compared


def _operand(ftype: FieldType, value: Any) -> Any:
    """The JSON operand as the Python value the column's type binds."""
    if ftype is FieldType.DATE:
        return dt.date.fromisoformat(value)
    if ftype is FieldType.DATETIME:
        parsed = dt.datetime.fromisoformat(value)
        # UTC like stored values: SQLite keeps the wall clock and drops the offset.
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None \
            else parsed.astimezone(dt.UTC)
    if ftype in _DECIMALS:
        return Decimal(str(value))
    return value
