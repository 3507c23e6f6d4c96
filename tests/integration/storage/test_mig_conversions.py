"""The conversion rules the planner counts with and the executor applies (no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from engine.metadata.model import Source
from engine.metadata.parse import parse_field
from engine.storage.conversions import (
    ColumnSpec,
    Unconvertible,
    convert_value,
    is_widening,
    spec_of,
)
from tests.integration.storage._docs import field as field_doc
from tests.integration.storage._docs import options


def f(type_: str = "text", **extra: Any):
    return parse_field(field_doc("x", type_, **extra), source=Source())


@pytest.mark.parametrize("old,new,widening", [
    (ColumnSpec("string", 50), ColumnSpec("string", 100), True),
    (ColumnSpec("string", 100), ColumnSpec("string", 50), False),
    (ColumnSpec("string", 255), ColumnSpec("text"), True),
    (ColumnSpec("text"), ColumnSpec("string", 255), False),
    (ColumnSpec("int", 32), ColumnSpec("int", 64), True),
    (ColumnSpec("int", 64), ColumnSpec("int", 32), False),
    (ColumnSpec("int", 32), ColumnSpec("numeric", 18, 4), True),
    (ColumnSpec("int", 64), ColumnSpec("numeric", 18, 4), False),   # 19 digits do not fit 14
    (ColumnSpec("numeric", 10, 2), ColumnSpec("numeric", 12, 2), True),
    (ColumnSpec("numeric", 10, 2), ColumnSpec("numeric", 12, 4), True),
    (ColumnSpec("numeric", 10, 4), ColumnSpec("numeric", 12, 2), False),  # scale down
    (ColumnSpec("numeric", 10, 2), ColumnSpec("int", 64), False),
    (ColumnSpec("string", 64), ColumnSpec("string", 64), False),    # same: nothing to widen
])
def test_is_widening(old: ColumnSpec, new: ColumnSpec, widening: bool) -> None:
    assert is_widening(old, new) is widening


@pytest.mark.parametrize("old,new,value,expected", [
    (f(), f("integer"), " 42 ", 42),
    (f(), f("integer"), "-7", -7),
    (f(), f("decimal", precision=6, scale=2), "12.5", Decimal("12.50")),
    (f("decimal"), f("integer"), Decimal("12.0000"), 12),
    (f("integer"), f(), 12345, "12345"),
    (f(), f("boolean"), "Yes", True),
    (f(), f("date"), "2026-11-23", dt.date(2026, 11, 23)),
    (f("date"), f("datetime"), dt.date(2026, 1, 2), dt.datetime(2026, 1, 2, tzinfo=dt.UTC)),
    (f(), f("select", options=options("a", "b")), "a", "a"),
    (f("select", options=options("a")), f("multi_select", options=options("a")), "a", ["a"]),
    (f("multi_select", options=options("a", "b")), f("select", options=options("a", "b")),
     ["b"], "b"),
    (f("multi_select", options=options("a")), f("select", options=options("a")), [], None),
    (f(), f("integer"), None, None),
])
def test_values_that_convert(old: Any, new: Any, value: Any, expected: Any) -> None:
    assert convert_value(value, old=old, new=new) == expected


@pytest.mark.parametrize("old,new,value", [
    (f(), f("integer"), "abc"),
    (f(), f("integer"), "1.5"),
    (f(), f("integer"), "1_000"),        # Python would accept it; SQL would not
    (f(), f("integer", min=0, max=10), "99999999999"),  # beyond int32
    (f("decimal"), f("integer"), Decimal("12.5")),
    (f(), f("decimal", precision=4, scale=2), "123.45"),   # 3 integer digits, room for 2
    (f(), f("decimal", precision=6, scale=2), "1.234"),    # a digit lost
    (f(max_length=100), f(max_length=5), "too long"),
    (f(), f("select", options=options("a")), "z"),
    (f("multi_select", options=options("a", "b")), f("select", options=options("a", "b")),
     ["a", "b"]),
    (f(), f("date"), "23/11/2026"),
    (f(), f("boolean"), "maybe"),
    (f(), f("reference", target="account"), "1"),
])
def test_values_that_do_not_convert(old: Any, new: Any, value: Any) -> None:
    with pytest.raises(Unconvertible):
        convert_value(value, old=old, new=new)


def test_spec_of_fields() -> None:
    assert spec_of(f(max_length=80)) == ColumnSpec("string", 80)
    assert spec_of(f("long_text")) == ColumnSpec("text")
    assert spec_of(f("integer", min=0, max=100)) == ColumnSpec("int", 32)
    assert spec_of(f("integer")) == ColumnSpec("int", 64)
    assert spec_of(f("money")) == ColumnSpec("numeric", 18, 2)
    assert spec_of(f("multi_select")) == ColumnSpec("json")
