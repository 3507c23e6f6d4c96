"""Ids are never reused and a hard delete takes every row naming the record with it.

A share names its record as ``(entity, record_id)``. If a hard delete left the
share behind and the database handed the id out again (SQLite's plain INTEGER
PRIMARY KEY reuses the highest id), the share would grant the next record
created in that table. Both halves are closed, on SQLite and PostgreSQL: ids
come from AUTOINCREMENT / identity sequences (and a migration rebuilds tables
made before), and the delete removes shares, stage history and activity of the
record and of the records the database deletes with it (``on_delete: cascade``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from engine.actor import Actor
from engine.errors import ConflictError, NotFoundError
from engine.metadata.parse import registry_from_document
from engine.permissions import _tables as t
from engine.permissions.identity import create_user
from engine.permissions.shares import share_record
from engine.records import ListQuery, RecordService
from engine.storage.applied import SYSTEM_TABLES
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import apply_migration, init_database
from engine.storage.plan import NeverReuseIds
from engine.storage.record_ids import dependent_tables, uses_autoincrement
from engine.storage.tables import StorageSchema, build_schema
from tests.integration.permissions._crm_org import CrmOrg, seed_crm
from tests.integration.records._docs import field, label
from tests.integration.records._stages_doc import FLOW, TICKET

SYSTEM = Actor.system("test")


# --- the share that outlived its record ---------------------------------------------------


@pytest.fixture
def crm(db_engine: Engine) -> Iterator[CrmOrg]:
    yield seed_crm(db_engine)


def _visible(crm: CrmOrg, login: str, entity: str) -> set[int]:
    page = crm.records.list(crm.actor(login), entity, ListQuery(limit=200))
    return {r.id for r in page.rows}


def _pointing_at(engine: Engine, entity: str, record_id: int) -> dict[str, int]:
    """How many rows of each dependent table still name the record."""
    found = {}
    with engine.connect() as conn:
        for table in dependent_tables(SYSTEM_TABLES):
            found[table.name] = int(conn.execute(
                select(func.count()).select_from(table)
                .where(table.c.entity == entity, table.c.record_id == record_id)).scalar_one())
    return found


def test_a_share_on_the_deleted_newest_record_never_grants_the_next(crm: CrmOrg) -> None:
    # follow_up is hard-deleted (no soft_delete); r3 (south) cannot see r1's (north) records.
    newest = crm.records.create(SYSTEM, "follow_up", {"content": "secret call", "kind": "call",
                                                      "owner_id": crm.users["r1"]})
    assert newest.id == max(crm.all_ids("follow_up") + [newest.id])
    with write_transaction(crm.engine) as conn:
        share_record(conn, crm.schema.table("follow_up"), newest.id, access="write",
                     user_id=crm.users["r3"])
    crm.records.comment(SYSTEM, "follow_up", newest.id, "call back")
    assert newest.id in _visible(crm, "r3", "follow_up")

    crm.records.delete(SYSTEM, "follow_up", newest.id)

    left = _pointing_at(crm.engine, "follow_up", newest.id)
    assert left["tp_share"] == 0
    # Only the deletion's own audit entry remains; it carries no data of the record.
    assert left["tp_activity"] == 1
    after = crm.records.create(SYSTEM, "follow_up", {"content": "next call", "kind": "call",
                                                     "owner_id": crm.users["r1"]})
    assert after.id > newest.id
    assert after.id not in _visible(crm, "r3", "follow_up")
    with pytest.raises(NotFoundError):
        crm.records.get(crm.actor("r3"), "follow_up", after.id)
    assert all(e.kind != "comment" for e in crm.records.activity(SYSTEM, "follow_up", after.id))


def test_ids_are_never_reused_after_deleting_the_newest_row(crm: CrmOrg) -> None:
    ids = []
    for n in range(3):
        rec = crm.records.create(SYSTEM, "follow_up", {"content": f"c{n}", "kind": "call"})
        ids.append(rec.id)
        crm.records.delete(SYSTEM, "follow_up", rec.id)
    assert ids == sorted(set(ids)) and len(set(ids)) == 3


# --- cascades: stage history, activity, shares of records deleted with their parent -------


PROJECT: dict[str, Any] = {
    "name": "project",
    "label": label("Project"),
    "title_field": "title",
    "features": ["owned", "activity"],
    "fields": [field("title", "text", required=True)],
}
WORKITEM: dict[str, Any] = {
    **TICKET,
    "name": "workitem",
    "features": ["owned", "pipelined", "activity"],   # hard-deleted, with stage history
    "fields": [*TICKET["fields"],
               field("project", "reference", target="project", on_delete="cascade")],
}
DOC: dict[str, Any] = {
    "apps": [], "entities": {"project": PROJECT, "workitem": WORKITEM},
    "pipelines": {"workitem_flow": {**FLOW, "name": "workitem_flow", "entity": "workitem"}},
    "roles": {},
}


@pytest.fixture
def cascade_schema(db_engine: Engine) -> StorageSchema:
    registry = registry_from_document(DOC)
    init_database(db_engine, target=registry)
    return build_schema(registry)


def test_deleting_a_parent_removes_what_named_it_and_its_cascaded_children(
        db_engine: Engine, cascade_schema: StorageSchema) -> None:
    service = RecordService(engine=db_engine, schema=cascade_schema)
    with write_transaction(db_engine) as conn:
        user_id = int(conn.execute(t.user.insert().values(
            login="u", display_name="U", active=True, created_at=func.now(), locale="en",
            session_epoch=0, failed_logins=0)).inserted_primary_key[0])
    project = service.create(SYSTEM, "project", {"title": "p"})
    items = [service.create(SYSTEM, "workitem", {"title": f"w{n}", "project": project.id})
             for n in range(2)]
    service.move_stage(SYSTEM, "workitem", items[0].id, to="triage", values={"due": "2030-01-01"},
                       version=items[0].version)
    other = service.create(SYSTEM, "workitem", {"title": "unrelated"})
    with write_transaction(db_engine) as conn:
        for rec, entity in ((project, "project"), (items[0], "workitem"), (other, "workitem")):
            share_record(conn, cascade_schema.table(entity), rec.id, user_id=user_id)
    assert _pointing_at(db_engine, "workitem", items[0].id)["tp_stage_history"] == 2

    service.delete(SYSTEM, "project", project.id)

    for rec in items:
        with pytest.raises(NotFoundError):
            service.get(SYSTEM, "workitem", rec.id)
        assert set(_pointing_at(db_engine, "workitem", rec.id).values()) == {0}
    left = _pointing_at(db_engine, "project", project.id)
    assert left.pop("tp_activity") == 1   # the delete's audit entry
    assert {"tp_share", "tp_stage_history"} <= left.keys()
    assert set(left.values()) == {0}, left   # every other table naming the record
    untouched = _pointing_at(db_engine, "workitem", other.id)
    assert untouched["tp_share"] == 1 and untouched["tp_stage_history"] == 1


def test_a_refused_delete_removes_nothing(db_engine: Engine,
                                          cascade_schema: StorageSchema) -> None:
    service = RecordService(engine=db_engine, schema=cascade_schema)
    project = service.create(SYSTEM, "project", {"title": "p"})
    service.comment(SYSTEM, "project", project.id, "kept")
    with pytest.raises(ConflictError):   # a stale version: everything rolled back
        service.delete(SYSTEM, "project", project.id, version=project.version + 5)
    assert _pointing_at(db_engine, "project", project.id)["tp_activity"] == 2


# --- the migration: tables made before AUTOINCREMENT --------------------------------------


def _strip_autoincrement(url: str, table: str) -> None:
    """Turn a table back into what earlier versions made: INTEGER PRIMARY KEY, no AUTOINCREMENT.

    Editing the stored CREATE statement is SQLite's documented way to change what
    does not touch the file format (https://www.sqlite.org/lang_altertable.html,
    section 7); the rows and their ids stay where they are.
    """
    import sqlite3

    path = url.removeprefix("sqlite:///")
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("PRAGMA writable_schema=ON")
        raw.execute("UPDATE sqlite_master SET sql = replace(sql, ' AUTOINCREMENT', '') "
                    "WHERE type = 'table' AND name = ?", (table,))
        raw.execute("PRAGMA writable_schema=OFF")
        raw.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    finally:
        raw.close()


def test_migrate_rebuilds_old_sqlite_tables_keeping_rows_and_ids(sqlite_url: str) -> None:
    registry = registry_from_document(DOC)
    engine = make_engine(sqlite_url)
    init_database(engine, target=registry)
    schema = build_schema(registry)
    service = RecordService(engine=engine, schema=schema)
    made = [service.create(SYSTEM, "project", {"title": f"p{n}"}).id for n in range(4)]
    with write_transaction(engine) as conn:   # the old delete: the feed still names the id
        conn.execute(text("DELETE FROM project WHERE id = :i"), {"i": made[-1]})
    engine.dispose()
    _strip_autoincrement(sqlite_url, "project")
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert not uses_autoincrement(conn, "project")

    plan = apply_migration(engine, target=registry, dry_run=True)
    assert [s for s in plan.steps if isinstance(s, NeverReuseIds)] == [NeverReuseIds("project", 3)]
    apply_migration(engine, target=registry)

    with engine.connect() as conn:
        assert uses_autoincrement(conn, "project")
        assert [tuple(r) for r in conn.execute(text("SELECT id, title FROM project ORDER BY id"))
                ] == [(i, f"p{n}") for n, i in enumerate(made[:3])]
        feed = conn.execute(text("SELECT count(*) FROM tp_activity WHERE record_id = :i"),
                            {"i": made[-1]}).scalar_one()
    assert feed == 1   # the old create entry of the deleted id still names it...
    service = RecordService(engine=engine, schema=schema)
    # ...so the next id goes above it rather than reviving it.
    assert service.create(SYSTEM, "project", {"title": "new"}).id > made[-1]
    assert apply_migration(engine, target=registry).is_empty
    engine.dispose()


def test_identity_columns_never_reuse_ids(db_engine: Engine,
                                          cascade_schema: StorageSchema) -> None:
    service = RecordService(engine=db_engine, schema=cascade_schema)
    first = service.create(SYSTEM, "project", {"title": "a"})
    service.delete(SYSTEM, "project", first.id)
    assert service.create(SYSTEM, "project", {"title": "b"}).id > first.id


# --- an entity archived, made again, then purged ------------------------------------------


def test_an_entity_made_again_starts_above_its_archived_ids_and_a_purge_forgets_them(
        db_engine: Engine) -> None:
    with_project = registry_from_document({"apps": [], "entities": {"project": PROJECT}})
    without = registry_from_document({"apps": [], "entities": {}})
    init_database(db_engine, target=with_project)
    service = RecordService(engine=db_engine, schema=build_schema(with_project))
    old = [service.create(SYSTEM, "project", {"title": f"old {n}"}).id for n in range(3)]
    with write_transaction(db_engine) as conn:
        user = create_user(conn, login="grantee", display_name="Grantee")
        share_record(conn, build_schema(with_project).table("project"), old[-1],
                     user_id=user.id)

    apply_migration(db_engine, target=without)        # archived: rows and shares kept
    apply_migration(db_engine, target=with_project)   # a new, empty project table
    service = RecordService(engine=db_engine, schema=build_schema(with_project))
    new = service.create(SYSTEM, "project", {"title": "new"})
    assert new.id > max(old)   # the share on the archived row can never reach it
    assert _pointing_at(db_engine, "project", old[-1])["tp_share"] == 1

    apply_migration(db_engine, target=with_project, purge_archived=True)
    assert set(_pointing_at(db_engine, "project", old[-1]).values()) == {0}
    assert _pointing_at(db_engine, "project", new.id)["tp_activity"] == 1   # live rows kept
