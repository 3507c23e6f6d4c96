"""A migration plan: typed steps from the applied metadata to the target, as data.

The planner (``planner.py``) builds a ``MigrationPlan``; the executor (``ddl.py``)
turns its steps into DDL. Between the two the plan is shown to a person (the
admin preview, ``tidepool migrate --dry-run``) and stored as JSON with the
metadata version it produced, so every step says in one line what it does.

Steps hold names and short type descriptions only, never SQLAlchemy objects:
the executor looks the column definitions up in the target's tables.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from engine.messages import M


@dataclass(frozen=True)
class Step:
    """One change. ``touches_schema`` is False for metadata-only steps (no DDL)."""

    kind: ClassVar[str] = "step"
    touches_schema: ClassVar[bool] = True

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return {"kind": self.kind, **data}


def _cols(columns: tuple[str, ...]) -> str:
    return ", ".join(columns)


@dataclass(frozen=True)
class CreateSystemTables(Step):
    """The engine's own tp_* tables that the database lacks (all of them on init)."""

    tables: tuple[str, ...]
    kind: ClassVar[str] = "create_system_tables"

    def describe(self) -> str:
        return M("create system tables %(tables)s", tables=_cols(self.tables))


@dataclass(frozen=True)
class AddSystemColumns(Step):
    """Columns a newer engine added to one of its own tp_* tables (nullable, so
    existing rows need no value)."""

    table: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "add_system_columns"

    def describe(self) -> str:
        return M("add columns %(columns)s to system table %(table)s",
                 columns=_cols(self.columns), table=self.table)


@dataclass(frozen=True)
class CreateTable(Step):
    entity: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "create_table"

    def describe(self) -> str:
        return M("create table %(entity)s (%(n)s columns)", entity=self.entity,
                 n=len(self.columns))


@dataclass(frozen=True)
class NeverReuseIds(Step):
    """An entity table made before ids were AUTOINCREMENT on SQLite: rebuilt, rows and
    ids kept, so a deleted record's id is never handed to a new one; rows of shares
    and the like left behind by earlier hard deletes lose their power to grant."""

    entity: str
    rows: int
    kind: ClassVar[str] = "never_reuse_ids"

    def describe(self) -> str:
        return M("rebuild table %(entity)s so ids are never reused (%(rows)s rows kept "
                 "with their ids)", entity=self.entity, rows=self.rows)


@dataclass(frozen=True)
class ArchiveTable(Step):
    """A removed entity: its table is renamed, never dropped; its indexes go."""

    entity: str
    archived_as: str
    rows: int
    kind: ClassVar[str] = "archive_table"

    def describe(self) -> str:
        return M("archive entity %(entity)s: table renamed to %(archived_as)s "
                 "(%(rows)s rows kept)", entity=self.entity, archived_as=self.archived_as,
                 rows=self.rows)


@dataclass(frozen=True)
class AddColumn(Step):
    entity: str
    field: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "add_column"

    def describe(self) -> str:
        return M("add field %(entity)s.%(field)s (column %(columns)s)", entity=self.entity,
                 field=self.field, columns=_cols(self.columns))


@dataclass(frozen=True)
class ArchiveField(Step):
    """A removed field: each of its columns renamed ``(column, archived_as)``; data kept."""

    entity: str
    field: str
    columns: tuple[tuple[str, str], ...]
    rows: int
    kind: ClassVar[str] = "archive_field"

    def describe(self) -> str:
        renames = ", ".join(f"{c} -> {a}" for c, a in self.columns)
        return M("archive field %(entity)s.%(field)s: %(renames)s (%(rows)s rows with a "
                 "value kept)", entity=self.entity, field=self.field, renames=renames,
                 rows=self.rows)


@dataclass(frozen=True)
class RestoreField(Step):
    """A field added back with its archived type: the archived columns are renamed back."""

    entity: str
    field: str
    columns: tuple[tuple[str, str], ...]  # (archived_as, column)
    archive_id: int
    kind: ClassVar[str] = "restore_field"

    def describe(self) -> str:
        renames = ", ".join(f"{a} -> {c}" for a, c in self.columns)
        return M("restore archived field %(entity)s.%(field)s: %(renames)s",
                 entity=self.entity, field=self.field, renames=renames)


@dataclass(frozen=True)
class PurgeArchived(Step):
    """Drop what an earlier migration archived (only with ``purge_archived``)."""

    entity: str
    field: str | None
    archived: tuple[str, ...]   # archived column names, or the archived table name
    archive_id: int
    kind: ClassVar[str] = "purge_archived"

    def describe(self) -> str:
        if self.field is None:
            return M("PURGE archived table %(table)s (entity %(entity)s): data deleted",
                     table=self.archived[0], entity=self.entity)
        return M("PURGE archived field %(entity)s.%(field)s (columns %(columns)s): data "
                 "deleted", entity=self.entity, field=self.field,
                 columns=_cols(self.archived))


