"""Applying metadata as a whole: init, no-op, history, dry run, all-or-nothing, customisations."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

import engine.storage.plan as plan_module
from engine.errors import MetadataError, MigrationError
from engine.storage import ddl
from engine.storage.applied import applied_registry, metadata_history
from engine.storage.customisations import load_customisations, save_customisation
from engine.storage.migrate import apply_migration, init_database
from engine.storage.plan import AddIndex, Step
from tests.integration.storage._db import columns, insert, rows, snapshot, tables
from tests.integration.storage._docs import entity, field, registry

V1 = registry(entity("account", field("name"), field("code")))
V2 = registry(entity("account", field("name"), field("code"), field("city"),
                     indexes=[{"fields": ["city"]}]),
              entity("note", field("body")))


def test_applied_registry_is_none_on_an_empty_database(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        assert applied_registry(conn) is None
        assert metadata_history(conn) == []


def test_init_creates_tables_and_records_the_version(db_engine: Engine) -> None:
    plan = init_database(db_engine, target=V1, actor="alice")
    assert [s.kind for s in plan.steps][:2] == ["create_system_tables", "create_table"]
    assert {"account", "tp_metadata_version", "tp_archive", "tp_customisation"} <= tables(
        db_engine)
    with db_engine.connect() as conn:
        applied = applied_registry(conn)
        history = metadata_history(conn)
    assert applied is not None and applied.fingerprint == V1.fingerprint
    assert applied.entity("account").field("code").type.value == "text"
    assert [(h.fingerprint, h.applied_by) for h in history] == [(V1.fingerprint, "alice")]
    assert history[0].plan is not None and history[0].plan["to"] == V1.fingerprint


def test_init_again_is_a_no_op_and_init_over_other_metadata_is_refused(db_engine: Engine) -> None:
    init_database(db_engine, target=V1)
    assert init_database(db_engine, target=V1).is_empty
    with pytest.raises(MigrationError, match="run `tidepool migrate"):
        init_database(db_engine, target=V2)
    with db_engine.connect() as conn:
        assert len(metadata_history(conn)) == 1


def test_reapplying_the_same_registry_does_nothing(db_engine: Engine) -> None:
    apply_migration(db_engine, target=V1)
    before = snapshot(db_engine)
    plan = apply_migration(db_engine, target=V1)
    assert plan.is_empty and plan.describe().startswith("Nothing to migrate")
    assert snapshot(db_engine) == before


def test_history_grows_with_each_version(db_engine: Engine) -> None:
    apply_migration(db_engine, target=V1, actor="a")
    apply_migration(db_engine, target=V2, actor="b")
    apply_migration(db_engine, target=V2, actor="c")  # no change, no version
    apply_migration(db_engine, target=V1, actor="d")
    with db_engine.connect() as conn:
        history = metadata_history(conn)
        applied = applied_registry(conn)
    assert [h.applied_by for h in history] == ["a", "b", "d"]
    assert [h.fingerprint for h in history] == [V1.fingerprint, V2.fingerprint, V1.fingerprint]
    assert history[0].applied_at <= history[1].applied_at <= history[2].applied_at
    step_kinds = [s["kind"] for s in history[1].plan["steps"]]  # type: ignore[index]
    assert step_kinds == ["create_table", "add_column", "add_index"]
    assert applied is not None and applied.fingerprint == V1.fingerprint


def test_dry_run_changes_nothing(db_engine: Engine) -> None:
    apply_migration(db_engine, target=V1)
    insert(db_engine, V1, "account", [{"name": "a", "code": "1"}])
    before = snapshot(db_engine)
    plan = apply_migration(db_engine, target=V2, dry_run=True)
    assert [s.kind for s in plan.steps] == ["create_table", "add_column", "add_index"]
    text = plan.describe()
    assert "1. create table note" in text and "add field account.city (column city)" in text
    assert snapshot(db_engine) == before


def test_dry_run_on_an_empty_database_creates_nothing(db_engine: Engine) -> None:
    plan = apply_migration(db_engine, target=V1, dry_run=True)
    assert not plan.is_empty
    assert tables(db_engine) == set()


def test_a_failure_mid_plan_rolls_everything_back(db_engine: Engine,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The column and the table are created, then the index fails: none of it stays."""
    apply_migration(db_engine, target=V1)
    insert(db_engine, V1, "account", [{"name": "a", "code": "1"}, {"name": "b", "code": "2"}])
    before = snapshot(db_engine)

    def boom(ex: ddl.Executor, step: AddIndex) -> None:
        assert "city" in [c["name"] for c in
                          __import__("sqlalchemy").inspect(ex.conn).get_columns("account")]
        raise RuntimeError("injected failure")

    monkeypatch.setitem(ddl.EXECUTORS, AddIndex, boom)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="injected failure"):
        apply_migration(db_engine, target=V2)
    assert snapshot(db_engine) == before
    assert "note" not in tables(db_engine) and "city" not in columns(db_engine, "account")
    with db_engine.connect() as conn:
        assert len(metadata_history(conn)) == 1
    monkeypatch.undo()
    apply_migration(db_engine, target=V2)  # and the same migration then applies cleanly
    assert rows(db_engine, "account", "name", "city") == [("a", None), ("b", None)]


