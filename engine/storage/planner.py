"""Plan a migration: diff the applied registry against the target, then ask the data.

The planner is a diff of two registries (and of the tables ``build_schema``
makes of them) plus a handful of read-only queries: row counts, duplicate
groups for a new unique key, and the distinct values of a column whose type
narrows, each run through ``conversions.convert_value``. It writes nothing;
``ddl.py`` executes the plan it returns.

Order of the steps: system tables, archived entities, new tables, then per
kept entity (drop indexes, archive fields, type changes, new columns, new
features, metadata-only changes, new unique constraints and indexes), then
other metadata, then purges.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    Index,
    Table,
    UniqueConstraint,
    and_,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy import table as table_clause

from engine.metadata.model import (
    OPTION_TYPES,
    Entity,
    Feature,
    Field,
    FieldType,
    Pipeline,
    Registry,
)
from engine.metadata.names import SYSTEM_COLUMNS
from engine.metadata.parse import parse_field
from engine.storage.applied import SYSTEM_TABLES, Archive, live_archives
from engine.storage.conversions import (
    Unconvertible,
    convert_value,
    describe_field_type,
    is_widening,
    spec_of,
)
from engine.storage.matchkeys import Normaliser, column_normaliser
from engine.storage.orphans import OrphanContext, find_orphans
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
    MigrationPlan,
    NeverReuseIds,
    PurgeArchived,
    RelabelOption,
    RemoveFeature,
    RemoveOption,
    RestoreField,
    Step,
    WidenType,
)
from engine.storage.record_ids import uses_autoincrement
from engine.storage.tables import (
    StorageSchema,
    build_schema,
    companion_columns,
    field_column_names,
)

ARCHIVE_PREFIX = "_archived_"
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names; keep every name we make within it

# Field properties whose change a type step already covers.
_TYPE_PROPERTIES = frozenset({"type", "max_length", "precision", "scale", "target"})
EMPTY_REGISTRY = Registry(apps=(), entities={})


def archive_name(base: str, taken: set[str]) -> str:
    """``_archived_<base>_<n>`` with the smallest n not in ``taken``, within 63 characters."""
    n = 1
    while True:
        suffix = f"_{n}"
        room = MAX_IDENTIFIER - len(ARCHIVE_PREFIX) - len(suffix)
        name = f"{ARCHIVE_PREFIX}{base[:room]}{suffix}"
        if name not in taken:
            taken.add(name)
            return name
        n += 1


def plan_migration(conn: Connection, *, applied: Registry | None, target: Registry,
                   purge_archived: bool = False) -> MigrationPlan:
    """The steps from ``applied`` (None: an empty database) to ``target``.

    Blocking problems (rows that cannot convert, duplicates against a new unique
    key, rows using a removed option) are collected, never raised: the plan
    shows them all and ``apply_migration`` refuses while there is one.
    """
    return _Planner(conn, applied=applied, target=target, purge=purge_archived).plan()


def system_table_steps(conn: Connection, *,
                       have: Callable[[str], set[str]] | None = None) -> list[Step]:
    """The engine's own tables and columns the database lacks (a database made by an
    older engine): what ``migrate`` adds first, and what ``serve`` refuses to run without."""
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    metadata = next(iter(SYSTEM_TABLES.values())).metadata
    steps: list[Step] = []
    missing = tuple(t.name for t in metadata.sorted_tables if t.name not in existing)
    if missing:
        steps.append(CreateSystemTables(missing))
    for table in metadata.sorted_tables:
        if table.name in existing:
            taken = have(table.name) if have is not None else \
                {c["name"] for c in inspector.get_columns(table.name)}
            lacking = tuple(c.name for c in table.columns if c.name not in taken)
            if lacking:
                steps.append(AddSystemColumns(table.name, lacking))
    return steps


class _Planner:
    def __init__(self, conn: Connection, *, applied: Registry | None, target: Registry,
                 purge: bool) -> None:
        self.conn = conn
        self.applied_fingerprint = applied.fingerprint if applied is not None else None
        self.applied = applied or EMPTY_REGISTRY
        self.target = target
        self.purge = purge
        self.inspector = inspect(conn)
        self.problems: list[str] = []
        self.restored: set[int] = set()
        self._tables_taken: set[str] | None = None
        self._columns_taken: dict[str, set[str]] = {}
        self.archives: list[Archive] = live_archives(conn)

    # -- entry -----------------------------------------------------------------------------

    def plan(self) -> MigrationPlan:
        steps: list[Step] = [*self._system_tables(), *self._id_steps()]
        if self.applied_fingerprint == self.target.fingerprint and not self.purge:
            return MigrationPlan(self.applied_fingerprint, self.target.fingerprint, tuple(steps),
                                 tuple(self.problems))
        old_schema, new_schema = build_schema(self.applied), build_schema(self.target)
        removed = [n for n in self.applied.entities if n not in self.target.entities]
        added = [n for n in self.target.entities if n not in self.applied.entities]
        steps += [self._archive_table(old_schema.table(name)) for name in removed]
        for table in new_schema.metadata.sorted_tables:  # referenced tables first
            if table.name in added:
                steps.append(CreateTable(table.name, tuple(c.name for c in table.columns)))
        removed_fields: dict[str, frozenset[str]] = {}
        for name, entity in self.target.entities.items():
            if name in self.applied.entities:
                old = self.applied.entities[name]
                removed_fields[name] = frozenset(
                    f.name for f in old.fields if not entity.has_field(f.name))
                steps += self._entity_steps(old, entity, old_schema, new_schema)
        steps += self._declaration_steps()
        self._check_removed_stages(old_schema)
        if self.purge:
            steps += self._purge_steps()
        if not steps and self.applied_fingerprint != self.target.fingerprint:
            steps.append(ChangeMetadata("registry", "", "changed"))
        orphans = find_orphans(OrphanContext(
            conn=self.conn, applied=self.applied, target=self.target,
            removed_fields=removed_fields, removed_entities=frozenset(removed)))
        return MigrationPlan(self.applied_fingerprint, self.target.fingerprint, tuple(steps),
                             tuple(self.problems), orphans)

    # -- tables ----------------------------------------------------------------------------

    def _system_tables(self) -> Iterable[Step]:
        return system_table_steps(self.conn, have=self._taken_columns)

    def _id_steps(self) -> Iterable[Step]:
        """Kept entity tables that would hand a deleted record's id to the next one."""
        existing = set(self.inspector.get_table_names())
        for name in self.applied.entities:
            if (name in self.target.entities and name in existing
                    and not uses_autoincrement(self.conn, name)):
                rows = self.conn.execute(
                    select(func.count()).select_from(table_clause(name))).scalar_one()
                yield NeverReuseIds(name, int(rows))

    def _archive_table(self, table: Table) -> ArchiveTable:
        if self._tables_taken is None:
            self._tables_taken = set(self.inspector.get_table_names())
        rows = self.conn.execute(select(func.count()).select_from(table)).scalar_one()
        return ArchiveTable(table.name, archive_name(table.name, self._tables_taken), rows)

    def _taken_columns(self, table: str) -> set[str]:
        if table not in self._columns_taken:
            self._columns_taken[table] = {c["name"] for c in self.inspector.get_columns(table)}
        return self._columns_taken[table]

    def _archive_pairs(self, table: str, columns: Iterable[str]) -> tuple[tuple[str, str], ...]:
        taken = self._taken_columns(table)
        return tuple((c, archive_name(c, taken)) for c in columns)

    # -- one kept entity -------------------------------------------------------------------

    def _entity_steps(self, old: Entity, new: Entity, old_schema: StorageSchema,
                      new_schema: StorageSchema) -> list[Step]:
        old_t, new_t = old_schema.table(old.name), new_schema.table(new.name)
        drops, adds = self._constraint_steps(old_t, new_t)
        archives: list[Step] = []
        types: list[Step] = []
        columns: list[Step] = []
        meta: list[Step] = []
        for field in old.fields:
            if not new.has_field(field.name):
                rows = self._count_values(old_t, field.name)
                archives.append(ArchiveField(old.name, field.name, self._archive_pairs(
                    old.name, field_column_names(field)), rows))
        for col, feature in SYSTEM_COLUMNS.items():
            if feature is None:
                continue
            if new.has(feature) and not old.has(feature):
                columns.append(AddFeature(new.name, feature.value, (col,)))
            elif old.has(feature) and not new.has(feature):
                archives.append(RemoveFeature(old.name, feature.value,
                                              self._archive_pairs(old.name, (col,))))
        for field in new.fields:
            if not old.has_field(field.name):
                columns.append(self._add_or_restore(new.name, field))
                continue
            type_steps, meta_steps = self._field_steps(old_t, old.field(field.name), field)
            types += type_steps
            meta += meta_steps
        key_drops, key_adds = self._match_key_steps(old_t, new_t)
        if old.label != new.label:
            meta.append(ChangeLabel(new.name, None))
        changed = [f.value for f in old.features ^ new.features
                   if f not in SYSTEM_COLUMNS.values()]
        if (changed or old.title_field != new.title_field
                or old.search_fields != new.search_fields
                or old.plural_label != new.plural_label):
            meta.append(ChangeMetadata("entity", new.name, "changed"))
        return [*drops, *key_drops, *archives, *types, *columns, *key_adds, *meta, *adds]

    def _match_key_steps(self, old_t: Table, new_t: Table) -> tuple[list[Step], list[Step]]:
        """Key columns to drop (no longer needed) and to add and fill (newly needed)."""
        old_k = {c.name: c.info["key_of"].name for c in old_t.c if "key_of" in c.info}
        new_k = {c.name: c.info["key_of"].name for c in new_t.c if "key_of" in c.info}
        drops: list[Step] = [DropMatchKey(old_t.name, f, c) for c, f in old_k.items()
                             if c not in new_k]
        adds: list[Step] = []
        for column, field in new_k.items():
            refill = False
            if column in old_k:
                if column_normaliser(old_t.c[column].info) is \
                        column_normaliser(new_t.c[column].info):
                    continue
                # Same column, new normalisation: kept unique keys must hold for the new keys.
                refill = True
                for name, (kind, cols) in _constraints(new_t).items():
                    if kind == "unique" and column in cols and name in _constraints(old_t):
                        self._key_duplicates_refused(old_t, new_t, name, cols,
                                                     rekeyed={column})
            rows = self._count_values(old_t, field) if field in old_t.c else 0
            adds.append(AddMatchKey(new_t.name, field, column, rows, refill))
        return drops, adds

    def _constraint_steps(self, old_t: Table, new_t: Table) -> tuple[list[Step], list[Step]]:
        old_c, new_c = _constraints(old_t), _constraints(new_t)
        drops: list[Step] = []
        adds: list[Step] = []
        for name, (kind, cols) in old_c.items():
            if new_c.get(name) != (kind, cols):
                step_type = DropUniqueConstraint if kind == "unique" else DropIndex
                drops.append(step_type(old_t.name, name, cols))
        for name, (kind, cols) in new_c.items():
            if old_c.get(name) == (kind, cols):
                continue
            if kind != "unique":
                adds.append(AddIndex(new_t.name, name, cols))
                continue
            if self._duplicates_refused(old_t, name, cols) or \
                    self._key_duplicates_refused(old_t, new_t, name, cols):
                continue
            adds.append(AddUniqueConstraint(new_t.name, name, cols))
        return drops, adds

    def _duplicates_refused(self, old_t: Table, name: str, cols: tuple[str, ...]) -> bool:
        if not all(c in old_t.c for c in cols):
            return False  # a new column holds no values yet
        columns = [old_t.c[c] for c in cols]
        groups = (select(func.count().label("n")).select_from(old_t)
                  .where(and_(*(c.is_not(None) for c in columns)))
                  .group_by(*columns).having(func.count() > 1).subquery())
        count, rows = self.conn.execute(
            select(func.count(), func.coalesce(func.sum(groups.c.n), 0))).one()
        if not count:
            return False
        self.problems.append(
            f"{old_t.name}.{name}: {rows} rows have duplicate values of ({', '.join(cols)}) "
            f"in {count} group(s); the unique constraint cannot be added")
        return True

    def _key_duplicates_refused(self, old_t: Table, new_t: Table, name: str,
                                cols: tuple[str, ...], *,
                                rekeyed: frozenset[str] | set[str] = frozenset()) -> bool:
        """Rows whose *normalised* values would break a unique key on new key columns.

        The keys do not exist yet, so the rows are read and keyed here; the problem
        lists how many groups and rows and the ids of the first groups, so a person
        can merge or correct them before migrating again.
        """
        sources: list[str] = []
        norms: list[Normaliser | None] = []
        for c in cols:
            field = new_t.c[c].info.get("key_of")
            if field is None:
                sources.append(c)
                norms.append(None)
            elif c in old_t.c and c not in rekeyed:
                return False  # existing keys: the SQL check above saw them
            else:
                sources.append(field.name)
                norms.append(column_normaliser(new_t.c[c].info))
        if not all(s in old_t.c for s in sources):
            return False  # a new column holds no values yet
        groups: dict[tuple[Any, ...], list[int]] = {}
        columns = [old_t.c[s] for s in sources]
        result = self.conn.execute(select(old_t.c.id, *columns).where(
            and_(*(c.is_not(None) for c in columns))).order_by(old_t.c.id))
        for row in result:
            k = tuple(v if n is None else n(v) for v, n in zip(row[1:], norms))
            if None not in k:
                groups.setdefault(k, []).append(row[0])
        dups = [ids for ids in groups.values() if len(ids) > 1]
        if not dups:
            return False
        shown = "; ".join("ids " + ", ".join(map(str, ids[:10])) for ids in dups[:5])
        more = f"; and {len(dups) - 5} more group(s)" if len(dups) > 5 else ""
        self.problems.append(
            f"{old_t.name}.{name}: {sum(map(len, dups))} rows share a normalised value of "
            f"({', '.join(sources)}) in {len(dups)} group(s) ({shown}{more}); merge or "
            f"correct them, then migrate again")
        return True

    def _add_or_restore(self, entity: str, field: Field) -> Step:
        for archive in reversed(self.archives):
            if (archive.entity != entity or archive.field != field.name
                    or archive.definition is None or archive.table_name != entity
                    or archive.id in self.restored):
                continue
            before = parse_field(archive.definition, source=field.source)
            if (spec_of(before) == spec_of(field)
                    and field_column_names(before) == field_column_names(field)
                    and before.target == field.target
                    and self._archived_columns_exist(entity, archive)):
                self.restored.add(archive.id)
                return RestoreField(entity, field.name,
                                    tuple((a, c) for c, a in archive.columns), archive.id)
        return AddColumn(entity, field.name, field_column_names(field))

    def _archived_columns_exist(self, table: str, archive: Archive) -> bool:
        existing = self._taken_columns(table)
        return all(a in existing and c not in existing for c, a in archive.columns)

    # -- one kept field --------------------------------------------------------------------

    def _field_steps(self, table: Table, old: Field, new: Field) -> tuple[list[Step], list[Step]]:
        entity = table.name
        type_steps: list[Step] = []
        meta: list[Step] = []
        old_spec, new_spec = spec_of(old), spec_of(new)
        reference_change = (new.type in (FieldType.REFERENCE, FieldType.USER)
                            and (old.type is not new.type or old.target != new.target))
        option_check = new.type in OPTION_TYPES and old.type is not new.type
        old_comp, new_comp = set(companion_columns(old)), set(companion_columns(new))
        from_type, to_type = describe_field_type(old), describe_field_type(new)
        column_step = False
        if reference_change or option_check or (
                old_spec != new_spec and not is_widening(old_spec, new_spec)):
            rows, failed = self._scan(table, old, new)
            column_step = True
            if failed:
                self.problems.append(
                    f"{entity}.{new.name}: {failed} rows cannot convert from {from_type} "
                    f"to {to_type}")
            elif old_spec != new_spec or reference_change or old_comp != new_comp:
                type_steps.append(ConvertColumn(
                    entity, new.name, from_type, to_type, rows,
                    add_columns=tuple(sorted(new_comp - old_comp)),
                    archive_columns=self._archive_pairs(entity, sorted(old_comp - new_comp))))
                old_comp = new_comp  # the convert step handles companions
        elif is_widening(old_spec, new_spec):
            column_step = True
            type_steps.append(WidenType(entity, new.name, from_type, to_type))
        if old_comp != new_comp:
            column_step = True
            if new_comp - old_comp:
                type_steps.append(AddColumn(entity, new.name, tuple(sorted(new_comp - old_comp))))
            if old_comp - new_comp:
                type_steps.append(ArchiveField(
                    entity, new.name, self._archive_pairs(entity, sorted(old_comp - new_comp)),
                    self._count_values(table, next(iter(old_comp - new_comp)))))
        if old.type is new.type and new.type in OPTION_TYPES:
            meta += self._option_steps(table, old, new)
        if old.label != new.label:
            meta.append(ChangeLabel(entity, new.name))
        changed = _changed_properties(old, new, skip=_TYPE_PROPERTIES if column_step else ())
        if changed:
            meta.append(ChangeField(entity, new.name, changed))
        return type_steps, meta

    def _option_steps(self, table: Table, old: Field, new: Field) -> list[Step]:
        steps: list[Step] = []
        removed = [v for v in old.option_values if v not in new.option_values]
        if removed:
            usage = self._option_usage(table, old.name, set(removed))
            for value in removed:
                if usage.get(value):
                    self.problems.append(
                        f"{table.name}.{old.name}: {usage[value]} rows still use removed "
                        f"option {value!r}")
                else:
                    steps.append(RemoveOption(table.name, old.name, value))
        for option in new.options:
            before = old.option(option.value)
            if before is None:
                steps.append(AddOption(table.name, new.name, option.value))
            elif before != option:
                steps.append(RelabelOption(table.name, new.name, option.value))
        return steps

    # -- data queries ----------------------------------------------------------------------

    def _count_values(self, table: Table, column: str) -> int:
        col = table.c[column]
        return int(self.conn.execute(
            select(func.count()).select_from(table).where(col.is_not(None))).scalar_one())

    def _distinct(self, table: Table, column: str) -> list[tuple[Any, int]]:
        col = table.c[column]
        query = (select(col, func.count()).select_from(table).where(col.is_not(None))
                 .group_by(col))
        return [(value, int(n)) for value, n in self.conn.execute(query)]

    def _scan(self, table: Table, old: Field, new: Field) -> tuple[int, int]:
        """(rows holding a value, rows whose value would not convert)."""
        rows = failed = 0
        for value, n in self._distinct(table, old.name):
            rows += n
            try:
                convert_value(value, old=old, new=new)
            except Unconvertible:
                failed += n
        return rows, failed

    def _option_usage(self, table: Table, column: str, removed: set[str]) -> dict[str, int]:
        usage: dict[str, int] = {}
        for value, n in self._distinct(table, column):
            for chosen in (value if isinstance(value, list) else [value]):
                if chosen in removed:
                    usage[chosen] = usage.get(chosen, 0) + n
        return usage

    # -- other metadata and purges ---------------------------------------------------------

    def _check_removed_stages(self, old_schema: StorageSchema) -> None:
        """Rows sitting in a stage no target pipeline of their entity has, or selecting a
        pipeline (by the selector field's value) whose stages do not include theirs,
        block the plan: the stored key must stay a stage of the record's own pipeline."""
        for name, entity in self.target.entities.items():
            before = self.applied.entities.get(name)
            if before is None or not (before.has(Feature.PIPELINED)
                                      and entity.has(Feature.PIPELINED)):
                continue
            old_pipelines = self.applied.pipelines_of(name)
            new_pipelines = self.target.pipelines_of(name)
            if not old_pipelines or not new_pipelines:
                continue
            kept = {s.key for p in new_pipelines for s in p.stages}
            table = old_schema.table(name)
            stage = table.c.stage
            for held_by, key in ((p.name, s.key) for p in old_pipelines for s in p.stages
                                 if s.key not in kept):
                count = self.conn.execute(select(func.count()).select_from(table)
                                          .where(stage == key)).scalar_one()
                if count:
                    self.problems.append(
                        f"{name}.stage: {count} rows are in stage {key!r}, which pipeline "
                        f"{held_by} no longer has")
            if len(new_pipelines) > 1:
                self._check_pipeline_choice(name, table, new_pipelines, kept)

    def _check_pipeline_choice(self, name: str, table: Table, pipelines: tuple[Pipeline, ...],
                               kept: set[str]) -> None:
        """Rows whose selector value picks a pipeline their stage is not in."""
        selectors = [p.selector for p in pipelines if p.selector is not None]
        column = table.c.get(selectors[0].field)
        chosen = [v for sel in selectors for v in sel.values]
        for pipeline in pipelines:
            foreign = sorted(kept - {s.key for s in pipeline.stages})
            stmt = select(func.count()).select_from(table).where(table.c.stage.in_(foreign))
            if pipeline.selector is not None:
                if column is None:   # a new selector field: every row is still empty
                    continue
                stmt = stmt.where(column.in_(pipeline.selector.values))
            elif column is not None:
                stmt = stmt.where(or_(column.is_(None), column.not_in(chosen)))
            count = self.conn.execute(stmt).scalar_one() if foreign else 0
            if count:
                self.problems.append(
                    f"{name}.stage: {count} rows select pipeline {pipeline.name} by "
                    f"{selectors[0].field} but are in a stage of another pipeline; move them "
                    f"or change their {selectors[0].field} first")

    def _declaration_steps(self) -> list[Step]:
        steps: list[Step] = []
        pairs: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = [
            ("pipeline", self.applied.pipelines, self.target.pipelines),
            ("pool", self.applied.pools, self.target.pools),
            ("role", self.applied.roles, self.target.roles),
            ("app", {a.name: a for a in self.applied.apps}, {a.name: a for a in self.target.apps}),
        ]
        for what, before, after in pairs:
            for name in after:
                if name not in before:
                    steps.append(ChangeMetadata(what, name, "added"))
                elif _canon(before[name]) != _canon(after[name]):
                    steps.append(ChangeMetadata(what, name, "changed"))
            steps += [ChangeMetadata(what, name, "removed") for name in before if name not in after]
        return steps

    def _purge_steps(self) -> list[Step]:
        existing = set(self.inspector.get_table_names())
        steps: list[Step] = []
        for archive in self.archives:
            if archive.id in self.restored or archive.table_name not in existing:
                continue
            if archive.field is None:
                steps.append(PurgeArchived(archive.entity, None, (archive.table_name,),
                                           archive.id))
                continue
            present = self._taken_columns(archive.table_name)
            columns = tuple(a for _, a in archive.columns if a in present)
            if columns:
                steps.append(PurgeArchived(archive.entity, archive.field, columns, archive.id))
        return steps


def _constraints(table: Table) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Named unique constraints and indexes of a table: name -> (kind, columns)."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            found[str(constraint.name)] = ("unique", tuple(c.name for c in constraint.columns))
    for index in table.indexes:
        assert isinstance(index, Index)
        kind = "unique_index" if index.unique else "index"
        found[str(index.name)] = (kind, tuple(c.name for c in index.columns))
    return found


_WHERE_DECLARED = frozenset({"source", "app", "path"})


def _canon(value: Any) -> Any:
    """A comparable form of metadata that ignores where it was declared (``source``, and
    the ``app``/``path`` a registry read back from the database does not know)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple((f.name, _canon(getattr(value, f.name)))
                     for f in dataclasses.fields(value) if f.name not in _WHERE_DECLARED)
    if isinstance(value, (tuple, list)):
        return tuple(_canon(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(_canon(v) for v in value))
    if isinstance(value, Mapping):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _changed_properties(old: Field, new: Field, *, skip: Iterable[str]) -> tuple[str, ...]:
    ignored = {"name", "label", "options", "source", *skip}
    return tuple(f.name for f in dataclasses.fields(Field)
                 if f.name not in ignored and _canon(getattr(old, f.name))
                 != _canon(getattr(new, f.name)))