@dataclass(frozen=True)
class WidenType(Step):
    entity: str
    field: str
    from_type: str
    to_type: str
    kind: ClassVar[str] = "widen_type"

    def describe(self) -> str:
        return M("widen %(entity)s.%(field)s from %(from_type)s to %(to_type)s",
                 entity=self.entity, field=self.field, from_type=self.from_type,
                 to_type=self.to_type)


@dataclass(frozen=True)
class ConvertColumn(Step):
    """A narrowing or cross-type change every existing row survives, value by value."""

    entity: str
    field: str
    from_type: str
    to_type: str
    rows: int                                 # rows holding a value, all convertible
    add_columns: tuple[str, ...] = ()         # companion columns the new type brings
    archive_columns: tuple[tuple[str, str], ...] = ()  # companions the old type had
    kind: ClassVar[str] = "convert_column"

    def describe(self) -> str:
        extra = ""
        if self.add_columns:
            extra += f"; + {_cols(self.add_columns)}"
        if self.archive_columns:
            extra += "; " + ", ".join(f"{c} -> {a}" for c, a in self.archive_columns)
        return M("convert %(entity)s.%(field)s from %(from_type)s to %(to_type)s (%(rows)s "
                 "rows, all convertible)%(extra)s", entity=self.entity, field=self.field,
                 from_type=self.from_type, to_type=self.to_type, rows=self.rows, extra=extra)


@dataclass(frozen=True)
class AddFeature(Step):
    entity: str
    feature: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "add_feature"

    def describe(self) -> str:
        return M("add feature %(feature)s to %(entity)s (column %(columns)s)",
                 feature=self.feature, entity=self.entity, columns=_cols(self.columns))


@dataclass(frozen=True)
class RemoveFeature(Step):
    entity: str
    feature: str
    columns: tuple[tuple[str, str], ...]
    kind: ClassVar[str] = "remove_feature"

    def describe(self) -> str:
        renames = ", ".join(f"{c} -> {a}" for c, a in self.columns)
        return M("remove feature %(feature)s from %(entity)s: archive %(renames)s",
                 feature=self.feature, entity=self.entity, renames=renames)


@dataclass(frozen=True)
class AddIndex(Step):
    entity: str
    name: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "add_index"

    def describe(self) -> str:
        return M("add index %(name)s on %(entity)s (%(columns)s)", name=self.name,
                 entity=self.entity, columns=_cols(self.columns))


@dataclass(frozen=True)
class DropIndex(Step):
    entity: str
    name: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "drop_index"

    def describe(self) -> str:
        return M("drop index %(name)s on %(entity)s (%(columns)s); no data lost",
                 name=self.name, entity=self.entity, columns=_cols(self.columns))


@dataclass(frozen=True)
class AddUniqueConstraint(Step):
    entity: str
    name: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "add_unique"

    def describe(self) -> str:
        return M("add unique constraint %(name)s on %(entity)s (%(columns)s)", name=self.name,
                 entity=self.entity, columns=_cols(self.columns))


@dataclass(frozen=True)
class DropUniqueConstraint(Step):
    entity: str
    name: str
    columns: tuple[str, ...]
    kind: ClassVar[str] = "drop_unique"

    def describe(self) -> str:
        return M("drop unique constraint %(name)s on %(entity)s (%(columns)s); no data lost",
                 name=self.name, entity=self.entity, columns=_cols(self.columns))


@dataclass(frozen=True)
class AddMatchKey(Step):
    """A key column (normalised values, engine/storage/matchkeys.py) filled from the field."""

    entity: str
    field: str
    column: str
    rows: int
    refill: bool = False   # the column exists; its normalisation changed (e.g. text -> code)
    kind: ClassVar[str] = "add_match_key"

    def describe(self) -> str:
        if self.refill:
            return M("recompute match key %(entity)s.%(column)s from %(rows)s row(s) of "
                     "%(field)s", entity=self.entity, column=self.column, rows=self.rows,
                     field=self.field)
        return M("add match key %(entity)s.%(column)s and fill it from %(rows)s row(s) of "
                 "%(field)s", entity=self.entity, column=self.column, rows=self.rows,
                 field=self.field)


@dataclass(frozen=True)
class DropMatchKey(Step):
    """A key column no unique key or dedup rule needs any more: derived data, no loss."""

    entity: str
    field: str
    column: str
    kind: ClassVar[str] = "drop_match_key"

    def describe(self) -> str:
        return M("drop match key %(entity)s.%(column)s; no data lost", entity=self.entity,
                 column=self.column)