def test_every_step_type_has_an_executor() -> None:
    step_types = {obj for obj in vars(plan_module).values()
                  if isinstance(obj, type) and issubclass(obj, Step) and obj is not Step}
    assert step_types == set(ddl.EXECUTORS)
    assert len({t.kind for t in step_types}) == len(step_types)


def test_customisations_round_trip(db_engine: Engine) -> None:
    init_database(db_engine, target=V1)
    with db_engine.begin() as conn:
        first = save_customisation(conn, kind="overlay", name="account",
                                   document={"fields": [{"name": "x", "type": "text"}]},
                                   user_id=None)
        save_customisation(conn, kind="role", name="clerk", document={"grants": []},
                           user_id=None)
        again = save_customisation(conn, kind="overlay", name="account",
                                   document={"fields": []}, user_id=None)
    assert again == first
    with db_engine.connect() as conn:
        saved = load_customisations(conn)
    assert [(c["kind"], c["name"], c["document"]) for c in saved] == [
        ("overlay", "account", {"fields": []}), ("role", "clerk", {"grants": []})]


@pytest.mark.parametrize("kind,name,document,message", [
    ("widget", "x", {}, "unknown kind 'widget'"),
    ("overlay", "", {}, "name must be 1 to 127 characters"),
    ("overlay", "x", [1, 2], "document must be a JSON object"),
    ("overlay", "x", {"bad": object()}, "document is not JSON"),
])
def test_bad_customisations_are_refused(sqlite_url: str, kind: str, name: str,
                                        document: object, message: str) -> None:
    from engine.storage.database import make_engine
    engine = make_engine(sqlite_url)
    try:
        init_database(engine, target=V1)
        with engine.begin() as conn, pytest.raises(MetadataError) as raised:
            save_customisation(conn, kind=kind, name=name, document=document,  # type: ignore[arg-type]
                               user_id=None)
        assert message in str(raised.value)
        with engine.connect() as conn:
            assert load_customisations(conn) == []
    finally:
        engine.dispose()


def test_concurrent_migrations_queue_and_apply_once(db_engine: Engine) -> None:
    """Two `migrate` runs at once: one applies, the other then finds nothing to do."""
    from concurrent.futures import ThreadPoolExecutor

    apply_migration(db_engine, target=V1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        plans = list(pool.map(lambda actor: apply_migration(db_engine, target=V2, actor=actor),
                              ["one", "two"]))
    assert sorted(p.is_empty for p in plans) == [False, True]
    with db_engine.connect() as conn:
        assert [h.fingerprint for h in metadata_history(conn)] == [V1.fingerprint,
                                                                   V2.fingerprint]
    assert "city" in columns(db_engine, "account")


def test_a_newer_engine_adds_its_missing_system_tables_and_columns(db_engine: Engine) -> None:
    """A database made by an older engine gains tp_activity.via and the pool ledger."""
    init_database(db_engine, target=V1)
    with db_engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE tp_pool_event")
        conn.exec_driver_sql("ALTER TABLE tp_activity DROP COLUMN via")
    plan = apply_migration(db_engine, target=V2)
    kinds = [s.kind for s in plan.steps]
    assert kinds[:2] == ["create_system_tables", "add_system_columns"]
    assert "via" in columns(db_engine, "tp_activity")
    assert "tp_pool_event" in tables(db_engine)
    assert apply_migration(db_engine, target=V2).is_empty
