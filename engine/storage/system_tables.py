"""Tables the engine itself owns, beside the entity tables.

Names start with ``tp_`` so that no entity can clash with them (the loader
refuses entity names with that prefix).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.dialects.sqlite.base import _SQliteJson


class _UtcSqliteDateTime(SQLITE_DATETIME):
    """SQLite stores instants as naive UTC text (an aware value in any zone moved to UTC
    first); read them back aware, in one C call.

    The default processor parses with a regex and returns naive values that every
    caller then had to mark as UTC; lists convert thousands of these per second.
    """

    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        store = super().bind_processor(dialect)
        assert store is not None  # SQLite's DATETIME always formats its values
        utc = UTC

        def process(value: Any) -> Any:
            # SQLite's processor writes the wall time and drops the zone: an aware value
            # in another zone (midnight in a pool's zone, a report's period start) would
            # be stored, or compared, as that wall time in UTC, hours off. It is moved to
            # UTC first; naive values are UTC already.
            zone = getattr(value, "tzinfo", None)
            if zone is not None and zone is not utc:
                value = value.astimezone(utc)
            return store(value)

        return process

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        parse = datetime.fromisoformat

        def process(value: Any) -> Any:
            if value is None or value.__class__ is not str:
                return value
            return parse(value + "+00:00")

        # The same, as an expression the direct reader writes into its row converters
        # (engine/storage/direct.py): {v} holds the raw value, {raw} reads it once.
        template = ("{v} if ({v} := {raw}) is None or {v}.__class__ is not str "
                    "else _iso{i}({v} + '+00:00')")
        process.inline = (template, {"_iso": parse})  # type: ignore[attr-defined]
        return process


class _SqliteJson(_SQliteJson):
    """JSON documents read back with the engine's decoder in one call per value.

    SQLAlchemy's SQLite JSON wraps its decoder in two layers of Python functions
    (a string processor and a guard for numbers); a list page decodes two or three
    documents per row. It subclasses the dialect's own (private) JSON type because
    the dialect replaces any other JSON subclass with that one.
    """

    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        loads = dialect._json_deserializer or json.loads

        def process(value: Any) -> Any:
            if value is None or isinstance(value, (int, float)):
                return value  # a number: SQLite's own value of a JSON scalar
            return loads(value)

        template = ("{v} if ({v} := {raw}) is None or isinstance({v}, (int, float)) "
                    "else _loads{i}({v})")
        process.inline = (template, {"_loads": loads})  # type: ignore[attr-defined]
        # For a reader that writes the value to JSON unchanged (a list page of the API):
        # the stored text is that JSON already (written by ``make_engine``'s orjson
        # serialiser), so it goes out as an ``orjson.Fragment`` instead of being parsed
        # and encoded again (two documents per row of a CRM list, issue 13).
        process.fragment = (template.replace("_loads", "_fragment"),  # type: ignore[attr-defined]
                            {"_fragment": orjson.Fragment})
        return process


#: Instants: aware datetimes in UTC from both databases (PostgreSQL sessions run
#: in UTC, see ``make_engine``).
InstantType = DateTime(timezone=True).with_variant(
    _UtcSqliteDateTime(), "sqlite")  # type: ignore[no-untyped-call]

#: One integer primary key type for every table: BIGINT on PostgreSQL, the
#: rowid alias INTEGER on SQLite (only INTEGER PRIMARY KEY autoincrements there).
IdType = BigInteger().with_variant(Integer(), "sqlite")
#: JSON that PostgreSQL can index and compare.
JsonType = JSON().with_variant(JSONB(), "postgresql").with_variant(
    _SqliteJson(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

USER_TABLE = "tp_user"


def add_system_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the engine's own tables on ``metadata`` and return them by name."""
    from engine.storage.identity_tables import add_identity_tables  # it imports this module

    identity = add_identity_tables(metadata)  # tp_user, org tree, tokens, Casbin rules, shares
    activity = Table(
        "tp_activity", metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("entity", String(63), nullable=False),
        Column("record_id", BigInteger, nullable=False),
        # create | update | delete | restore | comment | ... (workflow adds its own kinds)
        Column("kind", String(32), nullable=False),
        Column("actor_id", BigInteger, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        Column("at", InstantType, nullable=False),
        # [{"field": name, "old": json value, "new": json value}, ...]; a create's flat
        # [name, new, name, new, ...] (engine/records/activity.py)
        Column("changes", JsonType),
        Column("body", Text),
        # The rule or job behind a system write ("rule:<pool>.<rule>"); NULL for people.
        Column("via", String(127)),
        Index("ix_tp_activity_record", "entity", "record_id", "id"),
    )
    sequence = Table(
        "tp_sequence", metadata,
        Column("entity", String(63), primary_key=True),
        Column("field", String(63), primary_key=True),
        Column("period", String(16), primary_key=True),  # "" or e.g. "202611" for {YYYY}{MM}
        Column("last_value", BigInteger, nullable=False),
    )
    metadata_version = Table(
        "tp_metadata_version", metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("fingerprint", String(64), nullable=False),
        Column("document", JsonType, nullable=False),
        Column("plan", JsonType),  # the steps applied to reach this version
        Column("applied_at", DateTime(timezone=True), nullable=False),
        Column("applied_by", String(200)),
    )
    customisation = Table(
        "tp_customisation", metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("kind", String(32), nullable=False),  # entity | overlay | pipeline | pool | role
        Column("name", String(127), nullable=False),
        Column("document", JsonType, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("updated_by", BigInteger, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        UniqueConstraint("kind", "name"),
    )
    from engine.storage.import_mappings import add_import_tables  # it imports this module
    from engine.storage.merge_tables import add_merge_tables  # it imports this module
    from engine.storage.migration_tables import add_migration_tables  # it imports this module
    from engine.storage.notification_tables import add_notification_tables  # imports this
    from engine.storage.pool_tables import add_pool_tables  # it imports this module
    from engine.storage.report_tables import add_report_tables  # it imports this module
    from engine.storage.rule_tables import add_rule_tables  # it imports this module
    from engine.storage.settings import add_setting_tables  # it imports this module
    from engine.storage.stage_tables import add_stage_tables  # it imports this module
    from engine.storage.upload_tables import add_upload_tables  # it imports this module
    from engine.storage.view_tables import add_view_tables  # it imports this module

    return {**identity,
            **{t.name: t for t in (activity, sequence, metadata_version, customisation)},
            **add_migration_tables(metadata), **add_stage_tables(metadata),
            **add_view_tables(metadata), **add_upload_tables(metadata),
            **add_pool_tables(metadata), **add_rule_tables(metadata),
            **add_report_tables(metadata), **add_setting_tables(metadata),
            **add_notification_tables(metadata), **add_merge_tables(metadata),
            **add_import_tables(metadata)}
