"""Checks of one field definition on its own: ranges, defaults, patterns, formats.

Used by ``crosscheck``; each function yields (path inside the field, message).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any

from engine.metadata.model import NUMERIC_TYPES, OPTION_TYPES, FieldType

Problem = tuple[tuple[Any, ...], str]

#: Types a (single-field or composite) unique key may use: values with a stable,
#: indexable equality. JSON, long text, floats-with-currency and geo points have none.
UNIQUE_TYPES = frozenset({
    FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL, FieldType.INTEGER,
    FieldType.DECIMAL, FieldType.DATE, FieldType.REFERENCE, FieldType.AUTO_NUMBER,
})
#: Types whose values are short enough to name a record or be searched.
TITLE_TYPES = frozenset({
    FieldType.TEXT, FieldType.LONG_TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL,
    FieldType.RICH_TEXT, FieldType.AUTO_NUMBER,
})
_FORMAT_TOKEN = re.compile(r"\{([^{}]*)\}")
_DATE_TOKENS = frozenset({"YYYY", "YY", "MM", "DD"})
_SEQ_TOKEN = re.compile(r"^seq(:([1-9]|1[0-9]))?$")
_DEFAULT_PRECISION = 18


def field_problems(field: Mapping[str, Any]) -> Iterator[Problem]:
    """Every problem of one schema-valid field document."""
    ftype = FieldType(field["type"])
    yield from _range_problems(field)
    if "pattern_message" in field and "pattern" not in field:
        yield ("pattern_message",), "a pattern_message needs a pattern"
    if "pattern" in field:
        try:
            re.compile(field["pattern"])
        except re.error as exc:
            yield ("pattern",), f"invalid regular expression: {exc}"
    if field.get("unique") and ftype not in UNIQUE_TYPES:
        yield ("unique",), (f"a field of type {ftype.value!r} cannot be unique (allowed: "
                            f"{', '.join(sorted(t.value for t in UNIQUE_TYPES))})")
    if field.get("required") and field.get("on_delete") == "set_null":
        yield ("on_delete",), ("a required field cannot be cleared when its target is deleted; "
                               "use restrict or cascade")
    if ftype in OPTION_TYPES:
        seen: dict[str, int] = {}
        for j, option in enumerate(field.get("options") or ()):
            if option["value"] in seen:
                yield (("options", j, "value"),
                       (f"duplicate option value {option['value']!r} (also option "
                        f"{seen[option['value']]})"))
            seen.setdefault(option["value"], j)
    if ftype is FieldType.AUTO_NUMBER:
        problem = format_problem(field["format"])
        if problem:
            yield ("format",), problem
    if "default" in field:
        problem = default_problem(field, ftype)
        if problem:
            yield ("default",), problem


def _range_problems(field: Mapping[str, Any]) -> Iterator[Problem]:
    if "min" in field and "max" in field and field["min"] > field["max"]:
        yield ("min",), f"min {field['min']} is greater than max {field['max']}"
    if ("min_length" in field and "max_length" in field
            and field["min_length"] > field["max_length"]):
        yield (("min_length",),
               f"min_length {field['min_length']} is greater than max_length {field['max_length']}")
    if "scale" in field and field["scale"] > field.get("precision", _DEFAULT_PRECISION):
        yield (("scale",),
               (f"scale {field['scale']} is greater than precision "
                f"{field.get('precision', _DEFAULT_PRECISION)}"))


def format_problem(fmt: str) -> str | None:
    """Why an auto_number format cannot generate codes, or None."""
    tokens = _FORMAT_TOKEN.findall(fmt)
    unknown = [t for t in tokens if t not in _DATE_TOKENS and not _SEQ_TOKEN.match(t)]
    if unknown:
        return (f"unknown placeholder {{{unknown[0]}}}; use {{YYYY}}, {{YY}}, {{MM}}, {{DD}}, "
                "{seq} or {seq:N}")
    if sum(1 for t in tokens if _SEQ_TOKEN.match(t)) != 1:
        return "the format needs exactly one {seq} or {seq:N} placeholder"
    if "{" in _FORMAT_TOKEN.sub("", fmt) or "}" in _FORMAT_TOKEN.sub("", fmt):
        return "unbalanced '{' or '}' in the format"
    return None


def default_problem(field: Mapping[str, Any], ftype: FieldType) -> str | None:
    """Why a (schema-typed) default value does not fit the field, or None."""
    value = field["default"]
    options = [o["value"] for o in field.get("options") or ()]
    if ftype is FieldType.SELECT and value not in options:
        return f"default {value!r} is not one of the options ({', '.join(options)})"
    if ftype is FieldType.MULTI_SELECT:
        missing = [v for v in value if v not in options]
        if missing:
            return f"default {missing[0]!r} is not one of the options ({', '.join(options)})"
    if ftype in NUMERIC_TYPES:
        if "min" in field and value < field["min"]:
            return f"default {value} is below min {field['min']}"
        if "max" in field and value > field["max"]:
            return f"default {value} is above max {field['max']}"
    if isinstance(value, str) and ftype not in OPTION_TYPES:
        if "max_length" in field and len(value) > field["max_length"]:
            return f"default is longer than max_length {field['max_length']}"
        if "min_length" in field and len(value) < field["min_length"]:
            return f"default is shorter than min_length {field['min_length']}"
        if "pattern" in field:
            try:
                if not re.fullmatch(field["pattern"], value):
                    return f"default {value!r} does not match the pattern"
            except re.error:
                return None  # reported on the pattern itself
    if ftype is FieldType.DATE and value != "today":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"default {value!r} is not a real date"
    if ftype is FieldType.DATETIME and value != "now":
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return f"default {value!r} is not a real date-time"
    return None
