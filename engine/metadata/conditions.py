"""Conditions of sharing rules: which operators each field type takes, and which values.

The vocabulary is that of list filters (engine/records/query.py): the same
operator names, the same operators per field type and the same meaning, so a
consultant learns one language; a test keeps the two tables equal. Values are
checked here, when packages load, so a bad condition is reported as
``file:pointer: message`` instead of becoming a rule that silently shares
nothing. Compiling a condition to SQL is engine/permissions/conditions.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from engine.metadata.model import TEXT_LIKE_TYPES, Condition, ConditionGroup, FieldType

MAX_IN_VALUES = 1000

_EMPTY = frozenset({"is_empty", "not_empty"})
_EQUALITY = frozenset({"eq", "ne", "in"})
_ORDER = frozenset({"lt", "lte", "gt", "gte", "between"})
_TEXT = frozenset({"contains", "starts_with"})
_NUMBERS = frozenset({FieldType.DECIMAL, FieldType.MONEY, FieldType.PERCENT})
_WHOLE_NUMBERS = frozenset({FieldType.INTEGER, FieldType.RATING})


def condition_ops(field_type: FieldType) -> frozenset[str]:
    """The operators a field of this type accepts (as list filters do)."""
    if field_type in (FieldType.GEO_POINT, FieldType.ADDRESS, FieldType.FILE):
        return _EMPTY
    if field_type is FieldType.MULTI_SELECT:
        return _EMPTY | {"contains"}
    if field_type is FieldType.BOOLEAN:
        return _EMPTY | {"eq", "ne"}
    if field_type in (FieldType.REFERENCE, FieldType.USER):
        return _EMPTY | _EQUALITY
    if field_type in TEXT_LIKE_TYPES:
        return _EMPTY | _EQUALITY | _ORDER | _TEXT
    return _EMPTY | _EQUALITY | _ORDER


def condition_problem(field_type: FieldType, op: str, value: Any, *,
                      options: Sequence[str] = ()) -> str | None:
    """Why ``op value`` is not a valid condition on a field of this type (None if it is)."""
    if op not in condition_ops(field_type):
        return f"operator {op!r} does not apply to {field_type.value} fields"
    if op in _EMPTY:
        return None if value is None else f"{op} takes no value"
    if op == "in":
        if not isinstance(value, list) or not value:
            return "in needs a non-empty list of values"
        if len(value) > MAX_IN_VALUES:
            return f"in takes at most {MAX_IN_VALUES} values"
        return next((p for v in value if (p := _scalar_problem(field_type, v, options))), None)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return "between needs two values [low, high]"
        return next((p for v in value if (p := _scalar_problem(field_type, v, options))), None)
    if op in _TEXT and field_type is not FieldType.MULTI_SELECT:
        return None if isinstance(value, str) and value else f"{op} needs text"
    return _scalar_problem(field_type, value, options)


def _scalar_problem(field_type: FieldType, value: Any, options: Sequence[str]) -> str | None:
    if value is None:
        return "needs a value (use is_empty for empty)"
    if field_type in (FieldType.SELECT, FieldType.MULTI_SELECT):
        if value not in options:
            return f"{value!r} is not one of the options ({', '.join(map(str, options))})"
        return None
    if field_type is FieldType.BOOLEAN:
        return None if isinstance(value, bool) else "needs true or false"
    if field_type in _WHOLE_NUMBERS or field_type in (FieldType.REFERENCE, FieldType.USER):
        return None if _is_int(value) else "needs a whole number"
    if field_type in _NUMBERS:
        ok = _is_int(value) or isinstance(value, float)
        return None if ok else "needs a number"
    if field_type is FieldType.DATE:
        return None if _parses(dt.date.fromisoformat, value) else "needs a date YYYY-MM-DD"
    if field_type is FieldType.DATETIME:
        if _parses(dt.datetime.fromisoformat, value):
            return None
        return "needs an ISO 8601 date-time, e.g. 2026-01-31T08:00:00+08:00"
    return None if isinstance(value, str) else "needs text"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parses(parse: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse(value)
    except ValueError:
        return False
    return True


# --- condition trees (AND/OR groups), as pool rules declare them -----------------------

def parse_tree(doc: Any) -> Any:
    """A JSON condition tree as ``Condition`` / ``ConditionGroup`` values (None stays None).

    The shape was checked by the schema: ``{"all": [...]}``, ``{"any": [...]}``
    or ``{"field", "op", "value"}``.
    """
    if doc is None:
        return None
    for key, any_ in (("all", False), ("any", True)):
        if key in doc:
            return ConditionGroup(any=any_, items=tuple(parse_tree(d) for d in doc[key]))
    return Condition(field=doc["field"], op=doc["op"], value=doc.get("value"))


def tree_problems(doc: Any, fields: Mapping[str, Mapping[str, Any]],
                  path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(JSON path, message) for every condition of a JSON tree that does not fit ``fields``.

    ``fields`` maps a field name to its JSON declaration (``type``, ``options``).
    """
    for key in ("all", "any"):
        if isinstance(doc, dict) and key in doc:
            for i, item in enumerate(doc[key]):
                yield from tree_problems(item, fields, (*path, key, i))
            return
    field = fields.get(doc["field"])
    if field is None:
        known = ", ".join(sorted(fields))
        yield (*path, "field"), f"unknown field {doc['field']!r} (fields: {known})"
        return
    options = [o["value"] for o in field.get("options") or ()]
    problem = condition_problem(FieldType(field["type"]), doc["op"], doc.get("value"),
                                options=options)
    if problem:
        at = "op" if problem.startswith("operator") else "value"
        yield (*path, at), f"{doc['field']}: {problem}"


def tree_fields(node: Any) -> Iterator[str]:
    """The field names a parsed condition tree names (for orphan checks and indexes)."""
    if isinstance(node, ConditionGroup):
        for item in node.items:
            yield from tree_fields(item)
    elif isinstance(node, Condition):
        yield node.field
