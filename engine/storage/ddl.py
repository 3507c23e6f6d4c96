"""Execute a migration plan's steps as DDL, through Alembic's operations.

Every step runs on the caller's connection inside the caller's transaction
(``migrate.py`` owns it), so a failure anywhere rolls the whole plan back;
nothing here commits. On SQLite, what ALTER TABLE cannot do (add or drop a
constraint, change a type, drop a column with a foreign key) goes through
``batch_alter_table``, which rebuilds the table; ``migrate.py`` turns foreign
keys off around the transaction so rebuilding a referenced table does not
cascade into the tables that reference it, and checks them before commit.

``EXECUTORS`` maps each step type to its function; metadata-only steps map to
nothing to do.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from alembic.migration import MigrationContext
from alembic.operations import BatchOperations, Operations
from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    MetaData,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import (
    column as column_clause,
)
from sqlalchemy import table as table_clause

from engine.errors import MigrationError
from engine.metadata.model import Registry
from engine.storage.applied import SYSTEM_TABLES
from engine.storage.conversions import Unconvertible, convert_value
from engine.storage.matchkeys import column_normaliser
from engine.storage.migration_tables import ARCHIVE_TABLE
from engine.storage.plan import (
    AddColumn,
    AddFeature,
    AddIndex,
    AddMatchKey,
    AddOption,
    AddSystemColumns,
    AddUniqueConstraint,
    ArchiveField,
    ArchiveTable,
    ChangeField,
    ChangeLabel,
    ChangeMetadata,
    ConvertColumn,
    CreateSystemTables,
    CreateTable,
    DropIndex,
    DropMatchKey,
    DropUniqueConstraint,
    NeverReuseIds,
    PurgeArchived,
    RelabelOption,
    RemoveFeature,
    RemoveOption,
    RestoreField,
    Step,
    WidenType,
)
from engine.storage.record_ids import (
    dependent_tables,
    forget_records,
    highest_referenced_id,
    seed_ids,
)
from engine.storage.system_tables import NAMING_CONVENTION
from engine.storage.tables import StorageSchema

_CONVERT_CHUNK = 1000
_TEMP_PREFIX = "_tp_new_"


@dataclass
class Executor:
    """What every step needs: the connection, Alembic operations and both schemas."""

    conn: Connection
    applied: Registry
    applied_schema: StorageSchema
    target_schema: StorageSchema
    actor: str

    def __post_init__(self) -> None:
        # target_metadata carries our naming convention, so constraints Alembic
        # creates get the same names build_schema gives them.
        context = MigrationContext.configure(
            connection=self.conn,
            opts={"target_metadata": MetaData(naming_convention=NAMING_CONVENTION)},
        )
        self.ops = Operations(context)
        self.sqlite = self.conn.dialect.name == "sqlite"
        self.now = dt.datetime.now(dt.UTC)

    def run(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            EXECUTORS[type(step)](self, step)

    # -- helpers -----------------------------------------------------------------------

    @contextmanager
    def batch(self, table: str, *,
              recreate: Literal["auto", "always", "never"] = "auto") -> Iterator[BatchOperations]:
        """Alembic's batch mode, keeping what its reflection would lose on SQLite.

        A rebuilt table would come back without AUTOINCREMENT and with the
        high-water mark of the ids it still holds: the id of the newest deleted
        record would be handed out again. Both are put back.
        """
        high = self._high_water(table)
        with self.ops.batch_alter_table(table, naming_convention=NAMING_CONVENTION,
                                        recreate=recreate,
                                        table_kwargs={"sqlite_autoincrement": True}) as batch:
            yield batch
        seed_ids(self.conn, table, above=high)

    def _high_water(self, table: str) -> int:
        if not self.sqlite:
            return 0
        seq = self.conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"),
                                {"t": table}).scalar_one_or_none() \
            if inspect(self.conn).has_table("sqlite_sequence") else None
        largest = self.conn.execute(select(func.max(table_clause(table, column_clause("id")).c.id))
                                    ).scalar_one_or_none()
        return max(int(seq or 0), int(largest or 0))

    def target_column(self, entity: str, name: str, *, as_name: str | None = None) -> Column[Any]:
        # A fresh column: Column._copy() leaves out foreign keys bound to a table.
        source = self.target_schema.table(entity).c[name]
        fks = [ForeignKey(fk.target_fullname, ondelete=fk.ondelete) for fk in source.foreign_keys]
        return Column(as_name or name, source.type, *fks, nullable=source.nullable)

    def foreign_keys_on(self, table: str, column: str) -> list[str]:
        return [str(fk["name"]) for fk in inspect(self.conn).get_foreign_keys(table)
                if column in fk["constrained_columns"] and fk.get("name")]

    def quote(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote(name)

    def add_columns(self, entity: str, names: tuple[str, ...]) -> None:
        columns = [self.target_column(entity, n) for n in names]
        if self.sqlite and any(c.foreign_keys for c in columns):
            with self.batch(entity) as batch:  # ADD COLUMN cannot name its constraint
                for column in columns:
                    batch.add_column(column)
            return
        for column in columns:
            self.ops.add_column(entity, column)

    def rename_columns(self, table: str, pairs: tuple[tuple[str, str], ...], *,
                       drop_foreign_keys: bool) -> None:
        """Rename each (column, new name); archived data is inert, so its FKs go."""
        fks = {c: self.foreign_keys_on(table, c) if drop_foreign_keys else [] for c, _ in pairs}
        if self.sqlite and any(fks.values()):
            with self.batch(table) as batch:
                for names in fks.values():
                    for name in names:
                        batch.drop_constraint(name, type_="foreignkey")
                for column, new_name in pairs:
                    batch.alter_column(column, new_column_name=new_name)
            return
        for names in fks.values():
            for name in names:
                self.ops.drop_constraint(name, table, type_="foreignkey")
        for column, new_name in pairs:
            self.ops.alter_column(table, column, new_column_name=new_name)

    def record_archive(self, *, entity: str, field: str | None, table_name: str,
                       columns: tuple[tuple[str, str], ...], definition: Any) -> None:
        self.conn.execute(SYSTEM_TABLES[ARCHIVE_TABLE].insert().values(
            entity=entity, field=field, table_name=table_name,
            columns=[list(p) for p in columns], definition=definition,
            archived_at=self.now, archived_by=self.actor))

    def mark_archive(self, archive_id: int, column: str) -> None:
        archive = SYSTEM_TABLES[ARCHIVE_TABLE]
        self.conn.execute(archive.update().where(archive.c.id == archive_id)
                          .values(**{column: self.now}))

    def field_document(self, entity: str, field: str) -> Any:
        entities = self.applied.document.get("entities") or {}
        for doc in (entities.get(entity) or {}).get("fields") or ():
            if doc.get("name") == field:
                return json.loads(json.dumps(doc, default=dict))
        return None

    def indexes_on(self, table: str, column: str) -> tuple[list[str], list[str]]:
        """(index names, unique constraint names) in the database that cover ``column``."""
        inspector = inspect(self.conn)
        uniques = [str(u["name"]) for u in inspector.get_unique_constraints(table)
                   if column in u["column_names"] and u.get("name")]
        indexes = [str(i["name"]) for i in inspector.get_indexes(table)
                   if column in i["column_names"] and i["name"] not in uniques]
        return indexes, uniques

    def drop_uniques(self, table: str, names: list[str]) -> None:
        if not names:
            return
        if self.sqlite:
            with self.batch(table) as batch:
                for name in names:
                    batch.drop_constraint(name, type_="unique")
            return
        for name in names:
            self.ops.drop_constraint(name, table, type_="unique")


Run = Callable[[Executor, Any], None]


def _nothing(_ex: Executor, _step: Step) -> None:
    """Metadata-only steps: recorded with the new version, no DDL."""


def _create_system_tables(ex: Executor, step: CreateSystemTables) -> None:
    for name in step.tables:  # the planner listed them referenced-first
        SYSTEM_TABLES[name].create(ex.conn)


def _add_system_columns(ex: Executor, step: AddSystemColumns) -> None:
    table = SYSTEM_TABLES[step.table]
    for name in step.columns:
        column = table.c[name]
        if not column.nullable:  # the engine only ever adds nullable system columns
            raise ValueError(f"cannot add NOT NULL column {name} to {step.table}")
        ex.ops.add_column(step.table, Column(name, column.type, nullable=True))


def _create_table(ex: Executor, step: CreateTable) -> None:
    ex.target_schema.table(step.entity).create(ex.conn)
    # An entity made again under an archived name: its new ids start above every id
    # that shares, history or activity still name, so none of them reaches a new record.
    dependents = dependent_tables(SYSTEM_TABLES)
    seed_ids(ex.conn, step.entity,
             above=highest_referenced_id(ex.conn, dependents, step.entity))


def _never_reuse_ids(ex: Executor, step: NeverReuseIds) -> None:
    if not ex.sqlite:
        return  # identity sequences never hand an id out twice
    with ex.batch(step.entity, recreate="always"):
        pass
    dependents = dependent_tables(SYSTEM_TABLES)
    seed_ids(ex.conn, step.entity,
             above=highest_referenced_id(ex.conn, dependents, step.entity))


def _archive_table(ex: Executor, step: ArchiveTable) -> None:
    inspector = inspect(ex.conn)
    # Index and constraint names are global to the schema: free them so the entity
    # can come back later. Unique constraints on SQLite are nameless autoindexes.
    if not ex.sqlite:
        for unique in inspector.get_unique_constraints(step.entity):
            ex.ops.drop_constraint(str(unique["name"]), step.entity, type_="unique")
        pk = inspector.get_pk_constraint(step.entity).get("name")
        if pk:
            ex.ops.execute(f"ALTER TABLE {ex.quote(step.entity)} RENAME CONSTRAINT "
                           f"{ex.quote(pk)} TO {ex.quote('pk_' + step.archived_as)}")
    for index in inspect(ex.conn).get_indexes(step.entity):
        if index["name"] and not index.get("duplicates_constraint"):
            ex.ops.drop_index(str(index["name"]), table_name=step.entity)
    ex.ops.rename_table(step.entity, step.archived_as)
    archive = SYSTEM_TABLES[ARCHIVE_TABLE]
    ex.conn.execute(archive.update().where(archive.c.table_name == step.entity)
                    .values(table_name=step.archived_as))
    entities = ex.applied.document.get("entities") or {}
    ex.record_archive(entity=step.entity, field=None, table_name=step.archived_as, columns=(),
                      definition=json.loads(json.dumps(entities.get(step.entity), default=dict)))


def _add_column(ex: Executor, step: AddColumn) -> None:
    ex.add_columns(step.entity, step.columns)


def _add_feature(ex: Executor, step: AddFeature) -> None:
    ex.add_columns(step.entity, step.columns)


def _archive_field(ex: Executor, step: ArchiveField) -> None:
    ex.rename_columns(step.entity, step.columns, drop_foreign_keys=True)
    ex.record_archive(entity=step.entity, field=step.field, table_name=step.entity,
                      columns=step.columns, definition=ex.field_document(step.entity, step.field))


def _remove_feature(ex: Executor, step: RemoveFeature) -> None:
    ex.rename_columns(step.entity, step.columns, drop_foreign_keys=True)
    for column, archived in step.columns:
        ex.record_archive(entity=step.entity, field=column, table_name=step.entity,
                          columns=((column, archived),), definition=None)


def _restore_field(ex: Executor, step: RestoreField) -> None:
    ex.rename_columns(step.entity, step.columns, drop_foreign_keys=False)
    for _archived, column in step.columns:
        for fk in ex.target_schema.table(step.entity).c[column].foreign_keys:
            name = f"fk_{step.entity}_{column}_{fk.column.table.name}"
            ondelete = fk.ondelete
            if ex.sqlite:
                with ex.batch(step.entity) as batch:
                    batch.create_foreign_key(name, fk.column.table.name, [column], ["id"],
                                             ondelete=ondelete)
            else:
                ex.ops.create_foreign_key(name, step.entity, fk.column.table.name, [column],
                                          ["id"], ondelete=ondelete)
    ex.mark_archive(step.archive_id, "restored_at")


def _purge_archived(ex: Executor, step: PurgeArchived) -> None:
    inspector = inspect(ex.conn)
    if step.field is None:
        if inspector.has_table(step.archived[0]):
            ex.ops.drop_table(step.archived[0])
        live = (table_clause(step.entity, column_clause("id"))
                if inspector.has_table(step.entity) else None)
        forget_records(ex.conn, dependent_tables(SYSTEM_TABLES), step.entity, keep=live)
    else:
        table = _archive_table_name(ex, step.archive_id)
        present = {c["name"] for c in inspector.get_columns(table)}
        columns = [c for c in step.archived if c in present]
        if ex.sqlite:
            with ex.batch(table) as batch:
                for column in columns:
                    batch.drop_column(column)
        else:
            for column in columns:
                ex.ops.drop_column(table, column)
    ex.mark_archive(step.archive_id, "purged_at")


def _archive_table_name(ex: Executor, archive_id: int) -> str:
    archive = SYSTEM_TABLES[ARCHIVE_TABLE]
    return str(ex.conn.execute(select(archive.c.table_name).where(archive.c.id == archive_id))
               .scalar_one())


def _widen_type(ex: Executor, step: WidenType) -> None:
    new_type = ex.target_schema.table(step.entity).c[step.field].type
    old_type = ex.applied_schema.table(step.entity).c[step.field].type
    if ex.sqlite:
        with ex.batch(step.entity) as batch:
            batch.alter_column(step.field, type_=new_type, existing_type=old_type)
        return
    # Every widening has an implicit cast on PostgreSQL (varchar -> longer varchar or
    # text, integer -> bigint or numeric, numeric -> wider numeric): no USING needed.
    ex.ops.alter_column(step.entity, step.field, type_=new_type, existing_type=old_type)


def _convert_column(ex: Executor, step: ConvertColumn) -> None:
    """New column of the new type, filled row by row with ``convert_value``, then swapped in.

    The same conversion function the planner counted with, so what apply writes is
    exactly what the plan promised; a value that fails now (it cannot, inside the
    same transaction) raises and rolls everything back.
    """
    entity, field = step.entity, step.field
    temp = (_TEMP_PREFIX + field)[:63]
    indexes, uniques = ex.indexes_on(entity, field)
    for name in indexes:
        ex.ops.drop_index(name, table_name=entity)
    ex.drop_uniques(entity, uniques)
    # The foreign key, if any, comes back once the column has its final name.
    new_type = ex.target_schema.table(entity).c[field].type
    ex.ops.add_column(entity, Column(temp, new_type, nullable=True))
    _fill_converted(ex, step, temp)
    old_fks = ex.foreign_keys_on(entity, field)
    if ex.sqlite:
        with ex.batch(entity) as batch:
            for name in old_fks:
                batch.drop_constraint(name, type_="foreignkey")
            batch.drop_column(field)
            batch.alter_column(temp, new_column_name=field)
    else:
        for name in old_fks:
            ex.ops.drop_constraint(name, entity, type_="foreignkey")
        ex.ops.drop_column(entity, field)
        ex.ops.alter_column(entity, temp, new_column_name=field)
    _restore_field_constraints(ex, entity, field)
    if step.archive_columns:
        ex.rename_columns(entity, step.archive_columns, drop_foreign_keys=True)
        ex.record_archive(entity=entity, field=field, table_name=entity,
                          columns=step.archive_columns, definition=None)
    if step.add_columns:
        ex.add_columns(entity, step.add_columns)


def _fill_converted(ex: Executor, step: ConvertColumn, temp: str) -> None:
    old_table = ex.applied_schema.table(step.entity)
    old_field = ex.applied.entity(step.entity).field(step.field)
    new_field = ex.target_schema.registry.entity(step.entity).field(step.field)
    target = Table(step.entity, MetaData(), Column("id", old_table.c.id.type, primary_key=True),
                   Column(temp, ex.target_schema.table(step.entity).c[step.field].type))
    statement = (update(target).where(target.c.id == bindparam("b_id"))
                 .values({temp: bindparam("b_value")}))
    last = None
    source = old_table.c[step.field]
    while True:
        query = select(old_table.c.id, source).where(source.is_not(None))
        if last is not None:
            query = query.where(old_table.c.id > last)
        rows = ex.conn.execute(query.order_by(old_table.c.id).limit(_CONVERT_CHUNK)).all()
        if not rows:
            return
        batch = []
        for record_id, value in rows:
            try:
                batch.append({"b_id": record_id,
                              "b_value": convert_value(value, old=old_field, new=new_field)})
            except Unconvertible:
                raise MigrationError([(f"{step.entity}.{step.field}: row {record_id} cannot "
                                      f"convert from {step.from_type} to {step.to_type}")]) from None
        ex.conn.execute(statement, batch)
        last = rows[-1][0]


def _restore_field_constraints(ex: Executor, entity: str, field: str) -> None:
    """Re-create the target's indexes, unique constraints and FK on a swapped column."""
    table = ex.target_schema.table(entity)
    column = table.c[field]
    for fk in column.foreign_keys:
        referred = fk.column.table.name
        name = f"fk_{entity}_{field}_{referred}"
        if ex.sqlite:
            with ex.batch(entity) as batch:
                batch.create_foreign_key(name, referred, [field], ["id"], ondelete=fk.ondelete)
        else:
            ex.ops.create_foreign_key(name, entity, referred, [field], ["id"],
                                      ondelete=fk.ondelete)
    for index in table.indexes:
        if field in index.columns:
            ex.ops.create_index(str(index.name), entity, [c.name for c in index.columns])
    uniques = [c for c in table.constraints
               if isinstance(c, UniqueConstraint) and field in c.columns]
    for unique in uniques:
        _create_unique(ex, entity, str(unique.name), tuple(c.name for c in unique.columns))


