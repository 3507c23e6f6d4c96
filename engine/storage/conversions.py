"""Which column type changes are safe, and how stored values convert when they are not.

A field's storage is summarised as a ``ColumnSpec`` (kind plus size), derived from
the SQLAlchemy type ``tables.column_type`` gives it. Between two specs a change is

* the same: nothing to do on disk (labels, options, help... are metadata only);
* a widening: every value the old column can hold fits the new one (text length
  up, integer -> bigint, integer -> decimal with enough integer digits, decimal
  precision up, text -> long text). The database converts in place;
* a conversion: some values might not fit. ``convert_value`` is the one rule,
  applied in Python to each distinct stored value, both to count the rows that
  would not convert (the planner) and to rewrite them (the executor). Using the
  same function for both means the count shown in a plan is exactly what apply
  would meet, on SQLite and PostgreSQL alike, with no dialect-specific CAST.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.types import TypeEngine

from engine.metadata.model import OPTION_TYPES, Field, FieldType
from engine.storage.tables import column_type

_INT_BITS_DIGITS = {16: 5, 32: 10, 64: 19}
_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_DECIMAL_TEXT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class ColumnSpec:
    """The on-disk shape of a column: ``kind`` plus its size where one applies.

    kinds: string (size = length), text, int (size = bits), numeric (size =
    precision, scale), double, boolean, date, datetime, json.
    """

    kind: str
    size: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.kind == "string":
            return f"text({self.size})"
        if self.kind == "text":
            return "long text"
        if self.kind == "int":
            return {16: "smallint", 32: "integer", 64: "bigint"}[self.size or 32]
        if self.kind == "numeric":
            return f"decimal({self.size},{self.scale})"
        return self.kind


def spec_of_type(type_: TypeEngine[Any]) -> ColumnSpec:
    """Summarise a SQLAlchemy column type (variants resolve to their base type)."""
    if isinstance(type_, String) and not isinstance(type_, Text):
        return ColumnSpec("string", type_.length)
    if isinstance(type_, Text):
        return ColumnSpec("text")
    if isinstance(type_, BigInteger):
        return ColumnSpec("int", 64)
    if isinstance(type_, SmallInteger):
        return ColumnSpec("int", 16)
    if isinstance(type_, Integer):
        return ColumnSpec("int", 32)
    if isinstance(type_, Float):
        return ColumnSpec("double")
    if isinstance(type_, Numeric):
        return ColumnSpec("numeric", type_.precision, type_.scale)
    if isinstance(type_, Boolean):
        return ColumnSpec("boolean")
    if isinstance(type_, DateTime):
        return ColumnSpec("datetime")
    if isinstance(type_, Date):
        return ColumnSpec("date")
    if isinstance(type_, JSON):
        return ColumnSpec("json")
    raise TypeError(f"no column spec for {type_!r}")


def spec_of(field: Field) -> ColumnSpec:
    """The spec of a field's main column."""
    return spec_of_type(column_type(field))


def describe_field_type(field: Field) -> str:
    """The field type as a consultant wrote it, with the size that matters, e.g. text(50)."""
    spec = spec_of(field)
    if field.type is FieldType.TEXT:
        return f"text({spec.size})"
    if field.type in (FieldType.DECIMAL, FieldType.MONEY):
        return f"{field.type.value}({spec.size},{spec.scale})"
    if field.type is FieldType.INTEGER:
        return str(spec)
    if field.type is FieldType.REFERENCE:
        return f"reference({field.target})"
    return str(field.type.value)


def is_widening(old: ColumnSpec, new: ColumnSpec) -> bool:
    """True when every value an ``old`` column holds fits ``new`` unchanged."""
    if old == new:
        return False
    if old.kind == "string" and new.kind == "string":
        return (new.size or 0) >= (old.size or 0)
    if old.kind == "string" and new.kind == "text":
        return True
    if old.kind == "int" and new.kind == "int":
        return (new.size or 0) >= (old.size or 0)
    if old.kind == "int" and new.kind == "numeric":
        return (new.size or 0) - (new.scale or 0) >= _INT_BITS_DIGITS[old.size or 64]
    if old.kind == "numeric" and new.kind == "numeric":
        return ((new.scale or 0) >= (old.scale or 0)
                and (new.size or 0) - (new.scale or 0) >= (old.size or 0) - (old.scale or 0))
    return False


class Unconvertible(Exception):
    """A stored value that the new field type cannot hold without losing something."""


def convert_value(value: Any, *, old: Field, new: Field) -> Any:
    """The value a row holds after ``old`` becomes ``new``; raises ``Unconvertible``.

    ``None`` always converts to ``None``. Nothing is rounded or truncated: a value
    that would change meaning (12.5 -> integer, a 60-character name -> text(50),
    "abc" -> integer) is unconvertible, so the plan refuses instead of guessing.
    """
    spec = spec_of(new)
    if value is None or (value == [] and spec.kind != "json"):
        return None  # nothing chosen stays nothing chosen
    result = _to_kind(value, spec)
    if new.type in OPTION_TYPES:
        values = result if isinstance(result, list) else [result]
        if any(v not in new.option_values for v in values):
            raise Unconvertible(value)
    if new.type in (FieldType.REFERENCE, FieldType.USER) and (
        old.type is not new.type or old.target != new.target
    ):
        # Whether the target rows exist is not checked here; a column that holds
        # values must be cleared before it becomes a reference to something else.
        raise Unconvertible(value)
    return result


def _to_kind(value: Any, spec: ColumnSpec) -> Any:
    kind = spec.kind
    if kind in ("string", "text"):
        text = _as_text(value)
        if kind == "string" and spec.size is not None and len(text) > spec.size:
            raise Unconvertible(value)
        return text
    if kind == "int":
        number = _as_int(value)
        limit = 2 ** ((spec.size or 64) - 1)
        if not -limit <= number < limit:
            raise Unconvertible(value)
        return number
    if kind == "numeric":
        return _as_decimal(value, precision=spec.size or 18, scale=spec.scale or 0)
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
            raise Unconvertible(value)
        try:
            return float(value)
        except ValueError:
            raise Unconvertible(value) from None
    if kind == "boolean":
        return _as_bool(value)
    if kind == "date":
        return _as_date(value)
    if kind == "datetime":
        return _as_datetime(value)
    if kind == "json":
        if isinstance(value, (list, dict)):
            return value
        if isinstance(value, str):
            return [value]  # a single choice becomes a one-element multiple choice
        raise Unconvertible(value)
    raise Unconvertible(value)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        # multiple choice -> single: only when at most one choice was made
        if len(value) != 1 or not isinstance(value[0], str):
            raise Unconvertible(value)
        return str(value[0])
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (Decimal, float)):
        if value != int(value):
            raise Unconvertible(value)
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.match(value):
        return int(value.strip())
    raise Unconvertible(value)


def _as_decimal(value: Any, *, precision: int, scale: int) -> Decimal:
    if isinstance(value, bool):
        raise Unconvertible(value)
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise Unconvertible(value) from None
    else:
        raise Unconvertible(value)
    quantum = Decimal(1).scaleb(-scale)
    rounded = number.quantize(quantum)
    if rounded != number:
        raise Unconvertible(value)  # digits after the point would be lost
    digits = len(rounded.as_tuple().digits) if rounded else 0
    if max(digits - scale, 0) > precision - scale:
        raise Unconvertible(value)
    return rounded


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise Unconvertible(value)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise Unconvertible(value)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise Unconvertible(value) from None
    raise Unconvertible(value)


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise Unconvertible(value) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise Unconvertible(value)
