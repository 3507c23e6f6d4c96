"""Registry -> SQLAlchemy Core tables with real typed columns.

One ``StorageSchema`` per registry version: a fresh ``MetaData`` is built and
swapped in whole (a MetaData is safe to read from many threads, not to change
while read). Field metadata rides in ``Column.info["field"]``; companion
columns (money currency, geo latitude/longitude) carry ``info["part"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from engine.metadata.model import Entity, Feature, Field, FieldType, OnDelete, Registry
from engine.metadata.names import SYSTEM_COLUMNS  # noqa: F401  (re-exported for storage callers)
from engine.storage.matchkeys import key_column, keyed_fields, stem_column, stem_fields
from engine.storage.system_tables import (
    NAMING_CONVENTION,
    USER_TABLE,
    IdType,
    InstantType,
    JsonType,
    add_system_tables,
)

DEFAULT_TEXT_LENGTH = 255
_FIXED_LENGTHS = {FieldType.EMAIL: 254, FieldType.PHONE: 32, FieldType.URL: 2048,
                  FieldType.SELECT: 64, FieldType.AUTO_NUMBER: 64}
_ONDELETE = {OnDelete.RESTRICT: "RESTRICT", OnDelete.CASCADE: "CASCADE",
             OnDelete.SET_NULL: "SET NULL"}


def column_type(field: Field) -> TypeEngine[Any]:
    """The SQL type of a field's main column."""
    t = field.type
    if t is FieldType.TEXT:
        return String(field.max_length or DEFAULT_TEXT_LENGTH)
    if t in _FIXED_LENGTHS:
        return String(max(_FIXED_LENGTHS[t], field.max_length or 0))
    if t in (FieldType.LONG_TEXT, FieldType.RICH_TEXT):
        return Text()
    if t is FieldType.INTEGER:
        return Integer() if _fits_int32(field) else IdType
    if t is FieldType.DECIMAL:
        return Numeric(field.precision or 18, field.scale if field.scale is not None else 4)
    if t is FieldType.MONEY:
        return Numeric(field.precision or 18, field.scale if field.scale is not None else 2)
    if t is FieldType.PERCENT:
        return Numeric(9, field.scale if field.scale is not None else 4)
    if t is FieldType.BOOLEAN:
        return Boolean()
    if t is FieldType.DATE:
        return Date()
    if t is FieldType.DATETIME:
        return InstantType
    if t in (FieldType.MULTI_SELECT, FieldType.ADDRESS, FieldType.FILE):
        return JsonType
    if t in (FieldType.REFERENCE, FieldType.USER):
        return IdType
    if t is FieldType.RATING:
        return SmallInteger()
    if t is FieldType.GEO_POINT:
        return Double()  # latitude; the longitude is a companion column
    raise AssertionError(f"unmapped field type {t}")


def _fits_int32(field: Field) -> bool:
    return (field.min is not None and field.max is not None
            and -(2**31) <= field.min and field.max < 2**31)


def companion_columns(field: Field) -> dict[str, TypeEngine[Any]]:
    """Extra columns a field type spans, by full column name."""
    if field.type is FieldType.MONEY:
        return {f"{field.name}_currency": String(3)}
    if field.type is FieldType.GEO_POINT:
        return {f"{field.name}_lng": Double()}
    return {}


def field_column_names(field: Field) -> tuple[str, ...]:
    """Every column a field occupies (main column first)."""
    return (field.name, *companion_columns(field))


