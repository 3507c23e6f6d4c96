"""Payload preparation and the checks that need the database, batched for bulk writes.

``prepare_rows`` coerces, defaults and validates payloads without touching the
database; ``reference_errors`` and ``duplicates`` look up many rows with a few
``IN`` queries instead of one SELECT per row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    or_,
    select,
)

from engine.access import RowScope
from engine.messages import M, message_of
from engine.metadata.model import FieldType
from engine.records._plan import (
    JSON_TYPES,
    READONLY_SYSTEM,
    SYSTEM_FIELDS,
    EntityPlan,
    UniqueSpec,
)
from engine.records._prepare import compiled_rows
from engine.records.coerce import CoercionError, InputSource, coercer
from engine.storage.fanout import among
from engine.storage.system_tables import USER_TABLE
from engine.storage.tables import StorageSchema

CHUNK = 500
_OWNER_COERCE = coercer(SYSTEM_FIELDS["owner_id"])


def key(index: int | None, name: str) -> str:
    """The error key of a field: ``phone`` for one record, ``3.phone`` for row 3 of a batch."""
    return name if index is None else f"{index}.{name}"


def payload_errors(plan: EntityPlan, payload: Mapping[str, Any], *, creating: bool,
                   readonly: frozenset[str], index: int | None,
                   errors: dict[str, str]) -> None:
    """Names in a payload that it may not write: unknown, system, generated or read-only."""
    allowed = plan.writable
    for name in payload:
        if name in allowed and name not in readonly:
            continue
        if name == "owner_id" and plan.owned and creating and name not in readonly:
            continue
        if name in readonly:
            message = M("is read-only for you")
        elif name in plan.fields:
            message = M("is numbered automatically")
        elif name in READONLY_SYSTEM or name == "owner_id" and plan.owned:
            message = M("is set by the system")
        else:
            message = M("unknown field %(name)s", name=repr(name))
        errors[key(index, name)] = message


class RowKeys(Sequence[str]):
    """``key(i, name)`` of each of ``count`` rows (``key(None, name)`` for one record),
    made when asked: a batch's checks name a row only when it is wrong, and 5,000
    keys built up front cost more than the check itself."""

    def __init__(self, name: str, count: int, *, bulk: bool) -> None:
        self._name, self._size, self._bulk = name, count, bulk

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(self._size)[index]]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return key(index % self._size if self._bulk else None, self._name)

    def __len__(self) -> int:
        return self._size


_MISSING = object()


class RowPreparer:
    """Coerce, default and validate create payloads of one entity from one source."""

    def __init__(self, plan: EntityPlan, source: InputSource) -> None:
        self.plan = plan
        # Plain tuples: unpacking them in the row loop is the cheapest access Python has.
        self.steps = tuple(
            (fp.name, fp.coerce_string if source is InputSource.STRING else fp.coerce_json,
             fp.check, fp.default, fp.field.required)
            for fp in plan.fields.values() if fp.autonumber is None)
        #: The same preparation compiled to straight-line code, and the derived columns.
        self.compiled = compiled_rows(plan, source)

    def prepare(self, rows: Sequence[Mapping[str, Any]], *, now: datetime,
                readonly: frozenset[str], owner_default: int | None, bulk: bool,
                errors: dict[str, str]) -> list[dict[str, Any]]:
        """Field values (every field present, None when empty) per row; errors are collected.

        Each row goes through the compiled function first; a row it declines (some
        value is wrong) goes through ``prepare_one``, which says what is wrong.
        """
        allowed = self.plan.writable - readonly
        fast = self.compiled.fast
        out = []
        for i, row in enumerate(rows):
            if allowed.issuperset(row.keys()):
                values = fast(row, now, owner_default)
                if values is not None:
                    out.append(values)
                    continue
            out.append(self.prepare_one(row, i if bulk else None, now=now, readonly=readonly,
                                        owner_default=owner_default, errors=errors))
        return out

    def prepare_one(self, row: Mapping[str, Any], index: int | None, *, now: datetime,
                    readonly: frozenset[str], owner_default: int | None,
                    errors: dict[str, str]) -> dict[str, Any]:
        """One payload field by field, every error collected (the reference path)."""
        plan = self.plan
        missing = _MISSING
        if not (plan.writable - readonly).issuperset(row.keys()):
            payload_errors(plan, row, creating=True, readonly=readonly, index=index,
                           errors=errors)
        values: dict[str, Any] = {}
        for name, coerce, check, default, required in self.steps:
            value = row.get(name, missing)
            if value is missing:
                value = None if default is None else default(now)
            elif value is not None:
                try:
                    value = coerce(value)
                except CoercionError as exc:
                    errors[key(index, name)] = message_of(exc)
                    values[name] = None
                    continue
            if value is None:
                if required:
                    errors[key(index, name)] = M("is required")
            else:
                message = check(value)
                if message is not None:
                    errors[key(index, name)] = message
            values[name] = value
        if plan.owned:
            if "owner_id" in row:
                try:
                    values["owner_id"] = _OWNER_COERCE(row["owner_id"])
                except CoercionError as exc:
                    errors[key(index, "owner_id")] = message_of(exc)
                    values["owner_id"] = None
            else:
                values["owner_id"] = owner_default
        return values


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def reference_errors(conn: Connection, schema: StorageSchema, plan: EntityPlan,
                     rows: Sequence[Mapping[str, Any]], *, names: Iterable[str] | None,
                     bulk: bool, errors: dict[str, str],
                     scope: Callable[[str], tuple[Table, RowScope]] | None = None) -> None:
    """Every reference (and user) value must name an existing, live record (or active user).

    ``names`` limits the check to fields being written (None: all reference fields).
    ``scope`` gives the writer's read scope of a target entity: a reference may then
    name only a record the writer can read, and one they cannot read gets the very
    message of one that does not exist, so writes cannot probe which ids exist.
    """
    wanted = None if names is None else set(names)
    targets = [(fp.name, fp.field.type, fp.field.target) for fp in plan.references
               if wanted is None or fp.name in wanted]
    if plan.owned and (wanted is None or "owner_id" in wanted):
        targets.append(("owner_id", FieldType.USER, None))
    for name, type_, target in targets:
        ids = sorted({r[name] for r in rows if r.get(name) is not None})
        if not ids:
            continue
        visible: RowScope | None = None
        if type_ is FieldType.USER:
            table = schema.system[USER_TABLE]
            live: ColumnElement[bool] | None = table.c.active.is_(True)
            what = "user"
        else:
            table = schema.table(str(target))
            if scope is not None:
                table, visible = scope(str(target))
            live = table.c.deleted_at.is_(None) if "deleted_at" in table.c else None
            what = str(target)
        found: set[int] = set()
        for chunk in _chunks(ids) if visible is None or not visible.is_empty else ():
            stmt = select(table.c.id).where(table.c.id.in_(chunk))
            if live is not None:
                stmt = stmt.where(live)
            if visible is not None:
                stmt = stmt.where(or_(*visible.branches))
            found.update(conn.execute(stmt).scalars())
        for i, r in enumerate(rows):
            value = r.get(name)
            if value is not None and value not in found:
                message = M("no %(entity)s with id %(value)s", entity=what, value=value) \
                    if type_ is not FieldType.USER \
                    else M("no active user with id %(value)s", value=value)
                errors.setdefault(key(i if bulk else None, name), message)


@dataclass(frozen=True)
class Duplicate:
    """Row ``index`` repeats ``spec`` of an existing record (or of an earlier row of the batch)."""

    index: int
    spec: UniqueSpec
    values: dict[str, Any]
    existing_id: int | None
    earlier_row: int | None = None


_STR_ONLY = frozenset({str})
_INT_ONLY = frozenset({int})


def _checkable(plan: EntityPlan, spec: UniqueSpec) -> bool:
    return all(plan.fields[f].field.type not in JSON_TYPES | {FieldType.MONEY}
               for f in spec.fields if f in plan.fields)


def _shown(spec: UniqueSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    # The values as the user wrote them, not their keys: a message quotes what was typed.
    return {f: row.get(f) for f in spec.fields}


def duplicates(conn: Connection, plan: EntityPlan, rows: Sequence[Mapping[str, Any]], *,
               exclude_id: int | None = None,
               specs: Sequence[UniqueSpec] | None = None,
               row_keys: Sequence[Sequence[tuple[Any, ...]]] | None = None) -> list[Duplicate]:
    """Rows whose unique keys are already taken (soft-deleted records still hold theirs).

    A key with an empty part is not a key (SQL unique constraints ignore NULLs too).
    ``row_keys``: each key of ``plan.uniques`` per row, already normalised
    (``CompiledRows.unique_keys``); used only when ``specs`` is None.
    """
    found: list[Duplicate] = []
    table = plan.table
    given = row_keys if specs is None else None
    for n, spec in enumerate(specs if specs is not None else plan.uniques):
        if not _checkable(plan, spec):
            continue
        keyed = given[n] if given is not None else list(map(spec.key_of, rows))
        # Each key's row, built in C: when no key comes twice (the usual batch) it is the
        # only row. A one-field spec's only empty key, (None,), is no key, however many
        # rows leave the field empty (an optional phone or licence often is).
        wanted: dict[tuple[Any, ...], int] = dict(zip(keyed, range(len(keyed))))
        empty = keyed.count((None,)) if len(spec.fields) == 1 else 0
        if empty:
            del wanted[(None,)]
        if len(spec.fields) != 1 or len(wanted) + empty != len(keyed):
            wanted = {}
            for i, k in enumerate(keyed):
                if None in k:  # identity first: no value here compares equal to None
                    continue
                if k in wanted:
                    found.append(Duplicate(i, spec, _shown(spec, rows[i]), None, wanted[k]))
                    continue
                wanted[k] = i
        if not wanted:
            continue
        existing: dict[tuple[Any, ...], int] = {}
        keys = list(wanted)
        firsts = [k[0] for k in keys]
        # One bound list, however many keys, when they are all text or all whole
        # numbers (anything else would change on its way through a JSON array).
        listed = among(conn, spec.columns[0], firsts) if len(spec.fields) == 1 and (
            _STR_ONLY.issuperset(map(type, firsts))
            or _INT_ONLY.issuperset(map(type, firsts))) else None
        for chunk in (keys,) if listed is not None else \
                _chunks(keys, CHUNK if len(spec.fields) == 1 else 100):
            cond: ColumnElement[bool]
            if listed is not None:
                cond = listed
            elif len(spec.fields) == 1:
                cond = spec.columns[0].in_([k[0] for k in chunk])
            else:
                cond = or_(*(and_(*(c == v for c, v in zip(spec.columns, k))) for k in chunk))
            stmt = select(table.c.id, *spec.columns).where(cond)
            if exclude_id is not None:
                stmt = stmt.where(table.c.id != exclude_id)
            for row in conn.execute(stmt):
                existing.setdefault(tuple(row[1:]), row[0])
        # Few keys are taken, if any: look the taken ones up among the wanted (the
        # sort below puts them in row order as before).
        for k, existing_id in existing.items():
            at = wanted.get(k)
            if at is not None:
                found.append(Duplicate(at, spec, _shown(spec, rows[at]), existing_id))
    found.sort(key=lambda d: d.index)
    return found
