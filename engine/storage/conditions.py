"""The one condition compiler: ``field op value`` trees to SQL over an entity table.

List filters (engine/records/query.py), sharing rules (engine/permissions/
sharing_rules.py) and pool rules (engine/workflow/rules.py) all compile their
conditions here, so an operator means the same thing everywhere: ``ne`` also
matches empty fields, ``contains`` on a multi-select matches one option, text
comparisons are case-insensitive and LIKE input is escaped. It lives in the
storage layer because it is the lowest layer that knows both the field types
(metadata) and the columns they are stored in, and every user sits above it.

What differs between the users is only how an operand is read (a list filter
coerces URL text the way a form does; metadata operands are JSON checked at
load) and what a misfit means (a list filter refuses it with a 400; a sharing
rule that no longer fits its entity shares nothing). Callers pass an
``operand`` reader and catch ``ConditionError`` accordingly. Leaves the
compiler does not know (a pool rule's clocks) go to the caller's ``leaf``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, false, func, or_, true

from engine.messages import M
from engine.metadata.conditions import MAX_IN_VALUES, condition_ops
from engine.metadata.model import (
    TEXT_LIKE_TYPES,
    Condition,
    ConditionGroup,
    Field,
    FieldType,
)

#: Stored as JSON: "no value" is SQL NULL or a JSON null (geo points excepted).
JSON_EMPTY_TYPES = frozenset({FieldType.MULTI_SELECT, FieldType.ADDRESS, FieldType.FILE})
_DECIMALS = frozenset({FieldType.DECIMAL, FieldType.MONEY, FieldType.PERCENT})
_EMPTY = frozenset({"is_empty", "not_empty"})
_TEXT = frozenset({"contains", "starts_with"})
#: Longest text compared by contains/starts_with: the longest text column. Also keeps a
#: LIKE pattern far below SQLite's 50,000-byte limit (past it: a server error).
MAX_TEXT_OPERAND = 2048

#: Reads one operand: (field, raw value) -> the Python value the column binds.
Operand = Callable[[Field, Any], Any]
#: Compiles a leaf the compiler does not know (e.g. a pool rule's clock condition).
Leaf = Callable[[Any], ColumnElement[bool]]


class ConditionError(Exception):
    """A condition that cannot be compiled: which field, and why (in words)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def escape_like(text: str) -> str:
    """Escape LIKE wildcards so the operand matches literally (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def json_operand(field: Field, value: Any) -> Any:
    """A JSON operand (checked when the metadata loaded) as the value its column binds."""
    if value is None:
        raise ConditionError(field.name, M("needs a value (use is_empty for empty)"))
    ftype = field.type
    if ftype is FieldType.DATE:
        return dt.date.fromisoformat(value)
    if ftype is FieldType.DATETIME:
        parsed = dt.datetime.fromisoformat(value)
        # UTC like stored values: SQLite keeps the wall clock and drops the offset.
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None \
            else parsed.astimezone(dt.UTC)
    if ftype in _DECIMALS:
        return Decimal(str(value.get("amount") if isinstance(value, dict) else value))
    return value


def condition_clause(cond: Condition, *, field: Field, column: Any,
                     operand: Operand = json_operand) -> ColumnElement[bool]:
    """One ``field op value`` on ``column``; raises ``ConditionError`` on a misfit."""
    op = cond.op
    ftype = field.type
    if op not in condition_ops(ftype):
        known = op in _EMPTY or op in _TEXT or op in {"eq", "ne", "in", "lt", "lte", "gt",
                                                       "gte", "between"}
        if not known:
            raise ConditionError(field.name, M("unknown operator %(op)s", op=repr(op)))
        raise ConditionError(field.name, M("operator %(op)s does not apply to %(type)s fields",
                                           op=op, type=ftype.value))
    col = column
    if op in _EMPTY:
        if ftype in JSON_EMPTY_TYPES:
            empty = func.coalesce(cast(col, String), "null") == "null"
        elif ftype in TEXT_LIKE_TYPES or ftype is FieldType.SELECT:
            empty = or_(col.is_(None), col == "")
        else:
            empty = col.is_(None)
        return empty if op == "is_empty" else ~empty
    value = cond.value
    if op == "in":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConditionError(field.name, M("in needs a non-empty list of values"))
        if len(value) > MAX_IN_VALUES:
            raise ConditionError(field.name, M("in takes at most %(max_in_values)s values",
                                               max_in_values=MAX_IN_VALUES))
        return col.in_([operand(field, v) for v in value])  # type: ignore[no-any-return]
    if op == "between":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConditionError(field.name, M("between needs two values [low, high]"))
        low, high = (operand(field, v) for v in value)
        return col.between(low, high)  # type: ignore[no-any-return]
    if op in _TEXT:
        if not isinstance(value, str) or not value:
            raise ConditionError(field.name, M("%(value)s needs text", value=op))
        if len(value) > MAX_TEXT_OPERAND:
            raise ConditionError(field.name, M("the value is longer than %(n)s characters",
                                               n=MAX_TEXT_OPERAND))
        if ftype is FieldType.MULTI_SELECT:
            # Options are stored as a JSON array of strings: match the quoted option.
            option = operand(field, value)
            return cast(col, String).like(f'%"{escape_like(option)}"%', escape="\\")
        pattern = escape_like(value)
        pattern = f"%{pattern}%" if op == "contains" else f"{pattern}%"
        return col.ilike(pattern, escape="\\")  # type: ignore[no-any-return]
    bound = operand(field, value)
    if op == "eq":
        return col == bound  # type: ignore[no-any-return]
    if op == "ne":
        return or_(col != bound, col.is_(None))  # "not X" includes the empty ones
    compared: ColumnElement[bool] = {"lt": col < bound, "lte": col <= bound,
                                     "gt": col > bound, "gte": col >= bound}[op]
    return compared


def tree_clause(node: Condition | ConditionGroup | Any, *, fields: Mapping[str, Field],
                columns: Any, operand: Operand = json_operand,
                leaf: Leaf | None = None) -> ColumnElement[bool]:
    """A condition tree (AND/OR groups of conditions) as one clause.

    ``fields`` are the fields that may be named (an unknown one raises
    ``ConditionError``); ``leaf`` compiles nodes that are neither a condition
    nor a group. An empty ``all`` group is true and an empty ``any`` false, as
    in logic.
    """
    if isinstance(node, ConditionGroup):
        parts = [tree_clause(n, fields=fields, columns=columns, operand=operand, leaf=leaf)
                 for n in node.items]
        if node.any:
            return or_(false(), *parts) if parts else false()
        return and_(true(), *parts) if parts else true()
    if isinstance(node, Condition):
        field = fields.get(node.field)
        if field is None or node.field not in columns:
            raise ConditionError(node.field, "unknown field")
        return condition_clause(node, field=field, column=columns[node.field],
                                operand=operand)
    if leaf is None:
        raise ConditionError("", f"unknown condition {node!r}")
    return leaf(node)
