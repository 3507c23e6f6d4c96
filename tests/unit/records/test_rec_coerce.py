"""Coercion: round trips for every field type (hypothesis), lenient strings, clear failures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.metadata.model import Field, FieldType, LocalText, Option
from engine.records.coerce import (
    CoercionError,
    InputSource,
    coerce,
    to_json,
    to_string,
    web_address,
)

OPTIONS = tuple(Option(v, LocalText.of({"en": v.upper(), "zh-CN": f"选{v}"}))
                for v in ("red", "green", "blue"))


def make(type_: FieldType, **extra: Any) -> Field:
    return Field(name="f", type=type_, label=LocalText.of({"en": "f"}), **extra)


_single_line = st.text(min_size=1, max_size=40).map(str.strip).filter(bool)
_multi_line = st.text(min_size=1, max_size=80).filter(lambda s: bool(s.strip()))
_offsets = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60))

STRATEGIES: dict[FieldType, st.SearchStrategy[Any]] = {
    FieldType.TEXT: _single_line,
    FieldType.EMAIL: _single_line,
    FieldType.PHONE: _single_line,
    FieldType.URL: _single_line.map(web_address),  # stored addresses are IRIs
    FieldType.AUTO_NUMBER: _single_line,
    FieldType.LONG_TEXT: _multi_line,
    FieldType.RICH_TEXT: _multi_line,
    FieldType.INTEGER: st.integers(-(2**63), 2**63 - 1),
    FieldType.RATING: st.integers(1, 10),
    FieldType.DECIMAL: st.decimals(allow_nan=False, allow_infinity=False, places=4,
                                   min_value=-(10**14) + 1, max_value=10**14 - 1),
    FieldType.PERCENT: st.decimals(allow_nan=False, allow_infinity=False, places=4,
                                   min_value=-1000, max_value=1000),
    FieldType.MONEY: st.fixed_dictionaries({
        "amount": st.decimals(allow_nan=False, allow_infinity=False, places=2,
                              min_value=-(10**12), max_value=10**12),
        "currency": st.sampled_from(["CNY", "USD", "EUR", "JPY"])}),
    FieldType.BOOLEAN: st.booleans(),
    FieldType.DATE: st.dates(),
    FieldType.DATETIME: st.datetimes(min_value=datetime(1900, 1, 1),
                                     max_value=datetime(2200, 1, 1), timezones=_offsets),
    FieldType.SELECT: st.sampled_from([o.value for o in OPTIONS]),
    FieldType.MULTI_SELECT: st.lists(st.sampled_from([o.value for o in OPTIONS]),
                                     min_size=1, unique=True),
    FieldType.REFERENCE: st.integers(1, 2**62),
    FieldType.USER: st.integers(1, 2**62),
    FieldType.GEO_POINT: st.fixed_dictionaries({
        "lat": st.floats(-90, 90, allow_nan=False), "lng": st.floats(-180, 180, allow_nan=False)}),
    FieldType.ADDRESS: st.dictionaries(_single_line, st.text(max_size=20), min_size=1,
                                       max_size=4),
    FieldType.FILE: st.fixed_dictionaries({"name": _single_line,
                                           "size": st.integers(0, 10**9),
                                           "content_type": st.sampled_from(["image/png",
                                                                            "text/csv"])}),
}


def test_every_field_type_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(FieldType)


def _field(type_: FieldType) -> Field:
    return make(type_, options=OPTIONS) if type_ in (FieldType.SELECT,
                                                     FieldType.MULTI_SELECT) else make(type_)


@pytest.mark.parametrize("type_", list(FieldType), ids=[t.value for t in FieldType])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_through_json_and_string(type_: FieldType, data: st.DataObject) -> None:
    f = _field(type_)
    value = data.draw(STRATEGIES[type_])
    as_json = to_json(f, value)
    assert coerce(f, as_json) == value
    text = to_string(f, value)
    assert isinstance(text, str)
    assert coerce(f, text, source=InputSource.STRING) == value


@pytest.mark.parametrize("type_", list(FieldType), ids=[t.value for t in FieldType])
def test_none_and_empty_are_empty(type_: FieldType) -> None:
    f = _field(type_)
    assert coerce(f, None) is None
    assert coerce(f, "", source=InputSource.STRING) is None
    assert to_json(f, None) is None and to_string(f, None) == ""


GOOD: list[tuple[FieldType, Any, Any]] = [
    (FieldType.INTEGER, "1,234", 1234),
    (FieldType.INTEGER, " -7 ", -7),
    (FieldType.INTEGER, "1e3", 1000),
    (FieldType.DECIMAL, "1,234.50", Decimal("1234.50")),
    (FieldType.PERCENT, "12.5%", Decimal("12.5")),
    (FieldType.BOOLEAN, "是", True),
    (FieldType.BOOLEAN, "否", False),
    (FieldType.BOOLEAN, "Yes", True),
    (FieldType.BOOLEAN, "0", False),
    (FieldType.BOOLEAN, "TRUE", True),
    (FieldType.DATE, "2026/11/23", date(2026, 11, 23)),
    (FieldType.DATETIME, "2026-11-23 10:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
    (FieldType.DATETIME, "2026-11-23T18:00+08:00", datetime(2026, 11, 23, 10, tzinfo=UTC)),
    (FieldType.MONEY, "USD 12.50", {"amount": Decimal("12.50"), "currency": "USD"}),
    (FieldType.MONEY, "12.50 usd", {"amount": Decimal("12.50"), "currency": "USD"}),
    (FieldType.MULTI_SELECT, "red, blue，red", ["red", "blue"]),
    (FieldType.SELECT, "GREEN", "green"),
    (FieldType.SELECT, "选blue", "blue"),
    (FieldType.GEO_POINT, " 31.2 , 121.5 ", {"lat": 31.2, "lng": 121.5}),
    (FieldType.ADDRESS, "1 Main Road", {"text": "1 Main Road"}),
    (FieldType.REFERENCE, "42", 42),
]


@pytest.mark.parametrize("type_,raw,expected", GOOD)
def test_lenient_strings(type_: FieldType, raw: Any, expected: Any) -> None:
    assert coerce(_field(type_), raw, source=InputSource.STRING) == expected


JSON_GOOD: list[tuple[FieldType, Any, Any]] = [
    (FieldType.INTEGER, 3.0, 3),
    (FieldType.DECIMAL, 0.1, Decimal("0.1")),
    (FieldType.DECIMAL, "0.10", Decimal("0.10")),
    (FieldType.BOOLEAN, 1, True),
    (FieldType.MONEY, 5, {"amount": Decimal(5), "currency": "CNY"}),
    (FieldType.MONEY, {"amount": 5, "currency": "usd"}, {"amount": Decimal(5), "currency": "USD"}),
    (FieldType.GEO_POINT, [1, 2], {"lat": 1.0, "lng": 2.0}),
    (FieldType.REFERENCE, {"id": 9}, 9),
    (FieldType.DATETIME, datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("type_,raw,expected", JSON_GOOD)
def test_json_values(type_: FieldType, raw: Any, expected: Any) -> None:
    f = make(type_, currency="CNY") if type_ is FieldType.MONEY else _field(type_)
    assert coerce(f, raw) == expected


BAD: list[tuple[FieldType, Any, str]] = [
    (FieldType.TEXT, 12, "expected text"),
    (FieldType.INTEGER, "1.5", "not a whole number"),
    (FieldType.INTEGER, True, "whole number"),
    (FieldType.INTEGER, "abc", "not a whole number"),
    (FieldType.DECIMAL, "NaN", "finite"),
    (FieldType.DECIMAL, float("inf"), "finite"),
    (FieldType.DECIMAL, [], "expected a number"),
    (FieldType.BOOLEAN, "maybe", "not yes/no"),
    (FieldType.BOOLEAN, 2, "true or false"),
    (FieldType.DATE, "23.11.2026", "not a date"),
    (FieldType.DATE, datetime(2026, 1, 1), "without a time"),
    (FieldType.DATETIME, 5, "date and time"),
    (FieldType.MONEY, "12.50", "give a currency"),
    (FieldType.MONEY, {"amount": 1, "currency": "US"}, "three-letter"),
    (FieldType.MONEY, {"amount": 1, "cur": "USD"}, "unknown money part"),
    (FieldType.GEO_POINT, "north", "latitude,longitude"),
    (FieldType.GEO_POINT, {"lat": 0, "lng": 181}, "longitude 181"),
    (FieldType.GEO_POINT, {"lat": 1}, "lat and lng"),
    (FieldType.MULTI_SELECT, 7, "list of option values"),
    (FieldType.SELECT, 7, "option value"),
    (FieldType.ADDRESS, "{not json", "JSON object"),
    (FieldType.FILE, [1], "expected an object"),
    (FieldType.REFERENCE, -3, "record id"),
    (FieldType.USER, "x", "whole number"),
]


@pytest.mark.parametrize("type_,raw,message", BAD)
def test_failures_say_what_is_wrong(type_: FieldType, raw: Any, message: str) -> None:
    f = _field(type_)
    with pytest.raises(CoercionError) as err:
        coerce(f, raw, source=InputSource.STRING if isinstance(raw, str) else InputSource.JSON)
    assert message in str(err.value)


@pytest.mark.parametrize("typed,stored", [
    ('https://x.example/?q="a b"', "https://x.example/?q=%22a%20b%22"),
    ("https://例子.测试/路径", "https://例子.测试/路径"),
    ("https://x.example/100%", "https://x.example/100%25"),
    ("https://x.example/a%2Fb{|}", "https://x.example/a%2Fb%7B%7C%7D"),
])
def test_web_addresses_are_kept_as_iris(typed: str, stored: str) -> None:
    f = _field(FieldType.URL)
    assert coerce(f, typed) == stored
    assert coerce(f, stored) == stored  # reading a stored address again changes nothing
