"""Storage added for dedup and import: import mappings remembered in tp_import_mapping (per
user, entity and header set, the team's latest as a fallback; made by ``migrate`` on older
databases) and the stem/key columns dedup rules add to existing tables. Both databases."""

from __future__ import annotations

from sqlalchemy import Engine, text

from engine.permissions.identity import create_user
from engine.storage.database import write_transaction
from engine.storage.import_mappings import recall, remember
from engine.storage.migrate import apply_migration, init_database
from tests.integration.storage._db import columns, indexes, insert, rows, tables
from tests.integration.storage._docs import entity, field, registry

V1 = registry(entity("account", field("name", "text"), field("phone", "phone")))
HEADERS = ("名称", "电话")


def test_mappings_are_kept_per_user_and_header_set(db_engine: Engine) -> None:
    init_database(db_engine, target=V1, actor="test")
    with write_transaction(db_engine) as conn:
        ann = create_user(conn, login="ann", display_name="Ann").id
        bob = create_user(conn, login="bob", display_name="Bob").id
        assert recall(conn, user_id=ann, entity="account", headers=HEADERS) is None
        remember(conn, user_id=ann, entity="account", headers=HEADERS,
                 mapping={"名称": "name", "电话": "phone"})
        remember(conn, user_id=ann, entity="account", headers=HEADERS,
                 mapping={"名称": "name"})  # confirmed again: replaced, not duplicated
        remember(conn, user_id=None, entity="account", headers=HEADERS, mapping={"x": "y"})
    with db_engine.connect() as conn:
        # Column order and spelling (width, case, spaces) do not make another header set.
        assert recall(conn, user_id=ann, entity="account", headers=(" 电话", "名称")) == \
            {"名称": "name"}
        # Bob never mapped this file: he is offered his team's latest mapping.
        assert recall(conn, user_id=bob, entity="account", headers=HEADERS) == {"名称": "name"}
        assert recall(conn, user_id=ann, entity="contact", headers=HEADERS) is None
        assert recall(conn, user_id=ann, entity="account", headers=("名称",)) is None
        rows = conn.execute(text("SELECT COUNT(*) FROM tp_import_mapping")).scalar()
    assert rows == 1


def test_migrate_adds_the_table_to_an_older_database(db_engine: Engine) -> None:
    init_database(db_engine, target=V1, actor="test")
    with db_engine.begin() as conn:  # as a database made before mappings were kept
        conn.execute(text("DROP TABLE tp_import_mapping"))
    with db_engine.connect() as conn:  # nothing to recall, and no error
        assert recall(conn, user_id=1, entity="account", headers=HEADERS) is None
    plan = apply_migration(db_engine, target=V1, actor="test")
    assert [s.kind for s in plan.steps] == ["create_system_tables"]
    assert "tp_import_mapping" in tables(db_engine)


# --- dedup columns on an existing database (same module: one cheap registry each) -----------

SIMILAR = {"warn": [{"name": "similar", "match": "similar_name", "field": "name"}],
           "keys": ["mail"]}
V2 = registry(entity("account", field("name", "text"), field("phone", "phone"),
                     field("mail", "email"), dedup=SIMILAR))
V1_MAIL = registry(entity("account", field("name", "text"), field("phone", "phone"),
                          field("mail", "email")))


def test_declaring_rules_adds_filled_indexed_stem_and_key_columns(db_engine: Engine) -> None:
    init_database(db_engine, target=V1_MAIL, actor="test")
    insert(db_engine, V1_MAIL, "account", [
        {"name": "上海 ABC 贸易有限公司", "mail": "A@X.COM"},
        {"name": "上海ABC贸易公司", "mail": "a@x.com"}, {"name": None, "mail": None}])
    plan = apply_migration(db_engine, target=V2, actor="test")
    assert [s.kind for s in plan.steps].count("add_match_key") == 2
    assert rows(db_engine, "account", "name__stem", "mail__key") == [
        ("上海abc贸易", "a@x.com"), ("上海abc贸易", "a@x.com"), (None, None)]
    found = indexes(db_engine, "account")
    assert found["ix_account_name__stem"][0] == "name__stem"
    assert found["ix_account_mail__key"][0] == "mail__key"  # non-unique: twins may exist
    # Dropping the rules drops the derived columns; the values stay.
    apply_migration(db_engine, target=V1_MAIL, actor="test")
    assert "name__stem" not in columns(db_engine, "account")
    assert rows(db_engine, "account", "name")[0] == ("上海 ABC 贸易有限公司",)