def _create_unique(ex: Executor, entity: str, name: str, columns: tuple[str, ...]) -> None:
    if ex.sqlite:
        with ex.batch(entity) as batch:
            batch.create_unique_constraint(name, list(columns))
    else:
        ex.ops.create_unique_constraint(name, entity, list(columns))


def _add_index(ex: Executor, step: AddIndex) -> None:
    ex.ops.create_index(step.name, step.entity, list(step.columns))


def _drop_index(ex: Executor, step: DropIndex) -> None:
    ex.ops.drop_index(step.name, table_name=step.entity)


def _add_unique(ex: Executor, step: AddUniqueConstraint) -> None:
    # A column conversion earlier in the plan may have recreated it already (a unique
    # key that moved from a match-key column back to the converted column).
    existing = {u.get("name") for u in inspect(ex.conn).get_unique_constraints(step.entity)}
    if step.name in existing:
        return
    _create_unique(ex, step.entity, step.name, step.columns)


def _drop_unique(ex: Executor, step: DropUniqueConstraint) -> None:
    ex.drop_uniques(step.entity, [step.name])


def _add_match_key(ex: Executor, step: AddMatchKey) -> None:
    """Add the key column, then key every row that has a value, a chunk at a time."""
    table = ex.target_schema.table(step.entity)
    if step.refill:
        # Empty first: recomputing row by row could meet an old key another row still
        # holds under the unique constraint.
        ex.conn.execute(update(table).values({table.c[step.column]: None}))
    else:
        ex.add_columns(step.entity, (step.column,))
    norm = column_normaliser(table.c[step.column].info)
    assert norm is not None
    raw, key_col = table.c[step.field], table.c[step.column]
    stmt = (update(table).where(table.c.id == bindparam("_id"))
            .values({key_col: bindparam("_key")}))
    last = None
    while True:
        page = select(table.c.id, raw).where(raw.is_not(None)).order_by(table.c.id) \
            .limit(_CONVERT_CHUNK)
        if last is not None:
            page = page.where(table.c.id > last)
        rows = ex.conn.execute(page).all()
        if not rows:
            return
        ex.conn.execute(stmt, [{"_id": i, "_key": norm(v)} for i, v in rows])
        last = rows[-1][0]