@dataclass(frozen=True)
class AddOption(Step):
    entity: str
    field: str
    value: str
    kind: ClassVar[str] = "add_option"
    touches_schema: ClassVar[bool] = False

    def describe(self) -> str:
        return M("add option %(value)s to %(entity)s.%(field)s (metadata only)",
                 value=repr(self.value), entity=self.entity, field=self.field)


@dataclass(frozen=True)
class RemoveOption(Step):
    entity: str
    field: str
    value: str
    kind: ClassVar[str] = "remove_option"
    touches_schema: ClassVar[bool] = False

    def describe(self) -> str:
        return M("remove option %(value)s from %(entity)s.%(field)s (no row uses it; "
                 "metadata only)", value=repr(self.value), entity=self.entity, field=self.field)


@dataclass(frozen=True)
class RelabelOption(Step):
    entity: str
    field: str
    value: str
    kind: ClassVar[str] = "relabel_option"
    touches_schema: ClassVar[bool] = False

    def describe(self) -> str:
        return M("change option %(value)s of %(entity)s.%(field)s (metadata only)",
                 value=repr(self.value), entity=self.entity, field=self.field)


@dataclass(frozen=True)
class ChangeLabel(Step):
    entity: str
    field: str | None
    kind: ClassVar[str] = "change_label"
    touches_schema: ClassVar[bool] = False

    def describe(self) -> str:
        if self.field:
            return M("change label of %(entity)s.%(field)s (metadata only)",
                     entity=self.entity, field=self.field)
        return M("change label of entity %(entity)s (metadata only)", entity=self.entity)


@dataclass(frozen=True)
class ChangeField(Step):
    """Field properties that live in metadata only (required, help, min/max, pattern...)."""

    entity: str
    field: str
    properties: tuple[str, ...]
    kind: ClassVar[str] = "change_field"
    touches_schema: ClassVar[bool] = False

    def describe(self) -> str:
        return M("change %(entity)s.%(field)s: %(properties)s (metadata only)",
                 entity=self.entity, field=self.field, properties=_cols(self.properties))


@dataclass(frozen=True)
class ChangeMetadata(Step):
    """Any other declaration (entity settings, pipeline, pool, role, app) added/changed/removed."""

    what: str        # entity | pipeline | pool | role | app | registry
    name: str
    change: str      # added | changed | removed
    kind: ClassVar[str] = "change_metadata"
    touches_schema: ClassVar[bool] = False

    def describe(self) -> str:
        templates = {"added": M("added %(what)s %(name)s (metadata only)", what=self.what,
                                name=self.name),
                     "removed": M("removed %(what)s %(name)s (metadata only)", what=self.what,
                                  name=self.name)}
        english = f"{self.change} {self.what} {self.name} (metadata only)".replace("  ", " ")
        found = templates.get(self.change)
        if found is not None and self.name:
            return found
        if self.change == "changed" and self.name:
            return M("changed %(what)s %(name)s (metadata only)", what=self.what, name=self.name)
        return english


@dataclass(frozen=True)
class Orphan:
    """Something that named a removed field or entity and will no longer find it."""

    what: str        # role | pool | pipeline | unique_key | index | saved_view ...
    name: str
    detail: str

    def describe(self) -> str:
        return f"{self.what} {self.name}: {self.detail}"

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class MigrationPlan:
    """Everything that applying ``target`` over ``applied`` would do, and what stops it.

    ``problems`` are blocking: while there is one, applying raises
    ``MigrationError`` with all of them. ``orphans`` are warnings: references that
    the change leaves dangling in the metadata applied so far or in stored data.
    """

    applied_fingerprint: str | None
    target_fingerprint: str
    steps: tuple[Step, ...] = ()
    problems: tuple[str, ...] = ()
    orphans: tuple[Orphan, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.steps and not self.problems

    @property
    def blocking(self) -> tuple[str, ...]:
        return self.problems

    @property
    def schema_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.touches_schema)

    def describe(self) -> str:
        """Several lines for a person: steps, then what blocks, then what is orphaned."""
        if self.is_empty:
            return "Nothing to migrate: the database matches the metadata."
        start = (self.applied_fingerprint or "")[:12] or "empty database"
        lines = [(f"Migration {start} -> "
                 f"{self.target_fingerprint[:12]}: {len(self.steps)} step(s)")]
        lines += [f"  {i}. {step.describe()}" for i, step in enumerate(self.steps, 1)]
        if self.problems:
            lines.append(f"BLOCKED by {len(self.problems)} problem(s):")
            lines += [f"  - {p}" for p in self.problems]
        if self.orphans:
            lines.append(f"Orphaned by this change ({len(self.orphans)}):")
            lines += [f"  - {o.describe()}" for o in self.orphans]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.applied_fingerprint,
            "to": self.target_fingerprint,
            "steps": [s.to_json() for s in self.steps],
            "problems": list(self.problems),
            "orphans": [o.to_json() for o in self.orphans],
        }
