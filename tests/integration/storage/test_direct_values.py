"""The hot path (engine/storage/direct.py) reads exactly what ``Connection.execute`` reads.

On PostgreSQL that path writes a statement's fixed LIMIT into its SQL and sends integer
parameters typed as their columns (``Int8`` for a ``BigInteger``), so that the server
keeps one generic plan for a list page instead of planning every call. Every field type
and every CRM entity, read through it and through ``through_connection()``, must give
the same values of the same types on both databases; an integer out of its column's
range must give the error that path gives; and the plan must be the generic one.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, select, text

from engine.actor import Actor
from engine.demo import prepare_demo
from engine.metadata.model import FieldType
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records import ListQuery, RecordService
from engine.records.query import Filter, Op, Sort
from engine.runtime import LiveRuntime
from engine.storage.database import make_engine
from engine.storage.direct import direct_rows, through_connection
from engine.storage.tables import StorageSchema
from tests.integration.records._docs import add_user, create_tables, field, label, options
from ui.api.app import json_response

CRM = Path(__file__).resolve().parents[3] / "apps" / "crm"

#: A field of every type (an integer field twice: one column is ``Integer``, one ``BigInteger``).
SAMPLE: dict[str, Any] = {
    "name": "sample", "label": label("Sample"), "title_field": "name",
    "features": ["owned", "activity", "soft_delete"],
    "fields": [
        field("name", "text", required=True, max_length=100),
        field("body", "long_text"),
        field("count", "integer", min=-1000, max=1000000),
        field("big", "integer"),
        field("ratio", "decimal", precision=10, scale=3),
        field("price", "money", currency="CNY"),
        field("share", "percent"),
        field("active", "boolean"),
        field("day", "date"),
        field("due", "datetime"),
        field("tier", "select", options=options("gold", "silver")),
        field("tags", "multi_select", options=options("a", "b", "c")),
        field("parent", "reference", target="sample"),
        field("manager", "user"),
        field("email", "email"),
        field("phone", "phone"),
        field("website", "url"),
        field("location", "geo_point"),
        field("address", "address"),
        field("story", "rich_text"),
        field("stars", "rating"),
        field("logo", "file", accept=["image/*"], max_size=1000),
        field("number", "auto_number", format="S-{seq:4}"),
    ],
    "indexes": [{"fields": ["count"]}, {"fields": ["big"]}, {"fields": ["day"]},
                {"fields": ["name"]}],
    "search_fields": ["name"],
}
FULL: dict[str, Any] = {
    "name": "Acme 上海", "body": "line one\nline two", "count": 120, "big": 2**62 + 7,
    "ratio": "12.345", "price": {"amount": "1234.50", "currency": "CNY"}, "share": "0.375",
    "active": True, "day": "2019-04-01", "due": "2026-12-01T09:30:15.123456+00:00",
    "tier": "gold", "tags": ["a", "c"], "email": "a@acme.example", "phone": "+86 21 5555 0101",
    "website": "https://acme.example/", "location": {"lat": 31.230416, "lng": 121.473701},
    "address": {"street": "1 Nanjing Rd 南京路", "city": "Shanghai", "zip": "200001"},
    "story": "<p>rich <b>text</b></p>", "stars": 4,
}
#: An equality filter per filterable field type, matching FULL (or the manager / parent set).
EQUALS: dict[str, Any] = {
    "name": "Acme 上海", "count": 120, "big": 2**62 + 7, "ratio": "12.345", "share": "0.375",
    "active": True, "day": "2019-04-01", "due": "2026-12-01T09:30:15.123456+00:00",
    "tier": "gold", "email": "a@acme.example", "website": "https://acme.example/",
    "stars": 4,
}


def typed(value: Any) -> Any:
    """``value`` with each part's type beside it (and an instant's UTC offset)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [typed(v) for v in value]
    offset = value.utcoffset() if isinstance(value, dt.datetime) else None
    return type(value).__name__, value, offset


def _both(read: Any) -> tuple[Any, Any]:
    """``read()`` on the hot path and through a ``Connection``."""
    direct = read()
    with through_connection():
        return direct, read()


def _pages(service: RecordService, actor: Actor, entity: str, query: ListQuery) -> list[Any]:
    """Every page of ``query`` (its records' values, typed, and the tokens)."""
    found: list[Any] = []
    while True:
        page = service.list(actor, entity, query)
        found.append(([typed(dict(r)) for r in page.rows], page.next_token, page.has_more))
        if page.next_token is None:
            return found
        query = ListQuery(filters=query.filters, sort=query.sort, limit=query.limit,
                          after=page.next_token)


