"""Per-record rows written set-based (engine/storage/fanout.py): exactly the rows given."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Engine, Integer, MetaData, String, Table, event, select

from engine.storage.fanout import among, insert_group, insert_per_record, insert_rows


def _tables(engine: Engine) -> tuple[Table, Table]:
    meta = MetaData()
    source = Table("thing", meta, Column("id", Integer, primary_key=True))
    target = Table("trace", meta, Column("id", Integer, primary_key=True),
                   Column("entity", String(20)), Column("record_id", Integer),
                   Column("kind", String(20)), Column("changes", JSON))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(source.insert(), [{"id": i} for i in range(1, 31)])
    return source, target


def test_rows_equal_but_the_id_are_written_once_each_with_their_values(
        db_engine: Engine) -> None:
    source, target = _tables(db_engine)
    shared = {"entity": "thing", "kind": "drop", "changes": [{"field": "owner_id", "old": 7}]}
    rows = [{**shared, "record_id": i} for i in range(1, 21)]          # one group of 20
    rows += [{**shared, "kind": "claim", "record_id": i} for i in (21, 22)]  # small group
    rows += [{**shared, "record_id": i} for i in (98, 99)]  # ids the source lacks
    rows += [{**shared, "changes": None, "record_id": i} for i in range(23, 31)]
    with db_engine.begin() as conn:
        assert insert_rows(conn, target, rows, source=source, min_group=8) == len(rows)
    with db_engine.connect() as conn:
        got = sorted((r.record_id, r.kind, r.changes) for r in conn.execute(select(target)))
    want = sorted((r["record_id"], r["kind"], r["changes"]) for r in rows)
    assert got == want


def test_two_rows_of_one_record_keep_their_order(db_engine: Engine) -> None:
    source, target = _tables(db_engine)
    rows = [{"entity": "thing", "record_id": i, "kind": "a", "changes": None}
            for i in range(1, 11)]
    rows.append({"entity": "thing", "record_id": 1, "kind": "b", "changes": None})
    with db_engine.begin() as conn:
        insert_per_record(conn, target, rows, source_of=lambda _: source)
    with db_engine.connect() as conn:
        kinds = conn.execute(select(target.c.kind).where(target.c.record_id == 1)
                             .order_by(target.c.id)).scalars().all()
    assert kinds == ["a", "b"]


def test_a_whole_group_is_one_statement_with_no_lookup(db_engine: Engine) -> None:
    # The INSERT's row count says every id was found: no SELECT of the ids after it
    # (PostgreSQL once read the count as -1 and looked every group up again).
    source, target = _tables(db_engine)
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split())[:12])

    event.listen(db_engine, "before_cursor_execute", record)
    try:
        with db_engine.begin() as conn:
            assert insert_group(conn, target, {"entity": "thing", "kind": "drop"},
                                list(range(1, 21)), source=source) == 20
    finally:
        event.remove(db_engine, "before_cursor_execute", record)
    assert [s for s in seen if s.startswith(("INSERT", "SELECT"))] == ["INSERT INTO "]
    with db_engine.connect() as conn:
        assert conn.execute(select(target.c.record_id).order_by(target.c.record_id)) \
            .scalars().all() == list(range(1, 21))


def test_among_binds_text_and_ids_as_one_list_whatever_its_length(db_engine: Engine) -> None:
    # The duplicate check of a bulk create looks thousands of text keys up with it.
    _source, target = _tables(db_engine)
    present = {f"e{i}" for i in range(100)}
    with db_engine.begin() as conn:
        conn.execute(target.insert(), [{"entity": e, "record_id": int(e[1:])} for e in present])
    with db_engine.connect() as conn:
        for names in (["e3", "e7", "zz"], [f"e{i}" for i in range(0, 200, 2)]):
            cond = among(conn, target.c.entity, names)
            got = conn.execute(select(target.c.entity).where(cond)).scalars().all()
            assert sorted(got) == sorted(n for n in names if n in present)
            if len(names) > 70:  # one array / JSON parameter, hashed: not = ANY(...)
                sql = str(cond.compile(dialect=db_engine.dialect)).lower()
                assert "any" not in sql and ("unnest" in sql or "json_each" in sql), sql
        ids = list(range(50, 150))
        got_ids = conn.execute(select(target.c.record_id)
                               .where(among(conn, target.c.record_id, ids))).scalars().all()
        assert sorted(got_ids) == list(range(50, 100))
