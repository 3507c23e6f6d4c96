"""Insert many per-record rows that differ only in their record id, set-based.

A rule run or a bulk move writes one feed entry, one ledger row and one
notification per record, and in a batch most of those rows are equal but for
the record id (same kind, time, rule, reason, previous owner...). Sent as one
``executemany`` each row costs its own parameter processing in Python; sent
as ``INSERT INTO target (...) SELECT <the shared values>, source.id FROM
source WHERE source.id IN (...)`` a group costs one statement. ``insert_rows``
groups the rows by their shared values and writes the large groups that way,
the rest (and any id the source table no longer holds) with one ``executemany``,
so the rows written are exactly the rows given.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

#: Smallest group written with INSERT ... SELECT (smaller ones are cheaper in the batch).
MIN_GROUP = 8
#: Id lists up to this long stay a plain IN list (its plan is the simplest).
SHORT_LIST = 64
#: Ids bound in one IN list (well under SQLite's and PostgreSQL's parameter limits).
CHUNK = 5000


def among(conn: Connection, column: Any, ids: Sequence[int] | Sequence[str]
          ) -> ColumnElement[bool]:
    """``column IN ids`` bound as one parameter (a PostgreSQL array, a SQLite JSON array).

    An IN list of thousands binds and renders one parameter per id on every
    execution; a rule batch does it in several statements, a bulk create's duplicate
    check one per unique key. Text values (such keys) are bound as they are, in an
    array of the column's own type; anything else is taken as whole numbers (ids).
    """
    text = all(i.__class__ is str for i in ids)
    values: list[Any] = list(ids) if text else [int(i) for i in ids]
    if len(values) <= SHORT_LIST:
        return column.in_(values)  # type: ignore[no-any-return]
    listed = listed_values(conn.dialect.name, values=values,
                           element_type=column.type if text else BigInteger)
    return column.in_(listed)  # type: ignore[no-any-return]


def listed_values(dialect: str, *, key: str | None = None, values: Sequence[Any] | None = None,
                  element_type: Any = BigInteger) -> Select[Any]:
    """A one-parameter list as a one-column SELECT, for ``column IN (...)``.

    The parameter is a PostgreSQL array of ``element_type`` (``unnest``) or a SQLite
    JSON array (``json_each``): either planner looks each value up. Bound here from
    ``values``, or, for a statement built once and run with many lists, left to the
    execution as parameter ``key`` (its value from ``bound_values``).
    """
    value: dict[str, Any] = {} if values is None else {"value": bound_values(dialect, values)}
    if dialect == "postgresql":
        # IN (SELECT unnest(array)), not = ANY(array): the planner hashes the set;
        # ANY is a filter that walks the whole array for every row it checks.
        return select(func.unnest(bindparam(key, type_=ARRAY(element_type), **value)))
    listed = func.json_each(bindparam(key, type_=String, **value)).table_valued("value")
    return select(listed.c.value)


def bound_values(dialect: str, values: Sequence[Any]) -> list[Any] | str:
    """``values`` as ``listed_values`` binds them: a list (PostgreSQL), JSON text (SQLite)."""
    return list(values) if dialect == "postgresql" else orjson.dumps(list(values)).decode()


def _frozen(value: Any) -> Hashable:
    # JSON values (a feed entry's changes) group by their text; tuples too, as a
    # tuple holding a list could not be hashed.
    if value.__class__ in (list, dict, tuple):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)
    return value  # type: ignore[no-any-return]


def _group_key(row: Mapping[str, Any], id_column: str) -> Hashable:
    # The (key, value) pairs in their order: rows built by one function group
    # together; the target column's type binds the shared values. Plain values hash
    # as they are (ledger and notification rows); JSON values go through their text.
    key = tuple(item for item in row.items() if item[0] != id_column)
    try:
        hash(key)
    except TypeError:
        key = tuple((k, _frozen(v)) for k, v in key)
    return key


def insert_rows(conn: Connection, target: Table, rows: Sequence[Mapping[str, Any]], *,
                source: Table, id_column: str = "record_id",
                min_group: int = MIN_GROUP) -> int:
    """Insert ``rows`` into ``target``; ``row[id_column]`` is an id of ``source``.

    Rows of one group must have the same keys (the grouping key includes them).
    Returns how many rows were written (always ``len(rows)``).
    """
    groups: dict[Hashable, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_group_key(row, id_column), []).append(row)
    rest: list[Mapping[str, Any]] = []
    for members in groups.values():
        ids = [int(r[id_column]) for r in members]
        if len(members) < min_group or len(set(ids)) != len(ids):
            rest.extend(members)
            continue
        shared = {k: v for k, v in members[0].items() if k != id_column}
        rest.extend(_insert_group(conn, target, shared, ids, source=source,
                                  id_column=id_column))
    _insert_values(conn, target, rest)
    return len(rows)


def _insert_group(conn: Connection, target: Table, shared: Mapping[str, Any],
                  ids: Sequence[int], *, source: Table,
                  id_column: str) -> list[Mapping[str, Any]]:
    """INSERT ... SELECT the rows ``shared`` + each id; returns those of ids ``source`` lacks."""
    columns = list(shared)
    rest: list[Mapping[str, Any]] = []
    for start in range(0, len(ids), CHUNK):
        some = ids[start:start + CHUNK]
        query = select(*[literal(shared[c], target.c[c].type) for c in columns],
                       source.c.id).where(among(conn, source.c.id, some))
        stmt = insert(target).from_select([*columns, id_column], query)
        # The row count says whether every id was found (no RETURNING: fetching a batch's
        # ids back cost more than the insert on SQLite); when not, look up which were.
        # preserve_rowcount: SQLAlchemy keeps an INSERT's count only when asked (without
        # it PostgreSQL's read -1, so every group paid the lookup).
        done = conn.execute(stmt.execution_options(preserve_rowcount=True))
        if done.rowcount != len(some):  # a record gone from the source
            found = set(conn.execute(select(source.c.id)
                                     .where(among(conn, source.c.id, some))).scalars())
            rest.extend({**shared, id_column: i} for i in some if i not in found)
    return rest


def insert_group(conn: Connection, target: Table, shared: Mapping[str, Any],
                 ids: Sequence[int], *, source: Table, id_column: str = "record_id") -> int:
    """Insert one row per id of ``ids`` (distinct ids of ``source``), equal but for the id.

    For a caller that already knows its rows form one group (a rule's batch of feed
    entries): no row is built or hashed per id. Returns ``len(ids)``.
    """
    if len(ids) < MIN_GROUP:
        _insert_values(conn, target, [{**shared, id_column: int(i)} for i in ids])
    else:
        _insert_values(conn, target, _insert_group(conn, target, shared, [int(i) for i in ids],
                                                   source=source, id_column=id_column))
    return len(ids)


def _insert_values(conn: Connection, target: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    by_keys: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:  # executemany needs one set of keys per call
        by_keys.setdefault(tuple(row), []).append(row)
    for same in by_keys.values():
        conn.execute(insert(target), same)


def insert_per_record(conn: Connection, target: Table, rows: Sequence[Mapping[str, Any]], *,
                      source_of: Callable[[str], Table], entity_column: str = "entity",
                      id_column: str = "record_id") -> int:
    """``insert_rows`` for rows naming (entity, record id), e.g. feed or ledger rows.

    Grouping writes rows out of their given order, so it is used only when no
    record has two rows here (two entries of one record keep their order by id).
    """
    keys = {(r[entity_column], r[id_column]) for r in rows}
    if len(keys) != len(rows) or len(rows) < MIN_GROUP:
        if rows:
            conn.execute(insert(target), list(rows))
        return len(rows)
    by_entity: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_entity.setdefault(str(row[entity_column]), []).append(row)
    for entity, some in by_entity.items():
        insert_rows(conn, target, some, source=source_of(entity), id_column=id_column)
    return len(rows)


__all__ = ["among", "bound_values", "insert_group", "insert_per_record", "insert_rows", "listed_values"]