def _json(service: RecordService, actor: Actor, entity: str, query: ListQuery) -> bytes:
    """The API's body for one ``list_json`` page (its JSON documents may be fragments)."""
    page = service.list_json(actor, entity, query)
    return bytes(json_response({"items": page.rows, "next_token": page.next_token}).body)


def _same_reads(service: RecordService, actor: Actor, entity: str,
                queries: list[ListQuery]) -> int:
    """Assert every read of ``entity`` is the same on both paths; how many records."""
    seen = 0
    for query in queries:
        direct, through = _both(lambda q=query: _pages(service, actor, entity, q))
        assert direct == through, (entity, query)
        direct_json, through_json = _both(lambda q=query: _json(service, actor, entity, q))
        assert direct_json == through_json, (entity, query)
        seen = max(seen, sum(len(rows) for rows, _, _ in direct))
    for rows, _, _ in _pages(service, actor, entity, ListQuery(limit=100)):
        for values in rows:
            record_id = values["id"][1]
            one, other = _both(lambda i=record_id: typed(dict(service.get(actor, entity, i))))
            assert one == other == values, (entity, record_id)
    return seen


@pytest.fixture
def sample(db_engine: Engine) -> Iterator[tuple[RecordService, StorageSchema]]:
    schema = create_tables(db_engine, SAMPLE)
    service = RecordService(engine=db_engine, schema=schema)
    system = Actor.system("test")
    manager = add_user(db_engine, schema, "mgr")
    first = service.create(system, "sample", {**FULL, "manager": manager})
    service.create(system, "sample", {"name": "Bare"})  # nulls everywhere
    service.create(system, "sample", {
        "name": "Edge", "parent": first.id, "count": -1000, "big": -(2**63), "stars": 1,
        "ratio": "-0.001", "day": "0001-01-01", "due": "1970-01-01T00:00:00+00:00",
        "tags": [], "location": {"lat": -33.5, "lng": 0.0}, "active": False})
    yield service, schema


def test_every_field_type_reads_as_through_a_connection(
        sample: tuple[RecordService, StorageSchema]) -> None:
    service, schema = sample
    declared = {f.type for f in service.plan("sample").entity.fields}
    assert declared == set(FieldType)  # the sample covers every field type
    system = Actor.system("test")
    queries = [ListQuery(limit=1), ListQuery(limit=2, sort=Sort("count", descending=False)),
               ListQuery(limit=1, sort=Sort("big")), ListQuery(limit=1, sort=Sort("day")),
               ListQuery(limit=2, sort=Sort("name", descending=False))]
    assert _same_reads(service, system, "sample", queries) == 3
    first = service.list(system, "sample", ListQuery(filters=(Filter("name", Op.EQ, "Acme 上海"),)))
    manager, parent = first.rows[0]["manager"], first.rows[0]["id"]
    for name, value in {**EQUALS, "manager": manager, "parent": parent}.items():
        query = ListQuery(filters=(Filter(name, Op.EQ, value),), limit=5)
        direct, through = _both(lambda q=query: _pages(service, system, "sample", q))
        assert direct == through and len(direct[0][0]) == 1, (name, direct)
    # Every column as stored, system columns included.
    table = schema.table("sample")
    direct, through = _both(lambda: [typed(r) for r in direct_rows(
        service.engine, select(table).order_by(table.c.id), {})])
    assert direct == through and len(direct) == 3


def test_every_crm_entity_reads_as_through_a_connection(db_url: str) -> None:
    prepare_demo(db_url, apps=[CRM], out=io.StringIO(), rows=4)
    live = LiveRuntime(db_url, policy_factory=CasbinAccessPolicy)
    try:
        runtime = live.current()
        with runtime.engine.connect() as conn:
            rep = find_user(conn, "rep_east1")
        assert rep is not None
        actors = [Actor.system("test"), runtime.policy.actor_for(rep.id, login=rep.login)]
        read = 0
        for entity in runtime.registry.entities:
            for actor in actors:
                read += _same_reads(runtime.records, actor, entity,
                                    [ListQuery(limit=2), ListQuery(limit=50)])
        assert read > 0
    finally:
        live.dispose()


def _statements(engine: Engine) -> list[tuple[str, Any]]:
    """What the cursor listeners see from here on (SQL and parameters)."""
    seen: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, *_: seen.append((sql, params)))
    return seen


