"""Sharing-rule conditions mean what list filters mean, on SQLite and PostgreSQL.

The permissions layer compiles conditions itself (it sits below the records
service); every (field type, operator) pair here runs through both compilers
over the same rows and must select the same ids. The operator tables of the
two are compared for every field type too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.metadata.conditions import condition_ops, condition_problem
from engine.metadata.model import CONDITION_OPS, Condition, Field, FieldType, LocalText
from engine.permissions.conditions import condition_clause
from engine.records import Filter, RecordService
from engine.records.query import Op, _allowed_ops, filter_clause
from tests.integration.permissions.conftest import make_tables


def _f(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "label": {"en": name}, **extra}


def _options(*values: str) -> list[dict[str, Any]]:
    return [{"value": v, "label": {"en": v}} for v in values]


DOCUMENT: dict[str, Any] = {"entities": {"item": {
    "name": "item", "label": {"en": "Item"}, "title_field": "name",
    "fields": [
        _f("name", "text"), _f("kind", "select", options=_options("a", "b", "c")),
        _f("tags", "multi_select", options=_options("key", "vip", "new_store")),
        _f("qty", "integer"), _f("price", "decimal", scale=2),
        _f("amount", "money", currency="CNY"), _f("ratio", "percent"), _f("active", "boolean"),
        _f("day", "date"), _f("at", "datetime"), _f("score", "rating"),
        _f("addr", "address"), _f("mail", "email"),
    ]}}}

ROWS: list[dict[str, Any]] = [
    {"name": "Alpha 50%", "kind": "a", "tags": ["key"], "qty": 1, "price": "1.50",
     "amount": {"amount": "100.00", "currency": "CNY"}, "ratio": "0.1", "active": True,
     "day": "2026-01-01", "at": "2026-01-01T08:00:00+08:00", "score": 1,
     "addr": {"city": "Shanghai"}, "mail": "a@x.cn"},
    {"name": "beta_one", "kind": "b", "tags": ["vip", "new_store"], "qty": 5, "price": "2.25",
     "amount": {"amount": "250.50", "currency": "CNY"}, "ratio": "0.5", "active": False,
     "day": "2026-03-15", "at": "2026-03-15T00:00:00+00:00", "score": 3, "mail": ""},
    {"name": "Gamma", "kind": "c", "tags": [], "qty": 10, "price": "9.99",
     "amount": {"amount": "0", "currency": "CNY"}, "ratio": "1", "active": True,
     "day": "2026-12-31", "at": "2026-12-31T23:59:59+00:00", "score": 5},
    {"name": "alphabet", "qty": 7},
    {"name": "", "kind": "a", "tags": ["key", "vip"], "price": "1.5"},
]

CASES: list[tuple[str, str, Any]] = [
    ("name", "eq", "Gamma"), ("name", "ne", "Gamma"), ("name", "in", ["Gamma", "beta_one"]),
    ("name", "contains", "ALPHA"), ("name", "starts_with", "alpha"), ("name", "contains", "%"),
    ("name", "contains", "_"), ("name", "lt", "a"), ("name", "between", ["a", "c"]),
    ("name", "is_empty", None), ("name", "not_empty", None),
    ("kind", "eq", "a"), ("kind", "ne", "a"), ("kind", "in", ["b", "c"]), ("kind", "gte", "b"),
    ("kind", "is_empty", None),
    ("tags", "contains", "key"), ("tags", "contains", "new_store"), ("tags", "is_empty", None),
    ("tags", "not_empty", None),
    ("qty", "eq", 5), ("qty", "ne", 5), ("qty", "gt", 4), ("qty", "lte", 7),
    ("qty", "between", [2, 9]), ("qty", "in", [1, 10]), ("qty", "is_empty", None),
    ("price", "eq", 1.5), ("price", "gte", 2.25), ("price", "lt", 2),
    ("amount", "gt", 99.5), ("amount", "eq", 0), ("amount", "is_empty", None),
    ("ratio", "gte", 0.5), ("active", "eq", True), ("active", "ne", True),
    ("active", "is_empty", None),
    ("day", "gte", "2026-03-15"), ("day", "between", ["2026-01-01", "2026-06-30"]),
    ("at", "lt", "2026-01-01T08:00:00+08:00"), ("at", "gte", "2026-01-01T00:00:00Z"),
    ("at", "gt", "2026-03-15T07:00:00+08:00"),
    ("score", "gte", 3), ("addr", "is_empty", None), ("addr", "not_empty", None),
    ("mail", "is_empty", None), ("mail", "not_empty", None),
]


@pytest.fixture
def items(db_engine: Engine) -> tuple[RecordService, dict[str, int]]:
    schema = make_tables(db_engine, DOCUMENT)
    service = RecordService(engine=db_engine, schema=schema)
    ids = service.bulk_create(Actor.system(), "item", ROWS)
    return service, {row["name"] or "<empty>": i for row, i in zip(ROWS, ids, strict=True)}


@pytest.mark.parametrize(("field", "op", "value"), CASES,
                         ids=[f"{f}-{o}-{v}" for f, o, v in CASES])
def test_condition_selects_what_the_filter_selects(db_engine: Engine, items: Any, field: str,
                                                   op: str, value: Any) -> None:
    service, _ = items
    plan = service.plan("item")
    entity = plan.entity
    with db_engine.connect() as conn:
        by_filter = set(conn.execute(select(plan.table.c.id).where(
            filter_clause(plan, Filter(field, op, value), frozenset()))).scalars())
        by_rule = set(conn.execute(select(plan.table.c.id).where(
            condition_clause(entity, plan.table.c, Condition(field, op, value)))).scalars())
    assert by_rule == by_filter


def test_a_condition_that_no_longer_fits_shares_nothing(db_engine: Engine, items: Any) -> None:
    service, _ = items
    plan = service.plan("item")
    with db_engine.connect() as conn:
        for cond in (Condition("gone", "eq", 1), Condition("qty", "contains", "x"),
                     Condition("kind", "eq", "zzz")):
            clause = condition_clause(plan.entity, plan.table.c, cond)
            assert conn.execute(select(plan.table.c.id).where(clause)).first() is None, cond


@pytest.mark.parametrize("field_type", list(FieldType), ids=[t.value for t in FieldType])
def test_operators_per_type_are_those_of_list_filters(field_type: FieldType) -> None:
    field = Field(name="x", type=field_type, label=LocalText())
    assert condition_ops(field_type) == {op.value for op in _allowed_ops(field)}


def test_operator_names_are_those_of_list_filters() -> None:
    assert CONDITION_OPS == tuple(op.value for op in Op)


@pytest.mark.parametrize(("field_type", "op", "value", "fragment"), [
    (FieldType.TEXT, "eq", 3, "needs text"),
    (FieldType.TEXT, "contains", "", "contains needs text"),
    (FieldType.SELECT, "eq", "zz", "not one of the options"),
    (FieldType.SELECT, "contains", "a", "does not apply"),
    (FieldType.MULTI_SELECT, "eq", "a", "does not apply"),
    (FieldType.INTEGER, "gt", 1.5, "whole number"),
    (FieldType.INTEGER, "eq", True, "whole number"),
    (FieldType.DECIMAL, "eq", "1.5", "needs a number"),
    (FieldType.BOOLEAN, "eq", "yes", "true or false"),
    (FieldType.DATE, "gte", "15/03/2026", "YYYY-MM-DD"),
    (FieldType.DATETIME, "lt", "soon", "ISO 8601"),
    (FieldType.INTEGER, "in", [], "non-empty list"),
    (FieldType.INTEGER, "in", list(range(1001)), "at most 1000"),
    (FieldType.INTEGER, "between", [1], "two values"),
    (FieldType.INTEGER, "is_empty", 3, "takes no value"),
    (FieldType.INTEGER, "eq", None, "needs a value"),
    (FieldType.GEO_POINT, "eq", 1, "does not apply"),
])
def test_bad_condition_values_are_named(field_type: FieldType, op: str, value: Any,
                                        fragment: str) -> None:
    problem = condition_problem(field_type, op, value, options=["a", "b"])
    assert problem is not None and fragment in problem


def test_good_condition_values_pass() -> None:
    assert condition_problem(FieldType.DATETIME, "gte", dt.datetime(2026, 1, 1).isoformat()) \
        is None
    assert condition_problem(FieldType.MULTI_SELECT, "contains", "a", options=["a"]) is None
    assert condition_problem(FieldType.MONEY, "between", [0, 10.5]) is None
