"""List queries are checked before any SQL is built: unknown names, operators, tokens, limits."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sqlalchemy import create_engine

from engine.actor import Actor
from engine.errors import QueryError
from engine.records import Filter, ListQuery, RecordService, Sort
from engine.records._plan import EntityPlan
from engine.records.autonumber import parse_format
from engine.records.query import escape_like, filter_clause, sort_plan
from engine.storage.tables import build_schema
from tests.integration.records._docs import field, registry

SCHEMA = build_schema(registry())
PLAN = EntityPlan(SCHEMA, SCHEMA.registry.entity("account"))


@pytest.fixture
def service() -> RecordService:
    # Never connected: every case must fail before a statement reaches the database.
    return RecordService(engine=create_engine("sqlite://"), schema=SCHEMA)


BAD: list[tuple[ListQuery, str, str]] = [
    (ListQuery(filters=(Filter("colour", "eq", 1),)), "colour", "unknown field"),
    (ListQuery(filters=(Filter("name", "like", "x"),)), "name", "unknown operator"),
    (ListQuery(filters=(Filter("active", "gt", True),)), "active", "does not apply"),
    (ListQuery(filters=(Filter("location", "eq", "1,2"),)), "location", "does not apply"),
    (ListQuery(filters=(Filter("employees", "contains", "1"),)), "employees", "does not apply"),
    (ListQuery(filters=(Filter("employees", "eq", "many"),)), "employees", "whole number"),
    (ListQuery(filters=(Filter("employees", "eq", None),)), "employees", "is_empty"),
    (ListQuery(filters=(Filter("employees", "in", []),)), "employees", "non-empty list"),
    (ListQuery(filters=(Filter("employees", "in", 3),)), "employees", "non-empty list"),
    (ListQuery(filters=(Filter("employees", "in", list(range(1001))),)), "employees",
     "at most 1000"),
    (ListQuery(filters=(Filter("employees", "between", [1]),)), "employees", "two values"),
    (ListQuery(filters=(Filter("name", "contains", ""),)), "name", "needs text"),
    (ListQuery(sort=Sort("notes")), "notes", "without an index"),
    (ListQuery(sort=Sort("tags")), "tags", "without an index"),
    (ListQuery(sort=Sort("nope")), "nope", "unknown field"),
    (ListQuery(limit=0), "limit", "between 1 and 200"),
    (ListQuery(limit=201), "limit", "between 1 and 200"),
    (ListQuery(after="!!!not-base64"), "", "not valid"),
    (ListQuery(after=base64.urlsafe_b64encode(b"[1,2]").decode()), "", "not valid"),
    (ListQuery(after=base64.urlsafe_b64encode(json.dumps(
        {"s": "name", "d": 0, "v": "x", "i": 1}).encode()).decode()), "", "another sort"),
    (ListQuery(after=base64.urlsafe_b64encode(json.dumps(
        {"s": "updated_at", "d": 1, "v": "yesterday", "i": 1}).encode()).decode()), "",
     "not valid"),
    (ListQuery(after=base64.urlsafe_b64encode(json.dumps(
        {"s": "updated_at", "d": 1, "v": None, "i": "1"}).encode()).decode()), "",
     "not valid"),
]


@pytest.mark.parametrize("query,field_name,message", BAD)
def test_bad_queries_are_refused(service: RecordService, query: ListQuery, field_name: str,
                                 message: str) -> None:
    with pytest.raises(QueryError) as err:
        service.list(Actor.system(), "account", query)
    assert err.value.field == field_name and message in err.value.message


def test_recycle_bin_needs_soft_delete(service: RecordService) -> None:
    with pytest.raises(QueryError) as err:
        service.list(Actor.system(), "contact", ListQuery(only_deleted=True))
    assert err.value.field == "only_deleted"


@pytest.mark.parametrize("text,escaped", [
    ("50%", "50\\%"), ("a_b", "a\\_b"), ("back\\slash", "back\\\\slash"), ("plain", "plain")])
def test_escape_like(text: str, escaped: str) -> None:
    assert escape_like(text) == escaped


@pytest.mark.parametrize("text,sort", [
    ("-updated_at", Sort("updated_at", True)), ("name", Sort("name", False)),
    (" -id ", Sort("id", True))])
def test_sort_parse(text: str, sort: Sort) -> None:
    assert Sort.parse(text) == sort


def test_sortable_fields_are_the_indexed_ones() -> None:
    assert PLAN.sortable == {"id", "created_at", "updated_at", "owner_id", "phone",
                             "licence_no", "name", "employees", "founded", "parent",
                             "manager"}


def test_values_are_bound_never_inlined() -> None:
    clause = filter_clause(PLAN, Filter("name", "contains", "x'; DROP TABLE account; --"),
                           frozenset())
    sql = str(clause.compile(compile_kwargs={}))
    assert "DROP" not in sql


def test_nullable_sort_puts_nulls_last() -> None:
    plan = sort_plan(PLAN, Sort("employees", True), frozenset())
    sql = " ".join(str(c) for c in plan.order_by(PLAN.table.c))
    assert "NULLS LAST" in sql.upper()


@pytest.mark.parametrize("fmt,now_year,seq,expected", [
    ("OPP-{YYYY}{MM}-{seq:5}", 2026, 7, "OPP-202611-00007"),
    ("{YY}{DD}/{seq}", 2026, 123, "2623/123"),
    (None, 2026, 5, "5"),
])
def test_auto_number_formats(fmt: Any, now_year: int, seq: int, expected: str) -> None:
    from datetime import datetime

    from engine.metadata.model import Source
    from engine.metadata.parse import parse_field
    f = parse_field(field("n", "auto_number", **({"format": fmt} if fmt else {})),
                    source=Source())
    parsed = parse_format(f)
    assert parsed.render(datetime(now_year, 11, 23), seq) == expected


def test_auto_number_without_seq_is_refused() -> None:
    from engine.errors import MetadataError
    from engine.metadata.model import Source
    from engine.metadata.parse import parse_field
    with pytest.raises(MetadataError):
        parse_format(parse_field(field("n", "auto_number", format="X-{YYYY}"), source=Source()))


def test_count_cap_must_be_positive(service: RecordService) -> None:
    with pytest.raises(QueryError) as err:
        service.count(Actor.system(), "account", cap=0)
    assert err.value.field == "cap"
