"""What a metadata identifier may be: the rules that keep names safe as SQL.

Entity and field names become table and column names, so they must be plain
lower-case ASCII, fit PostgreSQL's 63-byte limit, avoid every keyword of SQLite
and PostgreSQL, and stay clear of the columns the engine adds itself. Storage
reads ``SYSTEM_COLUMNS`` and ``COMPANION_SUFFIXES`` from here, since layers
flow metadata -> storage and the loader must refuse a clash before any DDL.
"""

from __future__ import annotations

import re

from engine.metadata.model import Feature, FieldType

IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: PostgreSQL truncates longer identifiers silently; we refuse them instead.
MAX_IDENTIFIER_LENGTH = 63
#: Prefix of the engine's own tables (tp_user, tp_activity...).
SYSTEM_TABLE_PREFIX = "tp_"
#: The app name under which admin customisations are loaded.
CUSTOM_APP = "custom"

#: System columns and the feature that brings each (None = every entity has it).
SYSTEM_COLUMNS: dict[str, Feature | None] = {
    "id": None,
    "created_at": None,
    "updated_at": None,
    "created_by": None,
    "version": None,
    "owner_id": Feature.OWNED,
    "pool_id": Feature.POOLED,
    "stage": Feature.PIPELINED,
    "deleted_at": Feature.SOFT_DELETE,
}

#: Extra columns a field type spans: the field name plus this suffix.
COMPANION_SUFFIXES: dict[FieldType, str] = {
    FieldType.MONEY: "_currency",
    FieldType.GEO_POINT: "_lng",
}

# SQLite's keyword list (sqlite.org/lang_keywords.html), PostgreSQL's reserved and
# "reserved (can be function or type)" key words (Appendix C of its manual) and the
# names SQLite gives the rowid. Quoting would make most of them usable, but a name
# that needs quoting breaks hand-written reports and exports; refusing is simpler.
_RESERVED_TEXT = """
abort action add after all alter always analyse analyze and any array as asc asymmetric
attach authorization autoincrement before begin between binary both by cascade case cast
check collate collation column commit concurrently conflict constraint create cross
current current_catalog current_date current_role current_schema current_time
current_timestamp current_user database default deferrable deferred delete desc detach
distinct do drop each else end escape except exclude exclusive exists explain fail false
fetch filter first following for foreign freeze from full generated glob grant group
groups having if ignore ilike immediate in index indexed initially inner insert instead
intersect into is isnull join key last lateral leading left like limit localtime
localtimestamp match materialized natural no not nothing notnull null nulls of offset on
only or order others outer over overlaps partition placing plan pragma preceding primary
query raise range recursive references regexp reindex release rename replace restrict
returning right rollback row rows savepoint select session_user set similar some symmetric
system_user table tablesample temp temporary then ties to trailing transaction trigger true
unbounded union unique update user using vacuum values variadic verbose view virtual when
where window with without rowid oid _rowid_
"""
RESERVED_WORDS: frozenset[str] = frozenset(_RESERVED_TEXT.split())


def identifier_problem(name: str) -> str | None:
    """Why ``name`` cannot be a table or column name, or None when it can."""
    if not IDENTIFIER_RE.match(name):
        return (f"{name!r} is not a valid name: use a lower-case letter first, then lower-case "
                f"letters, digits or '_', at most {MAX_IDENTIFIER_LENGTH} characters")
    if name in RESERVED_WORDS:
        return f"{name!r} is a reserved SQL word; choose another name (e.g. {name}_name)"
    return None


def companion_names(field_name: str, field_type: FieldType) -> tuple[str, ...]:
    """The extra column names a field of this type adds beside its own column."""
    suffix = COMPANION_SUFFIXES.get(field_type)
    return (field_name + suffix,) if suffix else ()