@pytest.mark.postgres
def test_a_list_page_has_its_limit_written_in_and_integers_sent_typed(pg_url: str) -> None:
    """On PostgreSQL the page's LIMIT is in its SQL and ids go as ``bigint`` whatever
    their size (psycopg sends a small int as ``smallint``); ``Connection.execute`` still
    sends what SQLAlchemy sends."""
    from psycopg.types.numeric import Int2, Int4, Int8

    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        schema = create_tables(engine, SAMPLE)
        service = RecordService(engine=engine, schema=schema)
        system = Actor.system("test")
        for n in range(3):
            service.create(system, "sample", {"name": f"r{n}", "count": n, "stars": 3})
        seen = _statements(engine)
        page = service.list(system, "sample", ListQuery(limit=2))
        service.list(system, "sample", ListQuery(limit=2, after=page.next_token))
        service.list(system, "sample", ListQuery(filters=(Filter("count", Op.EQ, 1),
                                                          Filter("stars", Op.EQ, 3)), limit=2))
        (first, _), (second, after), (filtered, values) = seen
        for sql in (first, second, filtered):
            assert re.search(r"\bLIMIT 3\b", sql) and "LIMIT %(" not in sql, sql
        assert type(after["after_id"]) is Int8 and after["after_id"] == page.rows[-1].id
        assert sorted(type(v).__name__ for v in values.values()) == ["Int2", "Int4"]
        assert {type(v) for v in values.values()} == {Int2, Int4}
        service.get(system, "sample", page.rows[0].id)
        assert type(seen[-1][1]["tp_record_id"]) is Int8
        with through_connection():  # SQLAlchemy's own path is left as it is
            service.list(system, "sample", ListQuery(limit=2))
        assert re.search(r"LIMIT %\(\w+\)s", seen[-1][0])
        with engine.connect() as conn:  # what the server prepared: one type per parameter
            types = conn.execute(text(
                "SELECT parameter_types::text[] FROM pg_prepared_statements")).scalars().all()
        assert not any("smallint" in t and "bigint" not in t for t in types)
    finally:
        engine.dispose()


def test_an_out_of_range_integer_gives_the_error_of_a_connection(db_engine: Engine) -> None:
    """An int too large for its column's type is not sent typed (it cannot be): it gets
    what ``Connection.execute`` gives for it, and the reader goes on working."""
    schema = create_tables(db_engine, SAMPLE)
    table = schema.table("sample")
    service = RecordService(engine=db_engine, schema=schema)
    made = service.create(Actor.system("test"), "sample", {"name": "one", "count": 5})
    by_id = select(table.c.name).where(table.c.id == bindparam("id"))
    by_count = select(table.c.name).where(table.c.count == bindparam("count"))
    for stmt, key, value in ((by_id, "id", 2**63), (by_id, "id", -(2**63) - 1),
                             (by_count, "count", 2**31), (by_count, "count", 2**63)):
        outcomes = []
        for through in (False, True):
            with through_connection() if through else nullcontext():
                try:
                    outcomes.append(direct_rows(db_engine, stmt, {key: value}))
                except Exception as exc:  # noqa: BLE001 - compared with the other path's
                    outcomes.append((type(exc), str(exc).split("\n")[0]))
        assert outcomes[0] == outcomes[1], (key, value, outcomes)
        if db_engine.dialect.name == "postgresql":  # SQLite holds 2**31 in any column
            assert "out of range" in outcomes[0][1], outcomes
        assert direct_rows(db_engine, by_id, {"id": made.id}) == [("one",)]
        assert direct_rows(db_engine, by_count, {"count": 5}) == [("one",)]
    # The largest values that fit are sent as they are.
    assert direct_rows(db_engine, by_id, {"id": 2**63 - 1}) == []
    assert direct_rows(db_engine, by_count, {"count": 2**31 - 1}) == []


@pytest.mark.postgres
def test_a_repeated_first_page_runs_on_a_generic_plan(pg_url: str) -> None:
    """After a few calls on one connection the server keeps one plan for the page
    (``pg_prepared_statements.generic_plans``) instead of planning every call."""
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        schema = create_tables(engine, SAMPLE)
        service = RecordService(engine=engine, schema=schema)
        system = Actor.system("test")
        service.bulk_create(system, "sample", [
            {"name": f"r{n}", "count": n % 1000, "stars": 1 + n % 5} for n in range(2000)])
        with engine.begin() as conn:
            conn.execute(text("ANALYZE sample"))
        for _ in range(20):
            service.list(system, "sample", ListQuery(limit=20))
        with engine.connect() as conn:
            plans = conn.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE :page"), {"page": "%FROM sample%LIMIT 21"}).all()
        assert len(plans) == 1 and plans[0][0] > 0, plans
    finally:
        engine.dispose()
