"""Create payloads -> stored rows, compiled once per entity and input source.

A bulk create spent about a third of its time in ``RowPreparer``'s generic loop
(per field: a tuple unpack, a dict lookup, a try block, two calls) and another
tenth normalising each row's unique-key values twice, once for the duplicate
check and once for the key columns. Like the row reader (``_plan._compile_reader``)
these functions are generated as Python source, once per entity, so the hot loop
is straight-line code:

* ``fast(payload, now, owner_default)``: the field values of a payload that is
  valid (None when any value fails to coerce or validate, or a required one is
  missing: the generic loop then runs on that row and reports every error with
  its message, so errors are exactly what they were);
* ``derive(values)``: the derived columns (match keys, name stems), computed
  once per row and shared by the duplicate check and the insert;
* ``unique_keys``: each unique key's tuple per row, read from the derived values;
* ``column_sources``: one expression per insert column, in
  ``("id", *plan.column_names)`` order, which the bulk insert
  (``_bulk.DriverInsert``) compiles straight into each row's driver parameters
  (``compile_columns`` turns them into a column list: the tests' reference).

The generated source holds only ``repr()`` of registry identifiers and integer
positions; functions are passed in the namespace by name.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from engine.metadata.model import FieldType
from engine.records._accept import id_condition, inline
from engine.records._plan import SYSTEM_FIELDS, EntityPlan
from engine.records.coerce import CoercionError, InputSource, coercer, present_coercer
from engine.records.validate import checks_nothing
from engine.storage.matchkeys import inline_source

#: (payload, now, owner_default) -> field values, or None: the row needs the generic path.
FastPrepare = Callable[[Mapping[str, Any], datetime, "int | None"], "dict[str, Any] | None"]
Derived = tuple[Any, ...]

_MISSING = object()


def _exec(source: str, namespace: dict[str, Any], name: str) -> Any:
    exec(source, namespace)  # noqa: S102 -- source built from repr() of identifiers only
    return namespace[name]


def compile_fast(plan: EntityPlan, source: InputSource) -> FastPrepare:
    """The straight-line preparation of one valid payload (see the module doc).

    Per field: a value in its type's usual spelling is taken inline (``_accept``);
    any other goes through the field's coercer and check, as the generic loop does.
    """
    namespace: dict[str, Any] = {"_M": _MISSING, "CoercionError": CoercionError}
    lines = ["def fast(row, now, owner_default):", "    get = row.get", "    try:"]
    out: list[str] = []
    steps = [p for p in plan.fields.values() if p.autonumber is None]
    for i, p in enumerate(steps):
        v = f"v{i}"
        namespace[f"_c{i}"] = present_coercer(p.field, source)
        checked = not checks_nothing(p.check)
        if checked:
            namespace[f"_k{i}"] = p.check
        refused = [f"            if {v} is not None and _k{i}({v}) is not None:",
                   "                return None"] if checked else []
        lines += [f"        {v} = get({p.name!r}, _M)", f"        if {v} is _M:"]
        if p.default is None:
            lines.append(f"            {v} = None")
        else:
            namespace[f"_d{i}"] = p.default
            lines += [f"            {v} = _d{i}(now)", *refused]
        usual = inline(p, i, namespace)
        if usual is not None:
            taken = "pass" if usual[1] == v else f"{v} = {usual[1]}"
            lines += [f"        elif {usual[0]}:", f"            {taken}"]
        lines += [f"        elif {v} is not None:", f"            {v} = _c{i}({v})", *refused]
        if p.field.required:
            lines += [f"        if {v} is None:", "            return None"]
        out.append(f"{p.name!r}: {v}")
    if plan.owned:
        namespace["_owner"] = coercer(SYSTEM_FIELDS["owner_id"])
        lines += ["        if 'owner_id' in row:", "            o = row['owner_id']",
                  f"            if not ({id_condition('o')}):", "                o = _owner(o)",
                  "        else:", "            o = owner_default"]
        out.append("'owner_id': o")
    lines += ["    except CoercionError:", "        return None",
              f"    return {{{', '.join(out)}}}"]
    fast: FastPrepare = _exec("\n".join(lines) + "\n", namespace, "fast")
    return fast


def _derived_sources(plan: EntityPlan) -> list[tuple[str, str, Callable[[Any], Any]]]:
    """(column, field, normaliser) of every derived column, in ``plan.column_names`` order."""
    return [(column, name, norm)
            for name, (column, norm) in (*plan.match_keys.items(), *plan.stems.items())]


def compile_derive(plan: EntityPlan) -> Callable[[Mapping[str, Any]], Derived]:
    """Field values -> the derived column values (every normaliser maps None to None)."""
    namespace: dict[str, Any] = {}
    reads, parts = [], []
    for j, (_, name, norm) in enumerate(_derived_sources(plan)):
        namespace[f"_n{j}"] = norm
        # A value in its usual spelling is normalised inline (``inline_source``).
        reads.append(f"    x{j} = v.get({name!r})\n")
        parts.append(inline_source(norm, f"x{j}", f"_n{j}", namespace) + ", ")
    derive: Callable[[Mapping[str, Any]], Derived] = _exec(
        f"def derive(v):\n{''.join(reads)}    return ({''.join(parts)})\n", namespace, "derive")
    return derive


def compile_unique_keys(plan: EntityPlan) -> tuple[Callable[[Sequence[Mapping[str, Any]],
                                                            Sequence[Derived]],
                                                           list[tuple[Any, ...]]], ...]:
    """Per unique key of ``plan.uniques``: (rows' values, their derived values) -> the tuple
    its constraint compares, per row (``UniqueSpec.key_of`` without normalising again;
    one comprehension per key and batch, no call per row)."""
    at = {name: j for j, (_, name, _) in enumerate(_derived_sources(plan))
          if name in plan.match_keys}
    found = []
    for spec in plan.uniques:
        parts = [f"d[{at[f]}], " if spec.keys and spec.keys[n] is not None else f"v.get({f!r}), "
                 for n, f in enumerate(spec.fields)]
        found.append(_exec(f"def keys(rows, derived):\n    return [({''.join(parts)}) "
                           "for v, d in zip(rows, derived)]\n", {}, "keys"))
    return tuple(found)


def column_sources(plan: EntityPlan) -> list[tuple[str, str]]:
    """(column, expression) for the insert's values in ``("id", *plan.column_names)`` order;
    each expression reads only ``i`` (the id), ``v`` (field values) and ``d`` (derived
    values) and stands alone, so a caller may place it anywhere (``_bulk.DriverInsert``)."""
    sources = [("id", "i")]
    for n, p in enumerate(plan.fields.values()):
        t = p.field.type
        if t is FieldType.MONEY or t is FieldType.GEO_POINT:
            first, second = ("amount", "currency") if t is FieldType.MONEY else ("lat", "lng")
            sources += [(p.name, f"(None if (x{n} := v[{p.name!r}]) is None else "
                                 + f"x{n}[{first!r}])"),
                        (p.columns[1], f"(None if (y{n} := v[{p.name!r}]) is None else "
                                       + f"y{n}[{second!r}])")]
        else:
            sources.append((p.name, f"v[{p.name!r}]"))
    for j, (column, _, _) in enumerate(_derived_sources(plan)):
        sources.append((column, f"d[{j}]"))
    if plan.owned:
        sources.append(("owner_id", "v['owner_id']"))
    names = [name for name, _ in sources]
    if tuple(names) != ("id", *plan.column_names):  # the plan's layout is the reference
        raise RuntimeError(f"compiled columns of {plan.name} drifted from the plan: {names}")
    return sources


def compile_columns(plan: EntityPlan) -> Callable[[int, Mapping[str, Any], Derived], list[Any]]:
    """(id, field values, derived) -> the insert's values, ``("id", *plan.column_names)``:
    ``column_sources`` as a column list (the insert itself fuses them into parameters;
    tests hold both equal to the plan's layout)."""
    parts = [expression for _, expression in column_sources(plan)]
    columns: Callable[[int, Mapping[str, Any], Derived], list[Any]] = _exec(
        f"def columns(i, v, d):\n    return [{', '.join(parts)}]\n", {}, "columns")
    return columns


class CompiledRows:
    """Everything compiled for one entity and source (kept by ``RowPreparer``)."""

    def __init__(self, plan: EntityPlan, source: InputSource) -> None:
        self.fast = compile_fast(plan, source)
        self.derive = compile_derive(plan)
        self.spec_keys = compile_unique_keys(plan)
        derived = {name for _, name, _ in _derived_sources(plan)}
        #: An auto number feeds a derived column: derive again once numbers are given.
        self.numbered_keys = any(p.name in derived for p in plan.autonumbers)

    def derived(self, rows: Sequence[Mapping[str, Any]]) -> list[Derived]:
        derive = self.derive
        return [derive(r) for r in rows]

    def unique_keys(self, rows: Sequence[Mapping[str, Any]],
                    derived: Sequence[Derived]) -> list[list[tuple[Any, ...]]]:
        """Per unique key of ``plan.uniques``, its tuple per row."""
        return [keys(rows, derived) for keys in self.spec_keys]


_COMPILED: weakref.WeakKeyDictionary[EntityPlan, dict[InputSource, CompiledRows]] = \
    weakref.WeakKeyDictionary()
_COMPILED_LOCK = threading.Lock()


def compiled_rows(plan: EntityPlan, source: InputSource) -> CompiledRows:
    """The compiled functions of ``plan`` for ``source``, built once per plan (plans are
    immutable and live as long as their schema, so the cache follows them)."""
    source = InputSource(source)
    found = _COMPILED.get(plan, {}).get(source)
    if found is None:
        built = CompiledRows(plan, source)
        with _COMPILED_LOCK:
            found = _COMPILED.setdefault(plan, {}).setdefault(source, built)
    return found