def _drop_match_key(ex: Executor, step: DropMatchKey) -> None:
    if ex.sqlite:
        with ex.batch(step.entity) as batch:
            batch.drop_column(step.column)
    else:
        ex.ops.drop_column(step.entity, step.column)


#: Step type -> what executes it. A new step type must be added here (a test checks).
EXECUTORS: Mapping[type[Step], Run] = {
    CreateSystemTables: _create_system_tables,
    AddSystemColumns: _add_system_columns,
    CreateTable: _create_table,
    NeverReuseIds: _never_reuse_ids,
    ArchiveTable: _archive_table,
    AddColumn: _add_column,
    AddFeature: _add_feature,
    ArchiveField: _archive_field,
    RemoveFeature: _remove_feature,
    RestoreField: _restore_field,
    PurgeArchived: _purge_archived,
    WidenType: _widen_type,
    ConvertColumn: _convert_column,
    AddIndex: _add_index,
    DropIndex: _drop_index,
    AddUniqueConstraint: _add_unique,
    DropUniqueConstraint: _drop_unique,
    AddMatchKey: _add_match_key,
    DropMatchKey: _drop_match_key,
    AddOption: _nothing,
    RemoveOption: _nothing,
    RelabelOption: _nothing,
    ChangeLabel: _nothing,
    ChangeField: _nothing,
    ChangeMetadata: _nothing,
}
