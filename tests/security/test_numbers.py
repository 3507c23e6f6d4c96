"""Numbers, dates and ids are read with limits before any arbitrary-precision work.

A ``Decimal`` keeps its exponent apart, so ``1e999999999`` is a short text that
becomes a billion-digit integer the moment anything calls ``int()`` on it (the
server froze for minutes). Every value a column cannot hold is a 422 naming the
field (a body) or a 400 naming the parameter (a URL), on both databases.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from engine.metadata.model import Field, FieldType, LocalText
from engine.records.coerce import (
    INT64_MAX,
    MAX_ID,
    CoercionError,
    InputSource,
    coerce,
    number_limits,
    read_id,
)
from tests.security.conftest import World

HUGE = "1e999999999"
_LABEL = LocalText()
INTEGER = Field(name="n", type=FieldType.INTEGER, label=_LABEL)
DECIMAL = Field(name="d", type=FieldType.DECIMAL, label=_LABEL, precision=10, scale=2)
MONEY = Field(name="m", type=FieldType.MONEY, label=_LABEL, currency="CNY")
PERCENT = Field(name="p", type=FieldType.PERCENT, label=_LABEL)
REFERENCE = Field(name="r", type=FieldType.REFERENCE, label=_LABEL, target="x")
DATETIME = Field(name="t", type=FieldType.DATETIME, label=_LABEL)
DATE = Field(name="day", type=FieldType.DATE, label=_LABEL)

REFUSED: list[tuple[Field, Any, str]] = [
    (INTEGER, HUGE, "out of range|whole number"),
    (INTEGER, "1e1000000", "out of range|whole number"),
    (INTEGER, Decimal(HUGE), "out of range"),
    (INTEGER, Decimal("1e-999999999"), "not a whole number"),
    (INTEGER, 2**63, "out of range"),
    (INTEGER, -(2**63) - 1, "out of range"),
    (INTEGER, "9223372036854775808", "out of range|whole number"),
    (INTEGER, 1e300, "out of range"),
    (INTEGER, "1" * 101, "too long|whole number"),
    (INTEGER, "²", "whole number"),
    (DECIMAL, HUGE, "too large"),
    (DECIMAL, "123456789", "too large: at most 8 digits"),
    (DECIMAL, "1e-999999999", "digits after the decimal point"),
    (DECIMAL, Decimal("1" * 5000), "too many digits|too long"),
    (DECIMAL, "NaN", "finite"),
    (MONEY, {"amount": Decimal(HUGE), "currency": "CNY"}, "too large"),
    (MONEY, f"CNY {HUGE}", "too large"),
    (MONEY, "CNY 99999999999999999", "too large: at most 16 digits"),
    (PERCENT, "1e6", "too large"),
    (REFERENCE, 2**63, "out of range"),
    (REFERENCE, "99999999999999999999", "out of range"),
    (REFERENCE, Decimal(HUGE), "out of range"),
    (REFERENCE, 0, "positive"),
    (DATETIME, "0001-01-01T00:00:00+01:00", "out of range"),
    (DATETIME, "9999-12-31T23:59:59-01:00", "out of range"),
    (DATETIME, "2026-01-01" + " " * 100 + "x", "not a date and time"),
    (DATE, "99999-01-01", "not a date"),
]


@pytest.mark.parametrize("field,value,message", REFUSED,
                         ids=[f"{i}-{f.type.value}" for i, (f, _, _) in enumerate(REFUSED)])
@pytest.mark.parametrize("source", [InputSource.JSON, InputSource.STRING])
def test_values_a_column_cannot_hold_are_refused(field: Field, value: Any, message: str,
                                                 source: InputSource) -> None:
    if source is InputSource.STRING and not isinstance(value, (str, dict)):
        value = str(value)
    # A JSON string where a whole number belongs must be plain digits ("whole number").
    with pytest.raises(CoercionError) as err:
        coerce(field, value, source=source)
    assert any(part in str(err.value) for part in message.split("|")), str(err.value)
    assert len(str(err.value)) < 200  # the value is never echoed at length


ACCEPTED: list[tuple[Field, Any, Any]] = [
    (INTEGER, "9223372036854775807", INT64_MAX),
    (INTEGER, "-9223372036854775808", -(2**63)),
    (INTEGER, "1e3", 1000),
    (INTEGER, "1,234", 1234),
    (DECIMAL, "99999999.99", Decimal("99999999.99")),
    (DECIMAL, "1,234.50", Decimal("1234.50")),
    (DECIMAL, "0E+999999999", Decimal(0)),
    (MONEY, "CNY 9999999999999999.99", {"amount": Decimal("9999999999999999.99"),
                                        "currency": "CNY"}),
    (REFERENCE, str(MAX_ID), MAX_ID),
]


@pytest.mark.parametrize("field,value,expected", ACCEPTED,
                         ids=[f"{f.type.value}-{v}" for f, v, _ in ACCEPTED])
def test_values_at_the_limits_are_read(field: Field, value: Any, expected: Any) -> None:
    assert coerce(field, value, source=InputSource.STRING) == expected


def test_limits_follow_the_declared_precision() -> None:
    assert number_limits(DECIMAL).integer_digits == 8
    assert number_limits(MONEY).integer_digits == 16
    assert number_limits(PERCENT).integer_digits == 5
    wide = Field(name="w", type=FieldType.DECIMAL, label=_LABEL, precision=38, scale=0)
    assert coerce(wide, "9" * 38, source=InputSource.STRING) == Decimal("9" * 38)
    with pytest.raises(CoercionError, match="at most 38 digits"):
        coerce(wide, "1" + "0" * 38, source=InputSource.STRING)
    with pytest.raises(CoercionError, match="too many digits"):
        coerce(wide, 10**5000)  # a JSON integer of 5,000 digits


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "9223372036854775808", "１", "", "x"])
def test_read_id_refuses_what_is_not_an_id(text: str) -> None:
    with pytest.raises(CoercionError):
        read_id(text)
    assert read_id(str(MAX_ID)) == MAX_ID


# --- over HTTP, on both databases -------------------------------------------------------------

def _raw_post(world: World, path: str, text: str) -> Any:
    return world.client.post("/api/v1" + path, content=text.encode(),
                             headers={**world.auth("admin"), "Content-Type": "application/json"})


BODIES: list[tuple[str, str, str]] = [
    ("customer", '{"name": "x", "employees": 1e999999999}', "employees"),
    ("customer", '{"name": "x", "employees": 9223372036854775808}', "employees"),
    ("customer", '{"name": "x", "employees": "1e999999999"}', "employees"),
    ("customer", '{"name": "x", "annual_revenue": {"amount": 1e999999999, "currency": "CNY"}}',
     "annual_revenue"),
    ("customer", ('{"name": "x", "annual_revenue": {"amount": "99999999999999999999", '
                 '"currency": "CNY"}}'), "annual_revenue"),
    ("customer", '{"name": "x", "source_lead": 9223372036854775808}', "source_lead"),
    ("customer", '{"name": "x", "source_lead": 1e999999999}', "source_lead"),
    ("customer", '{"name": "x", "rating": 1e999999999}', "rating"),
    ("customer", '{"name": "x", "location": {"lat": 1e999999999, "lng": 0}}', "location"),
    ("opportunity", '{"name": "x", "customer": 1, "probability": 1e999999999}', "probability"),
    ("follow_up", ('{"customer": 1, "kind": "call", "content": "c", '
                  '"happened_at": "0001-01-01T00:00:00+01:00"}'), "happened_at"),
    ("follow_up", ('{"customer": 1, "kind": "call", "content": "c", '
                  '"happened_at": "9999-12-31T23:59:59-05:00"}'), "happened_at"),
    ("contact", '{"name": "x", "customer": 1, "birthday": "10000-01-01"}', "birthday"),
]


def test_body_values_out_of_range_are_422_naming_the_field(world: World) -> None:
    for entity, body, field_name in BODIES:
        response = _raw_post(world, f"/{entity}", body)
        assert response.status_code == 422, (body, response.text)
        assert field_name in response.json()["errors"], (body, response.json())


def test_values_at_the_column_limits_are_stored_and_read_back(world: World) -> None:
    # The largest amount a money column holds is accepted (SQLite keeps NUMERIC as a
    # double, so only PostgreSQL returns all 18 digits; both return 15 exactly).
    world.create("admin", "customer", {
        "name": "Top", "annual_revenue": {"amount": "9999999999999999.99", "currency": "CNY"}})
    customer = world.create("admin", "customer", {
        "name": "Edge", "annual_revenue": {"amount": "1234567890123.45", "currency": "CNY"},
        "employees": 10_000_000})
    got = world.get("admin", f"/customer/{customer['id']}").json()
    assert got["annual_revenue"] == {"amount": "1234567890123.45", "currency": "CNY"}
    assert got["employees"] == 10_000_000
    contact = world.create("admin", "contact", {"name": "Old", "customer": customer["id"],
                                                "birthday": "0001-01-01"})
    assert contact["birthday"] == "0001-01-01"
    # An id at the very top of the range is a clean "no such lead", not an overflow.
    response = world.post("admin", "/customer", {"name": "y", "source_lead": MAX_ID})
    assert response.status_code == 422 and "source_lead" in response.json()["errors"]


FILTERS: list[tuple[str, str]] = [
    (f"filter[employees]={HUGE}", "employees"),
    ("filter[employees]=9223372036854775808", "employees"),
    ("filter[id]=9223372036854775808", "id"),
    ("filter[id][in]=1,9223372036854775808", "id"),
    ("filter[source_lead]=99999999999999999999", "source_lead"),
    (f"filter[annual_revenue][gt]={HUGE}", "annual_revenue"),
    (f"filter[rating][between]=1,{HUGE}", "rating"),
    ("filter[created_at][gt]=0001-01-01T00:00:00%2B01:00", "created_at"),
    ("filter[name]=" + "x" * 3000, "name"),
]


def test_filter_values_out_of_range_are_400_naming_the_parameter(world: World) -> None:
    for query, param in FILTERS:
        response = world.get("admin", f"/customer?{query}")
        assert response.status_code == 400, (query[:60], response.text)
        assert param in response.json()["errors"], (query[:60], response.json())


def test_ids_at_the_top_of_the_range_reach_the_database_safely(world: World) -> None:
    assert world.get("admin", f"/customer?filter[id]={MAX_ID}").json()["items"] == []
    assert world.get("admin", f"/customer/{MAX_ID}").status_code == 404
    for path in (f"/customer/{MAX_ID + 1}", "/customer/" + "9" * 5000,
                 f"/customer/{2**64}/activity"):
        response = world.get("admin", path)
        assert response.status_code == 404, (path[:40], response.text)
    before = world.get("admin", f"/customer/1/activity?before={MAX_ID + 1}")
    assert before.status_code in (400, 404) and "Traceback" not in before.text


def _token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


TOKENS: list[dict[str, Any]] = [
    {"s": "updated_at", "d": 1, "v": None, "i": 2**63},
    {"s": "updated_at", "d": 1, "v": None, "i": 2**64},
    {"s": "updated_at", "d": 1, "v": None, "i": -1},
    {"s": "id", "d": 1, "v": 2**64, "i": 1},
    {"s": "id", "d": 1, "v": {"nested": [1]}, "i": 1},
]


def test_page_tokens_with_ids_beyond_64_bits_are_400(world: World) -> None:
    for payload in TOKENS:
        sort = "-id" if payload["s"] == "id" else "-updated_at"
        response = world.get("admin", f"/customer?sort={sort}&after={_token(payload)}")
        assert response.status_code == 400, (payload, response.text)
        assert "page token" in response.json()["detail"]


def test_a_huge_page_token_is_400(sqlite_world: World) -> None:
    response = sqlite_world.get("admin", "/customer?after=" + "A" * 20_000)
    assert response.status_code == 400


def test_versions_and_owners_beyond_64_bits_are_refused(world: World) -> None:
    customer = world.create("admin", "customer", {"name": "Versioned"})
    path = f"/customer/{customer['id']}"
    stale = world.patch("admin", path, {"name": "v", "version": 2**64})
    assert stale.status_code == 422 and "version" in stale.json()["errors"]
    assign = world.post("admin", f"{path}/assign", {"owner_id": 2**64})
    assert assign.status_code == 422 and "owner_id" in assign.json()["errors"]
