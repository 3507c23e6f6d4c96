"""Every kind of migration step, on SQLite and PostgreSQL, with the rows kept."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from engine.errors import MigrationError
from engine.storage.applied import applied_registry, live_archives, metadata_history
from engine.storage.migrate import apply_migration
from tests.integration.storage._db import (
    columns,
    indexes,
    insert,
    rows,
    snapshot,
    tables,
    uniques,
)
from tests.integration.storage._docs import entity, field, options, registry

NAMES = ["Ada", "Bo", "Cy", "Di"]


def base(*extra_fields: dict, **kw: object) -> dict:
    return entity("account", field("name"), field("code", max_length=20), *extra_fields, **kw)


def seeded(engine: Engine, *extra_fields: dict, values: list[dict] | None = None,
           **kw: object) -> None:
    reg = registry(base(*extra_fields, **kw))
    apply_migration(engine, target=reg)
    data = values or [{"name": n, "code": str(i)} for i, n in enumerate(NAMES)]
    insert(engine, reg, "account", data)


def kinds(plan) -> list[str]:
    return [s.kind for s in plan.steps]


def test_create_table_for_a_new_entity(db_engine: Engine) -> None:
    seeded(db_engine)
    plan = apply_migration(db_engine, target=registry(base(), entity("note", field("body"))))
    assert kinds(plan) == ["create_table"]
    assert "note" in tables(db_engine)
    assert rows(db_engine, "account", "name") == [(n,) for n in NAMES]


def test_add_column_keeps_rows_and_leaves_the_new_column_empty(db_engine: Engine) -> None:
    seeded(db_engine)
    plan = apply_migration(db_engine, target=registry(base(field("city"))))
    assert kinds(plan) == ["add_column"]
    assert rows(db_engine, "account", "name", "code", "city") == [
        (n, str(i), None) for i, n in enumerate(NAMES)]


def test_add_money_field_adds_its_currency_companion(db_engine: Engine) -> None:
    seeded(db_engine)
    apply_migration(db_engine, target=registry(base(field("budget", "money"))))
    assert {"budget", "budget_currency"} <= set(columns(db_engine, "account"))


def test_add_index(db_engine: Engine) -> None:
    seeded(db_engine)
    target = registry(base(indexes=[{"name": "ix_account_code", "fields": ["code"]}]))
    plan = apply_migration(db_engine, target=target)
    assert kinds(plan) == ["add_index"]
    assert indexes(db_engine, "account")["ix_account_code"] == ("code", "id")  # id: keyset tie-breaker


def test_add_unique_key_when_rows_are_distinct(db_engine: Engine) -> None:
    seeded(db_engine)
    target = registry(base(unique_keys=[{"name": "code", "fields": ["code"]}]))
    plan = apply_migration(db_engine, target=target)
    # A text key compares normalised values: the key column is added, filled, then unique.
    assert kinds(plan) == ["add_match_key", "add_unique"]
    assert uniques(db_engine, "account")["uq_account_code"] == ("code__key",)
    assert rows(db_engine, "account", "code", "code__key") == [
        (str(i), str(i)) for i in range(len(NAMES))]
    with pytest.raises(IntegrityError):
        insert(db_engine, target, "account", [{"name": "Ed", "code": "0", "code__key": "0"}])


def test_add_unique_key_refused_with_the_duplicate_count(db_engine: Engine) -> None:
    seeded(db_engine, values=[{"name": "a", "code": "X"}, {"name": "b", "code": "X"},
                              {"name": "c", "code": "X"}, {"name": "d", "code": "Y"},
                              {"name": "e", "code": "Z"}, {"name": "f", "code": "Z"}])
    before = snapshot(db_engine)
    target = registry(base(unique_keys=[{"name": "code", "fields": ["code"]}]))
    plan = apply_migration(db_engine, target=target, dry_run=True)
    assert plan.blocking == (
        ("account.uq_account_code: 5 rows share a normalised value of (code) in 2 group(s) "
         "(ids 1, 2, 3; ids 5, 6); merge or correct them, then migrate again"),)
    with pytest.raises(MigrationError) as raised:
        apply_migration(db_engine, target=target)
    assert raised.value.problems == plan.blocking
    assert snapshot(db_engine) == before


def test_add_unique_key_finds_duplicates_that_differ_only_in_spelling(db_engine: Engine) -> None:
    # Width, case and spacing differ, the normalised keys do not: reported, nothing changed.
    seeded(db_engine, field("phone", "phone"),
           values=[{"name": "a", "code": "ＡＢ1", "phone": "+86 130-0000-0003"},
                   {"name": "b", "code": " ab1 ", "phone": "130 0000 0003"},
                   {"name": "c", "code": "C", "phone": "86 13000000003"},
                   {"name": "d", "code": "D", "phone": "010-1234 5678"}])
    before = snapshot(db_engine)
    target = registry(base(field("phone", "phone", unique=True),
                           unique_keys=[{"name": "code", "fields": ["code"]}]))
    plan = apply_migration(db_engine, target=target, dry_run=True)
    assert sorted(plan.blocking) == [
        ("account.uq_account_code: 2 rows share a normalised value of (code) in 1 group(s) "
         "(ids 1, 2); merge or correct them, then migrate again"),
        ("account.uq_account_phone: 3 rows share a normalised value of (phone) in 1 group(s) "
         "(ids 1, 2, 3); merge or correct them, then migrate again")]
    with pytest.raises(MigrationError):
        apply_migration(db_engine, target=target)
    assert snapshot(db_engine) == before


def test_match_keys_dropped_with_their_unique_key(db_engine: Engine) -> None:
    seeded(db_engine, unique_keys=[{"name": "code", "fields": ["code"]}])
    assert "code__key" in columns(db_engine, "account")
    plan = apply_migration(db_engine, target=registry(base()))
    assert kinds(plan) == ["drop_unique", "drop_match_key"]
    assert "code__key" not in columns(db_engine, "account")
    assert rows(db_engine, "account", "code") == [(str(i),) for i in range(len(NAMES))]


def test_add_option_is_metadata_only(db_engine: Engine) -> None:
    seeded(db_engine, field("kind", "select", options=options("a", "b")))
    before = snapshot(db_engine)["account"]
    plan = apply_migration(db_engine, target=registry(
        base(field("kind", "select", options=options("a", "b", "c")))))
    assert kinds(plan) == ["add_option"] and plan.schema_steps == ()
    assert snapshot(db_engine)["account"] == before
    with db_engine.connect() as conn:
        applied = applied_registry(conn)
    assert applied is not None
    assert applied.entity("account").field("kind").option_values == ("a", "b", "c")


def test_removing_an_option_still_in_use_is_refused(db_engine: Engine) -> None:
    reg = registry(base(field("kind", "select", options=options("a", "b", "c"))))
    apply_migration(db_engine, target=reg)
    insert(db_engine, reg, "account", [{"name": "x", "kind": "b"}, {"name": "y", "kind": "b"},
                                       {"name": "z", "kind": "a"}])
    plan = apply_migration(db_engine, dry_run=True, target=registry(
        base(field("kind", "select", options=options("a", "c")))))
    assert plan.blocking == ("account.kind: 2 rows still use removed option 'b'",)
    plan = apply_migration(db_engine, target=registry(
        base(field("kind", "select", options=options("a", "b")))))
    assert kinds(plan) == ["remove_option"]


def test_widen_text_length(db_engine: Engine) -> None:
    long_name = "n" * 200
    seeded(db_engine, values=[{"name": long_name, "code": "1"}, {"name": "b", "code": "2"}])
    plan = apply_migration(db_engine, target=registry(
        entity("account", field("name"), field("code", max_length=400))))
    assert kinds(plan) == ["widen_type"]
    assert plan.steps[0].describe() == "widen account.code from text(20) to text(400)"
    insert(db_engine, registry(entity("account", field("name"), field("code", max_length=400))),
           "account", [{"name": "c", "code": "9" * 400}])
    assert rows(db_engine, "account", "name", "code") == [
        (long_name, "1"), ("b", "2"), ("c", "9" * 400)]


def test_integer_to_decimal(db_engine: Engine) -> None:
    seeded(db_engine, field("qty", "integer", min=0, max=1000),
           values=[{"name": "a", "qty": 3}, {"name": "b", "qty": None}, {"name": "c", "qty": 999}])
    plan = apply_migration(db_engine, target=registry(
        base(field("qty", "decimal", precision=12, scale=2))))
    assert [s.describe() for s in plan.steps] == [
        "widen account.qty from integer to decimal(12,2)",
        "change account.qty: min, max (metadata only)"]
    assert rows(db_engine, "account", "qty") == [(Decimal(3),), (None,), (Decimal(999),)]


def test_text_to_integer_when_every_row_converts(db_engine: Engine) -> None:
    seeded(db_engine, values=[{"name": "a", "code": " 12"}, {"name": "b", "code": "-7"},
                              {"name": "c", "code": None}])
    plan = apply_migration(db_engine, target=registry(
        entity("account", field("name"), field("code", "integer"))))
    assert kinds(plan) == ["convert_column"]
    assert plan.steps[0].describe() == (
        "convert account.code from text(20) to bigint (2 rows, all convertible)")
    assert rows(db_engine, "account", "name", "code") == [("a", 12), ("b", -7), ("c", None)]


def test_text_to_integer_refused_naming_the_rows(db_engine: Engine) -> None:
    seeded(db_engine, values=[{"name": "a", "code": "12"}, {"name": "b", "code": "abc"},
                              {"name": "c", "code": "1.5"}, {"name": "d", "code": "abc"}])
    before = snapshot(db_engine)
    target = registry(entity("account", field("name"), field("code", "integer")))
    with pytest.raises(MigrationError) as raised:
        apply_migration(db_engine, target=target)
    assert raised.value.problems == (
        "account.code: 3 rows cannot convert from text(20) to bigint",)
    assert "3 rows cannot convert" in str(raised.value)
    assert snapshot(db_engine) == before


def test_shortening_text_refused_when_a_value_is_too_long(db_engine: Engine) -> None:
    seeded(db_engine, values=[{"name": "a", "code": "x" * 20}, {"name": "b", "code": "ok"}])
    plan = apply_migration(db_engine, dry_run=True, target=registry(
        entity("account", field("name"), field("code", max_length=5))))
    assert plan.blocking == ("account.code: 1 rows cannot convert from text(20) to text(5)",)


def test_multi_select_to_select_converts_single_choices(db_engine: Engine) -> None:
    opts = options("a", "b")
    seeded(db_engine, field("tags", "multi_select", options=opts),
           values=[{"name": "x", "tags": ["a"]}, {"name": "y", "tags": []},
                   {"name": "z", "tags": None}])
    plan = apply_migration(db_engine, target=registry(base(field("tags", "select", options=opts))))
    assert kinds(plan) == ["convert_column"]
    assert rows(db_engine, "account", "tags") == [("a",), (None,), (None,)]


def test_archive_a_removed_field_then_purge_it(db_engine: Engine) -> None:
    seeded(db_engine, field("phone"), values=[{"name": n, "phone": f"555-{i}"}
                                               for i, n in enumerate(NAMES)])
    plan = apply_migration(db_engine, target=registry(base()))
    assert kinds(plan) == ["archive_field"]
    assert plan.steps[0].describe() == (
        "archive field account.phone: phone -> _archived_phone_1 (4 rows with a value kept)")
    assert "phone" not in columns(db_engine, "account")
    assert rows(db_engine, "account", "name", "_archived_phone_1") == [
        (n, f"555-{i}") for i, n in enumerate(NAMES)]
    # Without the flag nothing is purged; with it, the archived column goes.
    assert apply_migration(db_engine, target=registry(base())).is_empty
    plan = apply_migration(db_engine, target=registry(base()), purge_archived=True)
    assert kinds(plan) == ["purge_archived"]
    assert "_archived_phone_1" not in columns(db_engine, "account")
    assert rows(db_engine, "account", "name") == [(n,) for n in NAMES]
    with db_engine.connect() as conn:
        assert live_archives(conn) == []


def test_a_field_added_back_restores_its_archived_data(db_engine: Engine) -> None:
    seeded(db_engine, field("phone"), values=[{"name": "a", "phone": "1"}])
    apply_migration(db_engine, target=registry(base()))
    apply_migration(db_engine, target=registry(base(field("city"))))  # another version between
    plan = apply_migration(db_engine, target=registry(base(field("city"), field("phone"))))
    assert kinds(plan) == ["restore_field"]
    assert rows(db_engine, "account", "name", "phone") == [("a", "1")]


def test_add_features_owned_and_soft_delete_to_a_table_with_rows(db_engine: Engine) -> None:
    seeded(db_engine)
    plan = apply_migration(db_engine, target=registry(base(features=("owned", "soft_delete"))))
    assert kinds(plan) == ["add_feature", "add_feature", "add_index"]
    assert {"owner_id", "deleted_at"} <= set(columns(db_engine, "account"))
    assert "ix_account_owner_recent" in indexes(db_engine, "account")
    assert rows(db_engine, "account", "name", "owner_id", "deleted_at") == [
        (n, None, None) for n in NAMES]
    # owner_id references tp_user: a bad owner is refused
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(text("UPDATE account SET owner_id = 999 WHERE id = 1"))


def test_remove_a_feature_archives_its_column(db_engine: Engine) -> None:
    seeded(db_engine, features=("soft_delete",))
    plan = apply_migration(db_engine, target=registry(base()))
    assert kinds(plan) == ["remove_feature"]
    assert "_archived_deleted_at_1" in columns(db_engine, "account")


def test_removed_entity_table_is_archived_and_the_entity_can_come_back(db_engine: Engine) -> None:
    note = entity("note", field("body"), unique_keys=[{"name": "body", "fields": ["body"]}])
    reg = registry(base(), note)
    apply_migration(db_engine, target=reg)
    insert(db_engine, reg, "note", [{"body": "kept 1"}, {"body": "kept 2"}])
    plan = apply_migration(db_engine, target=registry(base()))
    assert [s.describe() for s in plan.steps] == [
        "archive entity note: table renamed to _archived_note_1 (2 rows kept)"]
    assert "note" not in tables(db_engine)
    assert rows(db_engine, "_archived_note_1", "body") == [("kept 1",), ("kept 2",)]
    # Index and constraint names were freed: the entity can be declared again.
    plan = apply_migration(db_engine, target=reg)
    assert kinds(plan) == ["create_table"]
    assert rows(db_engine, "note", "body") == []
    assert rows(db_engine, "_archived_note_1", "body") == [("kept 1",), ("kept 2",)]


def test_altering_a_referenced_table_keeps_the_rows_that_reference_it(db_engine: Engine) -> None:
    """On SQLite the unique key rebuilds `account`; `item` rows (ON DELETE CASCADE) survive."""
    item = entity("item", field("title"),
                  field("account_id", "reference", target="account", on_delete="cascade"))
    reg = registry(base(), item)
    apply_migration(db_engine, target=reg)
    insert(db_engine, reg, "account", [{"name": n, "code": str(i)} for i, n in enumerate(NAMES)])
    insert(db_engine, reg, "item", [{"title": f"t{i}", "account_id": i % 4 + 1}
                                    for i in range(8)])
    target = registry(entity("account", field("name"), field("code", "integer"),
                             unique_keys=[{"name": "name", "fields": ["name"]}]), item)
    plan = apply_migration(db_engine, target=target)
    assert kinds(plan) == ["convert_column", "add_match_key", "add_unique"]
    assert rows(db_engine, "item", "title", "account_id") == [
        (f"t{i}", i % 4 + 1) for i in range(8)]
    assert rows(db_engine, "account", "name", "code") == [(n, i) for i, n in enumerate(NAMES)]
    # Foreign keys are enforced again after the migration, on every connection.
    with pytest.raises(IntegrityError):
        insert(db_engine, target, "item", [{"title": "orphan", "account_id": 99}])
    with db_engine.begin() as conn:
        conn.execute(text("DELETE FROM account WHERE id = 1"))
    assert len(rows(db_engine, "item", "id")) == 6  # the cascade still works


def test_failed_sqlite_foreign_key_check_rolls_back(sqlite_url: str) -> None:
    """A reference broken before the migration is caught by the check before commit."""
    from engine.storage.database import make_engine
    engine = make_engine(sqlite_url)
    try:
        item = entity("item", field("title"),
                      field("account_id", "reference", target="account"))
        reg = registry(base(), item)
        apply_migration(engine, target=reg)
        insert(engine, reg, "account", [{"name": "a"}])
        insert(engine, reg, "item", [{"title": "t", "account_id": 1}])
        raw = engine.raw_connection()
        raw.driver_connection.execute("PRAGMA foreign_keys=OFF")
        raw.driver_connection.execute("UPDATE item SET account_id = 42")
        raw.close()
        engine.dispose()
        before = snapshot(engine)
        with pytest.raises(MigrationError, match="1 rows would reference missing records"):
            apply_migration(engine, target=registry(base(field("city")), item))
        assert snapshot(engine) == before
        with engine.connect() as conn:
            assert len(metadata_history(conn)) == 1
    finally:
        engine.dispose()


def test_converting_an_indexed_unique_column_keeps_its_index_and_key(db_engine: Engine) -> None:
    keyed = {"unique_keys": [{"name": "code", "fields": ["code"]}],
             "indexes": [{"name": "ix_account_name_code", "fields": ["name", "code"]}]}
    seeded(db_engine, **keyed)
    plan = apply_migration(db_engine, target=registry(
        entity("account", field("name"), field("code", "integer"), **keyed)))
    # An integer needs no match key: the key moves from code__key back to code.
    assert kinds(plan) == ["drop_unique", "drop_match_key", "convert_column", "add_unique"]
    assert rows(db_engine, "account", "code") == [(i,) for i in range(4)]
    assert uniques(db_engine, "account")["uq_account_code"] == ("code",)
    assert indexes(db_engine, "account")["ix_account_name_code"] == ("name", "code", "id")
    with pytest.raises(IntegrityError):
        insert(db_engine, registry(entity("account", field("name"), field("code", "integer"))),
               "account", [{"name": "dup", "code": 0}])


def test_archived_reference_no_longer_blocks_deleting_its_target(db_engine: Engine) -> None:
    item = entity("item", field("title"), field("account_id", "reference", target="account"))
    reg = registry(base(), item)
    apply_migration(db_engine, target=reg)
    insert(db_engine, reg, "account", [{"name": "a"}])
    insert(db_engine, reg, "item", [{"title": "t", "account_id": 1}])
    with pytest.raises(IntegrityError), db_engine.begin() as conn:  # RESTRICT while it exists
        conn.execute(text("DELETE FROM account"))
    plan = apply_migration(db_engine, target=registry(base(), entity("item", field("title"))))
    assert kinds(plan) == ["drop_index", "archive_field"]
    assert rows(db_engine, "item", "title", "_archived_account_id_1") == [("t", 1)]
    with db_engine.begin() as conn:  # archived data is inert: the delete goes through
        conn.execute(text("DELETE FROM account"))
    assert rows(db_engine, "item", "_archived_account_id_1") == [(1,)]


def _pipeline(*keys: str) -> dict:
    return {"sales": {"name": "sales", "entity": "account", "stages": [{"key": k} for k in keys]}}


def test_removing_a_stage_that_rows_are_in_is_refused(db_engine: Engine) -> None:
    reg = registry(base(features=("pipelined",)), pipelines=_pipeline("new", "won", "lost"))
    apply_migration(db_engine, target=reg)
    insert(db_engine, reg, "account", [{"name": "a", "stage": "won"},
                                       {"name": "b", "stage": "new"}])
    plan = apply_migration(db_engine, dry_run=True, target=registry(
        base(features=("pipelined",)), pipelines=_pipeline("new", "lost")))
    assert plan.blocking == (
        "account.stage: 1 rows are in stage 'won', which pipeline sales no longer has",)
    plan = apply_migration(db_engine, target=registry(
        base(features=("pipelined",)), pipelines=_pipeline("new", "won")))
    assert [s.describe() for s in plan.steps] == ["changed pipeline sales (metadata only)"]


def test_stages_of_several_pipelines_are_kept_and_must_match_the_selector(
        db_engine: Engine) -> None:
    line = field("line", "select", options=options("a", "b"))
    side = {"name": "side", "entity": "account", "selector": {"field": "line", "values": ["b"]},
            "stages": [{"key": "b_new"}, {"key": "b_done"}]}
    two = {**_pipeline("new", "won"), "side": side}
    reg = registry(base(line, features=("pipelined",)), pipelines=two)
    apply_migration(db_engine, target=reg)
    insert(db_engine, reg, "account", [{"name": "a", "line": "b", "stage": "b_done"},
                                       {"name": "b", "line": "a", "stage": "new"}])
    # b_done is a stage of the second pipeline: keeping it is no removal
    plan = apply_migration(db_engine, dry_run=True, target=reg)
    assert plan.blocking == ()
    # line a now selects the second pipeline too: its row sits in a default-pipeline stage
    moved = {**two, "side": {**side, "selector": {"field": "line", "values": ["a", "b"]}}}
    plan = apply_migration(db_engine, dry_run=True, target=registry(
        base(line, features=("pipelined",)), pipelines=moved))
    assert plan.blocking == (("account.stage: 1 rows select pipeline side by line but are in "
                              "a stage of another pipeline; move them or change their line "
                              "first"),)
    plan = apply_migration(db_engine, dry_run=True, target=registry(
        base(line, features=("pipelined",)),
        pipelines={**two, "side": {**side, "stages": [{"key": "b_new"}]}}))
    assert plan.blocking == (
        "account.stage: 1 rows are in stage 'b_done', which pipeline side no longer has",)


ALL_TYPES = [
    field("t"), field("lt", "long_text"), field("i", "integer"), field("d", "decimal"),
    field("m", "money"), field("p", "percent"), field("b", "boolean"), field("dt", "date"),
    field("ts", "datetime"), field("s", "select", options=options("a")),
    field("ms", "multi_select", options=options("a")), field("u", "user"),
    field("e", "email"), field("ph", "phone"), field("url", "url"), field("g", "geo_point"),
    field("ad", "address"), field("rt", "rich_text"), field("r", "rating"), field("f", "file"),
    field("an", "auto_number"), field("ref", "reference", target="account"),
]


def test_every_field_type_is_created_and_archived_with_its_companions(db_engine: Engine) -> None:
    full = registry(base(), entity("thing", *ALL_TYPES))
    apply_migration(db_engine, target=full)
    insert(db_engine, full, "account", [{"name": "a"}])
    insert(db_engine, full, "thing", [{"t": "x", "m": Decimal("1.50"), "m_currency": "EUR",
                                       "g": 1.5, "g_lng": 2.5, "ms": ["a"], "ref": 1,
                                       "ad": {"city": "Paris"}}])
    plan = apply_migration(db_engine, target=registry(base(), entity("thing", field("t"))))
    archived = {c for s in plan.steps if s.kind == "archive_field" for c, _ in s.columns}
    assert archived == {f["name"] for f in ALL_TYPES[1:]} | {"m_currency", "g_lng"}
    assert rows(db_engine, "thing", "t", "_archived_m_1", "_archived_m_currency_1",
                "_archived_g_lng_1", "_archived_ms_1", "_archived_ad_1") == [
        ("x", Decimal("1.50"), "EUR", 2.5, ["a"], {"city": "Paris"})]


def test_decimal_to_money_and_back_moves_the_currency_companion(db_engine: Engine) -> None:
    seeded(db_engine, field("price", "decimal", precision=18, scale=2),
           values=[{"name": "a", "price": Decimal("9.99")}])
    plan = apply_migration(db_engine, target=registry(base(field("price", "money"))))
    assert kinds(plan) == ["add_column"]  # same numeric(18,2): only the currency is new
    assert rows(db_engine, "account", "price", "price_currency") == [(Decimal("9.99"), None)]
    plan = apply_migration(db_engine, target=registry(
        base(field("price", "decimal", precision=20, scale=4))))
    assert kinds(plan) == ["widen_type", "archive_field"]
    assert rows(db_engine, "account", "price", "_archived_price_currency_1") == [
        (Decimal("9.99"), None)]


def test_a_new_normalisation_recomputes_keys_and_checks_them(db_engine: Engine) -> None:
    # A pattern of upper-case codes turns a text key into a code key (dashes and spaces
    # dropped): stored keys are recomputed, and twins under the new key are reported.
    key = [{"name": "code", "fields": ["code"]}]
    reg = registry(base(unique_keys=key))
    apply_migration(db_engine, target=reg)
    insert(db_engine, reg, "account", [{"name": "a", "code": "AB-1", "code__key": "ab-1"},
                                       {"name": "b", "code": "C 2", "code__key": "c 2"}])
    coded = registry(entity("account", field("name"),
                            field("code", max_length=20, pattern="^[0-9A-Z -]+$"),
                            unique_keys=key))
    plan = apply_migration(db_engine, target=coded)
    assert [s.kind for s in plan.steps if s.kind != "change_field"] == ["add_match_key"]
    assert rows(db_engine, "account", "code__key") == [("AB1",), ("C2",)]
    insert(db_engine, coded, "account", [{"name": "c", "code": "D-3", "code__key": "d-3"},
                                         {"name": "d", "code": "D3", "code__key": "d3"}])
    apply_migration(db_engine, target=reg)  # back to text keys: distinct again
    before = snapshot(db_engine)
    plan = apply_migration(db_engine, target=coded, dry_run=True)
    assert plan.blocking == (
        ("account.uq_account_code: 2 rows share a normalised value of (code) in 1 group(s) "
         "(ids 3, 4); merge or correct them, then migrate again"),)
    assert snapshot(db_engine) == before
