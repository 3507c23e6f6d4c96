"""``RecordService.list_json``: an API list page written from the rows in one step.

The API writes ``list_json`` pages with ``RecordWriter.values_page``; before, it wrote
``list`` pages' records as its point reads write one (``RecordWriter.record``). Both
must give the same bytes for every field type (nulls, hidden fields, file values, the
page token) on both databases.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, Table, update

from engine.actor import Actor
from engine.errors import ForbiddenError
from engine.metadata.model import Entity
from engine.permissions.scopes import RowScope
from engine.records import ListQuery, RecordService
from engine.records.query import Sort
from engine.storage.tables import StorageSchema
from tests.integration.records._docs import add_user
from ui.api.app import json_response
from ui.api.serialise import RecordWriter


class Policy:
    """Every row readable, ``hidden`` fields hidden, ``forbidden`` actions refused."""

    def __init__(self, *, hidden: frozenset[str] = frozenset(),
                 forbidden: frozenset[str] = frozenset()) -> None:
        self.hidden = hidden
        self.forbidden = forbidden

    def check_action(self, actor: Actor, entity: Entity, action: str) -> None:
        if action in self.forbidden:
            raise ForbiddenError(entity.name, action)

    def allows(self, actor: Actor, entity: Entity, action: str) -> bool:
        return action not in self.forbidden

    def row_scope(self, actor: Actor, entity: Entity, table: Table, action: str) -> RowScope:
        return RowScope.everything()

    def hidden_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        return self.hidden

    def readonly_fields(self, actor: Actor, entity: Entity) -> frozenset[str]:
        return frozenset()


FULL: dict[str, Any] = {
    "name": "Acme 上海 \"quoted\"", "phone": "+86 21 5555 0101", "email": "a@acme.example",
    "website": "https://acme.example/", "licence_no": "91310000ABC", "city": "上海",
    "revenue": {"amount": "1234.50", "currency": "CNY"}, "employees": 120, "stars": 4,
    "score": "0.375", "ratio": "12.345", "active": False, "founded": "2019-04-01",
    "next_call": "2026-12-01T09:30:15.123456+00:00", "tier": "gold", "tags": ["a", "c"],
    "location": {"lat": 31.230416, "lng": 121.473701},
    "address": {"street": "1 Nanjing Rd 南京路", "city": "Shanghai", "zip": "200001"},
    "notes": "line one\nline \"two\" \\ 三",
}


def _body(rows: Any, token: str | None) -> bytes:
    return bytes(json_response({"items": rows, "next": None, "next_token": token}).body)


@pytest.fixture
def seeded(db_engine: Engine, schema: StorageSchema, service: RecordService,
           system: Actor) -> Actor:
    manager = add_user(db_engine, schema, "mgr")
    first = service.create(system, "account", {**FULL, "manager": manager})
    service.create(system, "account", {"name": "Bare", "active": None})  # nulls everywhere
    service.create(system, "account", {
        "name": "Child", "parent": first.id, "tags": [], "address": {"city": "Beijing"},
        "next_call": "2026-01-02T03:04:05+00:00", "revenue": {"amount": "0", "currency": "CNY"},
        "location": {"lat": -33.5, "lng": 0.0}, "founded": "2000-02-29"})
    # A stored file value (the upload flow is the API's): its key must never be written.
    with db_engine.begin() as conn:
        conn.execute(update(schema.table("account")).where(
            schema.table("account").c.id == first.id).values(
            logo={"key": "secret/storage/key", "name": "logo.png",
                  "content_type": "image/png", "size": 321}))
    return Actor(user_id=manager, login="mgr")


@pytest.mark.parametrize("hidden", [frozenset(), frozenset({"revenue", "address", "logo"}),
                                    frozenset({"tags", "notes", "location", "next_call"})])
@pytest.mark.parametrize("limit", [2, 50])
def test_fused_page_writes_what_records_and_writer_wrote(
        db_engine: Engine, schema: StorageSchema, seeded: Actor,
        hidden: frozenset[str], limit: int) -> None:
    service = RecordService(engine=db_engine, schema=schema, policy=Policy(hidden=hidden))
    writer = RecordWriter.of(service.plan("account").entity)
    query = ListQuery(limit=limit, sort=Sort("name", False))
    old = service.list(seeded, "account", query)
    new = service.list_json(seeded, "account", query)
    assert new.next_token == old.next_token
    assert (new.next_token is not None) is (limit == 2)
    fused = _body(writer.values_page(new.rows), new.next_token)
    assert fused == _body([writer.record(r) for r in old.rows], old.next_token)
    items = orjson.loads(fused)["items"]
    assert len(items) == min(limit, 3)
    for item in items:
        assert hidden.isdisjoint(item)
        assert "id" in item and "created_at" in item
    if "logo" not in hidden:
        logo = next(i["logo"] for i in items if i["logo"] is not None)
        assert "key" not in logo and logo["url"].endswith("/files/logo")


def test_fused_page_follows_the_token_as_the_records_page_does(
        db_engine: Engine, schema: StorageSchema, seeded: Actor) -> None:
    service = RecordService(engine=db_engine, schema=schema, policy=Policy())
    writer = RecordWriter.of(service.plan("account").entity)
    by_name = Sort("name", False)
    first = service.list_json(seeded, "account", ListQuery(limit=2, sort=by_name))
    assert first.next_token is not None
    query = ListQuery(limit=2, sort=by_name, after=first.next_token)
    rest = service.list_json(seeded, "account", query)
    assert _body(writer.values_page(rest.rows), rest.next_token) == \
        _body([writer.record(r) for r in service.list(seeded, "account", query).rows], None)
    assert [r["name"] for r in rest.rows] == ["Child"]


def test_sqlite_documents_go_out_as_stored_text(
        db_url: str, db_engine: Engine, schema: StorageSchema, seeded: Actor) -> None:
    service = RecordService(engine=db_engine, schema=schema, policy=Policy())
    row = next(r for r in service.list_json(seeded, "account").rows if r["tags"])
    if db_url.startswith("sqlite"):
        # Not parsed and encoded again: the stored text as a fragment.
        assert isinstance(row["tags"], orjson.Fragment)
        assert isinstance(row["address"], orjson.Fragment)
    else:
        assert row["tags"] == ["a", "c"]
    assert isinstance(row["logo"], dict)  # rewritten by the writer: parsed everywhere


def test_fused_page_keeps_the_checks(db_engine: Engine, schema: StorageSchema,
                                     seeded: Actor) -> None:
    service = RecordService(engine=db_engine, schema=schema,
                            policy=Policy(forbidden=frozenset({"read"})))
    with pytest.raises(ForbiddenError):
        service.list_json(seeded, "account")
