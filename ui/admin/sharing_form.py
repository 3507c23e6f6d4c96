"""The sharing-rule editor's form: inputs to a rule document, and a rule to its view.

A rule's condition is built row by row (field, operator, value), ANDed, with the
operators of the one condition compiler (``engine.metadata.model.CONDITION_OPS``,
the same as list filters). What is typed is turned into the JSON operand the rule
file holds (numbers for number fields, true/false, a list for ``in`` and
``between``); whether the operator suits the field and the value the field is
checked by the loader's cross-checks when the change is previewed, so the
editor cannot store a rule a package could not declare.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.datastructures import FormData

from engine.messages import M
from engine.metadata.model import CONDITION_OPS, Entity, FieldType
from ui.i18n import N_

#: Condition rows a rule may have (blank rows beyond those in use add conditions).
MAX_CONDITIONS = 20
#: Blank condition rows offered below the rule's own.
BLANK_ROWS = 2
#: Characters a typed value, name or description may have.
MAX_TEXT = 500
NO_VALUE_OPS = frozenset({"is_empty", "not_empty"})
LIST_OPS = frozenset({"in", "between"})
NUMBER_TYPES = frozenset({FieldType.INTEGER, FieldType.DECIMAL, FieldType.MONEY,
                          FieldType.PERCENT, FieldType.RATING})
ID_TYPES = frozenset({FieldType.REFERENCE, FieldType.USER})
OP_LABELS: Mapping[str, str] = {
    "eq": N_("equals"), "ne": N_("is not"), "in": N_("is one of (commas between)"),
    "lt": N_("less than"), "lte": N_("at most"), "gt": N_("greater than"),
    "gte": N_("at least"), "between": N_("between (low, high)"), "contains": N_("contains"),
    "starts_with": N_("starts with"), "is_empty": N_("is empty"),
    "not_empty": N_("is not empty"),
}
ACCESS_LABELS: Mapping[str, str] = {"read": N_("Read (and export)"),
                                    "write": N_("Read and update")}
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class ConditionRow:
    index: int
    field: str = ""
    op: str = "eq"
    value: str = ""


@dataclass
class ParsedRule:
    rule: dict[str, Any]
    rows: list[ConditionRow]
    departments: list[str]
    errors: dict[str, str] = field(default_factory=dict)


def _text(form: FormData, key: str) -> str:
    raw = form.get(key)
    return raw.strip() if isinstance(raw, str) else ""


def operand(ftype: FieldType, op: str, text: str) -> Any:
    """The JSON operand of a typed value (``ValueError`` with the message when it is not one)."""
    if op in NO_VALUE_OPS:
        return None
    if op in LIST_OPS:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if op == "between" and len(parts) != 2:
            raise ValueError(M("between needs two values: low, high"))
        if not parts:
            raise ValueError(M("needs at least one value"))
        return [_scalar(ftype, p) for p in parts]
    if text == "":
        raise ValueError(M("needs a value (use is_empty for empty)"))
    return _scalar(ftype, text)


def _scalar(ftype: FieldType, text: str) -> Any:
    if ftype in NUMBER_TYPES or ftype in ID_TYPES:
        try:
            number = Decimal(text.replace(",", ""))
        except InvalidOperation:
            raise ValueError(M("needs a number")) from None
        if not number.is_finite():
            raise ValueError(M("needs a number"))
        if ftype in ID_TYPES or ftype is FieldType.INTEGER or number == number.to_integral():
            return int(number)
        return float(number)
    if ftype is FieldType.BOOLEAN:
        lowered = text.lower()
        if lowered in ("true", "yes", "1", "是"):
            return True
        if lowered in ("false", "no", "0", "否"):
            return False
        raise ValueError(M("true or false"))
    return text


def parse_rule(form: FormData, entity: Entity, *, department_codes: Sequence[str]) -> ParsedRule:
    """The rule document the form describes, with a message per input it cannot read."""
    errors: dict[str, str] = {}
    name = _text(form, "name")
    if not _IDENTIFIER.fullmatch(name):
        errors["name"] = M("a lower-case identifier of at most 63 characters")
    access = _text(form, "access")
    if access not in ACCESS_LABELS:
        errors["access"] = M("one of %(value)s", value=", ".join(ACCESS_LABELS))
    description = {k: _text(form, f"description_{k}") for k in ("en", "zh-CN")}
    if any(len(v) > MAX_TEXT for v in description.values()):
        errors["description"] = M("at most %(max_length)s characters", max_length=MAX_TEXT)
    chosen = [str(c) for c in form.getlist("departments") if isinstance(c, str) and c.strip()]
    unknown = [c for c in chosen if c not in department_codes]
    if unknown:
        errors["departments"] = M("no department %(code)s", code=repr(unknown[0]))
    rows, where = [], []
    for i in range(MAX_CONDITIONS):
        fname, op = _text(form, f"c{i}_field"), _text(form, f"c{i}_op") or "eq"
        value = _text(form, f"c{i}_value")
        if not fname:
            continue
        rows.append(ConditionRow(i, fname, op, value))
        key = f"c{i}"
        if not entity.has_field(fname):
            errors[key] = M("%(entity)s has no field %(field)s", entity=entity.name,
                            field=repr(fname))
            continue
        if op not in CONDITION_OPS:
            errors[key] = M("unknown operator %(op)s", op=repr(op))
            continue
        if len(value) > MAX_TEXT:
            errors[key] = M("at most %(max_length)s characters", max_length=MAX_TEXT)
            continue
        try:
            condition: dict[str, Any] = {"field": fname, "op": op}
            parsed = operand(entity.field(fname).type, op, value)
            if op not in NO_VALUE_OPS:
                condition["value"] = parsed
        except ValueError as exc:
            errors[key] = exc.args[0]
            continue
        where.append(condition)
    if not rows:
        errors["where"] = M("add at least one condition")
    rule: dict[str, Any] = {"name": name, "entity": entity.name, "where": where,
                            "access": access}
    if any(description.values()):
        rule["description"] = {k: v for k, v in description.items() if v}
    if chosen:
        rule["departments"] = chosen
    return ParsedRule(rule=rule, rows=rows, departments=chosen, errors=errors)


def value_text(value: Any) -> str:
    """A rule's stored operand as the value input shows it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rows_of(rule: Mapping[str, Any] | None) -> list[ConditionRow]:
    """A stored rule's conditions as form rows, then blank rows to add more."""
    where = list((rule or {}).get("where") or [])[:MAX_CONDITIONS]
    rows = [ConditionRow(i, str(c.get("field", "")), str(c.get("op", "eq")),
                         value_text(c.get("value"))) for i, c in enumerate(where)]
    return with_blanks(rows)


def with_blanks(rows: Sequence[ConditionRow]) -> list[ConditionRow]:
    start = max((r.index for r in rows), default=-1) + 1
    blanks = [ConditionRow(i) for i in range(start, min(start + BLANK_ROWS, MAX_CONDITIONS))]
    return [*rows, *blanks]