def entity_columns(entity: Entity) -> list[Column[object]]:
    """System columns the entity's features need, then one or more per field."""
    cols: list[Column[object]] = [
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("created_at", InstantType, nullable=False),
        Column("updated_at", InstantType, nullable=False),
        Column("created_by", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        Column("version", Integer, nullable=False, default=1),
    ]
    if entity.has(Feature.OWNED):
        cols.append(Column("owner_id", IdType,
                           ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")))
    if entity.has(Feature.POOLED):
        cols.append(Column("pool_id", String(63)))
    if entity.has(Feature.PIPELINED):
        cols.append(Column("stage", String(63)))
    if entity.has(Feature.SOFT_DELETE):
        cols.append(Column("deleted_at", InstantType))
    for field in entity.fields:
        cols.append(field_column(field))
        for name, type_ in companion_columns(field).items():
            cols.append(Column(name, type_, info={"field": field, "part": name}))
    # Key columns hold normalised values (engine/storage/matchkeys.py); no "field" in
    # their info, so readers of field columns never see them.
    for field in keyed_fields(entity):
        cols.append(Column(key_column(field.name), Text(), nullable=True,
                           info={"key_of": field}))
    # Name stems of similar_name dedup rules: key columns too (added, filled and dropped
    # by the same migration steps), with their own normalisation.
    for field in stem_fields(entity):
        cols.append(Column(stem_column(field.name), Text(), nullable=True,
                           info={"key_of": field, "stem_of": field}))
    return cols


def field_column(field: Field) -> Column[object]:
    """The main column of a field, with its foreign key when it references something."""
    args: list[ForeignKey] = []
    if field.type is FieldType.REFERENCE and field.target:
        args.append(ForeignKey(f"{field.target}.id", ondelete=_ONDELETE[field.on_delete]))
    elif field.type is FieldType.USER:
        args.append(ForeignKey(f"{USER_TABLE}.id", ondelete=_ONDELETE[field.on_delete]))
    # Required is enforced by the records service, not NOT NULL: adding a required
    # field to a table with rows must stay instant and lossless.
    return Column(field.name, column_type(field), *args, nullable=True, info={"field": field})


def entity_table_args(entity: Entity) -> list[SchemaItem]:
    """Unique constraints and indexes: declared ones plus the ones list scopes need."""
    args: list[SchemaItem] = []
    keyed = {f.name for f in keyed_fields(entity)}

    def unique_columns(fields: tuple[str, ...]) -> list[str]:
        # A unique key compares normalised values: it sits on the key columns.
        return [key_column(f) if f in keyed else f for f in fields]

    for key in entity.unique_keys:
        args.append(UniqueConstraint(*unique_columns(key.fields),
                                     name=f"uq_{entity.name}_{key.name}"))
    for field in entity.fields:
        if field.unique and not any(k.fields == (field.name,) for k in entity.unique_keys):
            args.append(UniqueConstraint(*unique_columns((field.name,)),
                                         name=f"uq_{entity.name}_{field.name}"))
        if field.type in (FieldType.REFERENCE, FieldType.USER):
            args.append(Index(f"ix_{entity.name}_{field.name}", field.name, "id"))
    # Lists sort on an indexed field with id as the tie-breaker: ending every index
    # with id lets both databases read a keyset page straight off the index
    # (without it PostgreSQL sorted all 1M rows for one page; bench/bench_records.py).
    for index in entity.indexes:
        args.append(Index(index.name, *index.fields, "id"))
    # Dedup probes and the candidates screen's GROUP BY read these indexes.
    unique_fields = {f for k in entity.unique_keys for f in k.fields} | \
        {f.name for f in entity.fields if f.unique}
    for name in entity.dedup_keys:
        if name in keyed and name not in unique_fields:
            args.append(Index(f"ix_{entity.name}_{key_column(name)}", key_column(name), "id"))
    for field in stem_fields(entity):
        args.append(Index(f"ix_{entity.name}_{stem_column(field.name)}",
                          stem_column(field.name), "id"))
    # Keyset pagination indexes (notes/casbin-rowfilter.md, "rules for the list engine").
    args.append(Index(f"ix_{entity.name}_recent", "updated_at", "id"))
    if entity.has(Feature.OWNED):
        args.append(Index(f"ix_{entity.name}_owner_recent", "owner_id", "updated_at", "id"))
    if entity.has(Feature.POOLED):
        args.append(Index(f"ix_{entity.name}_pool_recent", "pool_id", "updated_at", "id"))
    if entity.has(Feature.PIPELINED):
        # A kanban column is a keyset page of one stage, newest first.
        args.append(Index(f"ix_{entity.name}_stage_recent", "stage", "updated_at", "id"))
        if entity.has(Feature.OWNED):
            # A rep's (or a team's) column: owner and stage both bound, so a capped
            # column count and a column page read only that owner's cards of that
            # stage (with either index alone SQLite read a whole stage; issue 13).
            args.append(Index(f"ix_{entity.name}_owner_stage", "owner_id", "stage",
                              "updated_at", "id"))
    return args


@dataclass(frozen=True)
class StorageSchema:
    """The tables of one registry version, built once and then only read."""

    registry: Registry
    metadata: MetaData
    tables: Mapping[str, Table]          # entity name -> table
    system: Mapping[str, Table]          # tp_* tables by name

    def table(self, entity: str) -> Table:
        return self.tables[entity]


def build_schema(registry: Registry) -> StorageSchema:
    """Build a fresh MetaData holding the system tables and one table per entity."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    system = add_system_tables(metadata)
    tables: dict[str, Table] = {}
    for entity in registry.entities.values():
        tables[entity.name] = Table(
            entity.name, metadata, *entity_columns(entity), *entity_table_args(entity),
            info={"entity": entity},
            # A deleted record's id is never handed out again: shares, history and
            # activity name records by id (engine/storage/record_ids.py).
            sqlite_autoincrement=True,
        )
    return StorageSchema(registry=registry, metadata=metadata, tables=tables, system=system)
