"""Per-entity precomputation: everything the records service needs, built once per schema.

A ``StorageSchema`` is immutable, so an ``EntityPlan`` built from it is too; the
service keeps one per entity and every call reuses its coercers, validators,
column lists and row converters instead of rebuilding them per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from sqlalchemy import Column, Table, select

from engine.metadata.model import Entity, Feature, Field, FieldType, LocalText
from engine.records.autonumber import AutoNumberFormat, parse_format
from engine.records.coerce import (
    Coercer,
    CoercionError,
    InputSource,
    coercer,
    json_writer,
    to_json,
)
from engine.records.validate import Validator, validator
from engine.storage.matchkeys import (
    Normaliser,
    key_column,
    keyed_fields,
    name_stem,
    normaliser,
    stem_column,
    stem_fields,
)
from engine.storage.tables import StorageSchema

#: System values a payload may never write.
READONLY_SYSTEM = frozenset({"id", "version", "created_at", "updated_at", "created_by",
                             "pool_id", "stage", "deleted_at"})
#: Types whose values are JSON documents: no ordering, no equality filters.
JSON_TYPES = frozenset({FieldType.MULTI_SELECT, FieldType.ADDRESS, FieldType.FILE,
                        FieldType.GEO_POINT})
#: Types whose Python values are already JSON-safe.
JSON_AS_IS = frozenset({FieldType.TEXT, FieldType.LONG_TEXT, FieldType.RICH_TEXT, FieldType.EMAIL,
                        FieldType.PHONE, FieldType.URL, FieldType.AUTO_NUMBER, FieldType.SELECT,
                        FieldType.INTEGER, FieldType.RATING, FieldType.BOOLEAN,
                        FieldType.REFERENCE, FieldType.USER})
#: Types that may be sorted on and compared with lt/gt (when indexed).
ORDERED_TYPES = frozenset(FieldType) - JSON_TYPES


def _pseudo(name: str, type_: FieldType) -> Field:
    return Field(name=name, type=type_, label=LocalText.of({"en": name}))


SYSTEM_FIELDS: dict[str, Field] = {
    "id": _pseudo("id", FieldType.INTEGER),
    "version": _pseudo("version", FieldType.INTEGER),
    "created_at": _pseudo("created_at", FieldType.DATETIME),
    "updated_at": _pseudo("updated_at", FieldType.DATETIME),
    "deleted_at": _pseudo("deleted_at", FieldType.DATETIME),
    "created_by": _pseudo("created_by", FieldType.USER),
    "owner_id": _pseudo("owner_id", FieldType.USER),
    "pool_id": _pseudo("pool_id", FieldType.TEXT),
    "stage": _pseudo("stage", FieldType.TEXT),
}


def utc(value: datetime | None) -> datetime | None:
    """Instants come back aware and in UTC from both databases (SQLite returns naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.utcoffset():
        return value.astimezone(UTC)
    return value


@dataclass(frozen=True)
class FieldPlan:
    """One field's precomputed behaviour."""

    field: Field
    name: str
    coerce_json: Coercer
    coerce_string: Coercer
    check: Validator
    default: Callable[[datetime], Any] | None
    columns: tuple[str, ...]          # main column first, then companions
    autonumber: AutoNumberFormat | None

    def coerce(self, value: Any, source: InputSource) -> Any:
        if source is InputSource.STRING:
            return self.coerce_string(value)
        return self.coerce_json(value)


@dataclass(frozen=True)
class UniqueSpec:
    """A unique key as the service checks it: ``columns`` are the key columns of
    normalised fields, and ``keys`` turn a field value into what those hold."""

    name: str
    fields: tuple[str, ...]
    columns: tuple[Column[Any], ...]
    keys: tuple[Normaliser | None, ...] = ()

    def key_of(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The tuple the unique constraint compares (None parts: no key)."""
        if not self.keys:
            return tuple(values.get(f) for f in self.fields)
        return tuple(values.get(f) if k is None else k(values.get(f))
                     for f, k in zip(self.fields, self.keys))


def _default(field: Field) -> Callable[[datetime], Any] | None:
    raw = field.default
    if raw is None or field.type is FieldType.AUTO_NUMBER:
        return None
    # ``now`` is aware and in the writer's zone, so "today" is their calendar day.
    if field.type is FieldType.DATE and raw == "today":
        return lambda now: now.date()
    if field.type is FieldType.DATETIME and raw == "now":
        return lambda now: now.astimezone(UTC)
    try:
        value = coercer(field)(raw)
    except CoercionError:
        value = coercer(field, InputSource.STRING)(raw) if isinstance(raw, str) else None
    if isinstance(value, (dict, list)):
        # A fresh copy per row: records must not share a mutable default.
        return lambda now: value.copy()
    return lambda now: value


def _part(name: str, part: str) -> Callable[[dict[str, Any]], Any]:
    def get(values: dict[str, Any]) -> Any:
        value = values[name]
        return None if value is None else value[part]

    return get


def _keyed(name: str, norm: Normaliser) -> Callable[[dict[str, Any]], Any]:
    def get(values: dict[str, Any]) -> Any:
        return norm(values[name])

    return get


def _row(i: int) -> str:
    return f"row[{i}]"


def _expression(plan: FieldPlan, index: dict[str, int],
                column: Callable[[int], str] = _row) -> str:
    """Python source reading one field's value from a row (see ``_compile_reader``).

    ``column(i)`` is the source of the row's i-th value: ``row[i]`` here, the column
    type's result processor around it in ``RowShape`` (engine/storage/direct.py).
    Each column's source appears once, so a processor runs once per value.
    """
    t = plan.field.type
    main = index[plan.name]
    if t is FieldType.MONEY:
        cur = index[plan.columns[1]]
        return (f"(None if (_v{main} := {column(main)}) is None else "
                f"{{'amount': _v{main}, 'currency': {column(cur)}}})")
    if t is FieldType.GEO_POINT:
        lng = index[plan.columns[1]]
        return (f"(None if (_v{main} := {column(main)}) is None else "
                f"{{'lat': _v{main}, 'lng': {column(lng)}}})")
    # Instants need no conversion: the column type reads them aware, in UTC
    # (engine/storage/system_tables.InstantType).
    return column(main)


class RowShape:
    """Record values from a result row, as the source of one dict display.

    ``source(column)`` is what ``to_values`` returns, with ``column(i)`` giving the
    source of the row's i-th value and the fields in ``hidden`` left out. The direct
    reader (engine/storage/direct.py) compiles it together with the column types'
    result processors, so a list page's rows become record values in one call per
    row instead of three (processed tuple, values, hidden fields dropped).
    """

    __slots__ = ("_entries", "documents")

    def __init__(self, entries: list[tuple[str, Callable[[Callable[[int], str]], str]]],
                 hidden: frozenset[str], *, documents: frozenset[int] = frozenset()) -> None:
        self._entries = [(k, e) for k, e in entries if k not in hidden]
        #: JSON columns read as their stored text (``EntityPlan.json_shape``).
        self.documents = documents

    def source(self, column: Callable[[int], str]) -> str:
        return ", ".join(f"{key!r}: {expression(column)}" for key, expression in self._entries)


def _compile_reader(entries: list[tuple[str, str]]) -> Callable[[Any], dict[str, Any]]:
    """One function returning a dict literal: the cheapest row -> values conversion Python has.

    Lists convert every row they return, so this is their hot loop. The source
    holds only ``repr()`` of registry identifiers and integer column positions.
    """
    body = ", ".join(f"{key!r}: {expr}" for key, expr in entries)
    namespace: dict[str, Any] = {"_utc": utc}
    exec(f"def to_values(row):\n    return {{{body}}}\n", namespace)  # noqa: S102
    reader: Callable[[Any], dict[str, Any]] = namespace["to_values"]
    return reader


#: Types whose values ``to_json`` only copies (a dict or a list): an activity entry
#: is encoded at once, so the value itself is written.
_JSON_COPIED = frozenset({FieldType.MULTI_SELECT, FieldType.GEO_POINT, FieldType.ADDRESS,
                          FieldType.FILE})


def _compile_created(plans: list[FieldPlan]) -> Callable[[Mapping[str, Any]], list[Any]]:
    """One function giving a new record's stored changes: ``[field, new, field, new, ...]``
    for every field given a value (``activity.created``).

    A bulk create writes one activity entry per row; looping over the fields and
    dispatching ``to_json`` per value was a tenth of its time, and a dict per field
    another few µs. The source holds only ``repr()`` of registry identifiers;
    converters are passed by name.
    """
    namespace: dict[str, Any] = {"_f": format}
    lines = ["def created(v):", "    out = []", "    add = out.append"]
    for i, p in enumerate(plans):
        value = "x"
        t = p.field.type
        # to_json's own forms, spelled out for the types a bulk create meets most.
        if t is FieldType.MONEY:
            value = "{'amount': _f(x['amount'], 'f'), 'currency': x['currency']}"
        elif t is FieldType.DECIMAL or t is FieldType.PERCENT:
            value = "_f(x, 'f')"
        elif t is FieldType.DATE:
            value = "x.isoformat()"
        elif t not in JSON_AS_IS and t not in _JSON_COPIED:
            writer = json_writer(p.field)  # to_json of a value known not None
            if writer is not None:
                namespace[f"_c{i}"] = writer
                value = f"_c{i}(x)"
        lines += [f"    x = v.get({p.name!r})",
                  "    if x is not None:",
                  f"        add({p.name!r})",
                  f"        add({value})"]
    lines.append("    return out")
    exec("\n".join(lines) + "\n", namespace)  # noqa: S102
    created: Callable[[Mapping[str, Any]], list[Any]] = namespace["created"]
    return created


def _column_source(i: int, column: Callable[[int], str]) -> str:
    return column(i)


class EntityPlan:
    """Columns, coercers, validators and row converters of one entity."""

    def __init__(self, schema: StorageSchema, entity: Entity) -> None:
        self.entity = entity
        self.name = entity.name
        self.table: Table = schema.table(entity.name)
        self.activity = entity.has(Feature.ACTIVITY)
        self.soft_delete = entity.has(Feature.SOFT_DELETE)
        self.owned = entity.has(Feature.OWNED)
        pipeline = schema.registry.pipeline_for(entity.name)
        self.initial_stage = pipeline.initial_stage if pipeline and \
            entity.has(Feature.PIPELINED) else None
        self.fields: dict[str, FieldPlan] = {}
        for f in entity.fields:
            columns = tuple(c.name for c in self.table.columns
                            if c.info.get("field") is not None and c.info["field"].name == f.name)
            columns = (f.name, *(c for c in columns if c != f.name))
            self.fields[f.name] = FieldPlan(
                field=f, name=f.name, coerce_json=coercer(f, InputSource.JSON),
                coerce_string=coercer(f, InputSource.STRING), check=validator(f),
                default=_default(f), columns=columns,
                autonumber=parse_format(f) if f.type is FieldType.AUTO_NUMBER else None,
            )
        self.required = tuple(p.name for p in self.fields.values()
                              if p.field.required and p.autonumber is None)
        self.autonumbers = tuple(p for p in self.fields.values() if p.autonumber is not None)
        self.with_default = tuple(p for p in self.fields.values() if p.default is not None)
        self.references = tuple(p for p in self.fields.values()
                                if p.field.type in (FieldType.REFERENCE, FieldType.USER))
        # Writable through a payload: fields (not auto numbers), and owner_id on create.
        self.writable = frozenset(n for n, p in self.fields.items() if p.autonumber is None)
        self.system_names = frozenset(c.name for c in self.table.columns
                                      if c.name in SYSTEM_FIELDS)
        #: field name -> (key column, normaliser) of fields with a match key.
        self.match_keys: dict[str, tuple[str, Normaliser]] = {}
        for f in keyed_fields(entity):
            norm = normaliser(f)
            if norm is not None and key_column(f.name) in self.table.c:
                self.match_keys[f.name] = (key_column(f.name), norm)
        #: field name -> (stem column, normaliser) of fields a similar_name rule compares.
        self.stems: dict[str, tuple[str, Normaliser]] = {
            f.name: (stem_column(f.name), name_stem) for f in stem_fields(entity)
            if stem_column(f.name) in self.table.c}
        self.uniques = self._uniques()
        # Row -> record conversion: select every column in table order.
        self.select_columns = list(self.table.columns)
        # Built once: coercing the column list is a visible share of a list call.
        self.select_all = select(*self.select_columns)
        index = {c.name: i for i, c in enumerate(self.select_columns)}
        sources: list[tuple[str, Callable[[Callable[[int], str]], str]]] = [
            (n, partial(_column_source, index[n])) for n in ("id", "version")]
        sources += [(p.name, partial(_expression, p, index)) for p in self.fields.values()]
        sources += [(n, partial(_column_source, index[n]))
                    for n in SYSTEM_FIELDS if n in index and n not in ("id", "version")]
        self._sources = sources
        self._shapes: dict[frozenset[str], RowShape] = {}
        self._json_shapes: dict[frozenset[str], RowShape] = {}
        # JSON document columns a JSON writer passes on unchanged (file values are
        # rewritten, a sort value goes into the page token: both need the value itself).
        self._documents = frozenset(
            index[p.name] for p in self.fields.values()
            if p.field.type in (FieldType.MULTI_SELECT, FieldType.ADDRESS))
        #: A result row (columns in ``select_columns`` order) -> record values.
        self.to_values = _compile_reader([(k, e(_row)) for k, e in sources])
        self.sortable = self._sortable()
        # Field columns in a fixed order, and how each is read from field values.
        getters: list[tuple[str, Callable[[dict[str, Any]], Any] | None]] = []
        for p in self.fields.values():
            if p.field.type is FieldType.MONEY:
                getters += [(p.name, _part(p.name, "amount")),
                            (p.columns[1], _part(p.name, "currency"))]
            elif p.field.type is FieldType.GEO_POINT:
                getters += [(p.name, _part(p.name, "lat")), (p.columns[1], _part(p.name, "lng"))]
            else:
                getters.append((p.name, None))
        for name, (column, norm) in (*self.match_keys.items(), *self.stems.items()):
            getters.append((column, _keyed(name, norm)))
        if self.owned:
            getters.append(("owner_id", None))  # set on create, from the payload or the actor
        self.column_names = tuple(name for name, _ in getters)
        self._getters = tuple(getters)
        # Per field: how a value becomes JSON for the activity feed (None = as it is).
        self.json_out: tuple[tuple[str, Callable[[Any], Any] | None], ...] = tuple(
            (p.name, None if p.field.type in JSON_AS_IS else partial(to_json, p.field))
            for p in self.fields.values())
        #: A new record's field values -> the changes of its activity entry.
        self.created_changes = _compile_created(list(self.fields.values()))

    def shape(self, hidden: frozenset[str]) -> RowShape:
        """How the direct reader turns a row into the values a reader kept from ``hidden``
        sees (one per set of hidden fields: the direct reader caches its compiled form)."""
        found = self._shapes.get(hidden)
        if found is None:
            # Racing threads may both build one; either is right.
            found = self._shapes[hidden] = RowShape(self._sources, hidden)
        return found

    def json_shape(self, hidden: frozenset[str]) -> RowShape:
        """``shape(hidden)`` for values written to JSON as they are read (an API list
        page): the same keys and values, except that multi-select and address values
        may be their stored JSON text as an ``orjson.Fragment`` (the SQLite reader's;
        PostgreSQL's driver parses them), which orjson writes exactly as it would the
        parsed value. Sortable fields keep their values (the page token reads them)."""
        found = self._json_shapes.get(hidden)
        if found is None:
            documents = frozenset(i for i in self._documents
                                  if self.select_columns[i].name not in self.sortable)
            found = self._json_shapes[hidden] = RowShape(self._sources, hidden,
                                                         documents=documents)
        return found

    def _uniques(self) -> tuple[UniqueSpec, ...]:
        keyed = self.match_keys

        def spec(name: str, fields: tuple[str, ...]) -> UniqueSpec:
            columns = tuple(self.table.c[keyed[f][0] if f in keyed else f] for f in fields)
            keys = tuple(keyed[f][1] if f in keyed else None for f in fields)
            return UniqueSpec(name, fields, columns, keys if any(keys) else ())

        specs = [spec(k.name, k.fields) for k in self.entity.unique_keys]
        for f in self.entity.fields:
            if f.unique and not any(s.fields == (f.name,) for s in specs):
                specs.append(spec(f.name, (f.name,)))
        return tuple(specs)

    def _sortable(self) -> frozenset[str]:
        """Fields a list may sort on: only those an index leads with (a sort must stay cheap)."""
        names = {"id", "created_at", "updated_at"}
        for col in ("owner_id", "pool_id", "stage"):
            if col in self.system_names:
                names.add(col)
        for spec in self.uniques:
            names.add(spec.fields[0])
        for index in self.entity.indexes:
            names.add(index.fields[0])
        for p in self.references:
            names.add(p.name)
        return frozenset(n for n in names
                         if n in SYSTEM_FIELDS or self.fields[n].field.type in ORDERED_TYPES)

    def lookup(self, name: str) -> Field | None:
        """The field (or system pseudo-field) called ``name``, if the entity has it."""
        plan = self.fields.get(name)
        if plan is not None:
            return plan.field
        if name in self.system_names:
            return SYSTEM_FIELDS[name]
        return None

    def column_values(self, values: dict[str, Any]) -> list[Any]:
        """Field values as column values in ``column_names`` order."""
        return [values[name] if get is None else get(values) for name, get in self._getters]

    def to_columns(self, values: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """Write field values into ``out`` as column values (money and geo span two columns)."""
        fields = self.fields
        for name, value in values.items():
            plan = fields.get(name)
            if plan is None:
                out[name] = value
                continue
            t = plan.field.type
            if t is FieldType.MONEY:
                out[name] = None if value is None else value["amount"]
                out[plan.columns[1]] = None if value is None else value["currency"]
            elif t is FieldType.GEO_POINT:
                out[name] = None if value is None else value["lat"]
                out[plan.columns[1]] = None if value is None else value["lng"]
            else:
                out[name] = value
            keyed = self.match_keys.get(name)
            if keyed is not None:
                out[keyed[0]] = keyed[1](value)
            stem = self.stems.get(name)
            if stem is not None:
                out[stem[0]] = stem[1](value)
        return out


def same_value(a: Any, b: Any) -> bool:
    """Equality as a user means it (a date stored as a datetime is the same date)."""
    if isinstance(a, datetime) and isinstance(b, datetime):
        return utc(a) == utc(b)
    if isinstance(a, date) and isinstance(b, date):
        return a == b
    return bool(a == b)
