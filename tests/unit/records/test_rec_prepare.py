"""Compiled row preparation (engine/records/_prepare.py) agrees with the field-by-field path.

For every field type and both input sources, on valid and invalid values alike:
the compiled function either returns exactly what the reference path returns
with no errors, or declines the row (returns None) when the reference path
reports an error. Derived columns, unique-key tuples and insert columns agree
with the plan's own per-row functions.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from engine.metadata.loader import load_packages
from engine.metadata.model import Field, FieldType, LocalText
from engine.records import activity as feed
from engine.records._accept import decimal_fits
from engine.records._bulk import DriverInsert, RowInserter, _valued
from engine.records._plan import EntityPlan
from engine.records._prepare import compile_columns, compile_fast, compiled_rows
from engine.records._write import RowPreparer
from engine.records.coerce import (
    CoercionError,
    InputSource,
    coercer,
    number_limits,
    to_json,
    to_string,
)
from engine.records.validate import number_rules, validator
from engine.storage.tables import StorageSchema, build_schema
from tests.integration.records._docs import ACCOUNT, CONTACT, ITEM, field, registry
from tests.unit.records.test_rec_coerce import STRATEGIES

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
OWNER = 7
CRM = Path(__file__).resolve().parents[3] / "apps" / "crm"


#: The records tests' account (every field type but rich text, two unique keys), plus it.
EVERY_TYPE = {**ACCOUNT, "fields": [*ACCOUNT["fields"], field("bio", "rich_text")]}


@pytest.fixture(scope="module")
def schema() -> StorageSchema:
    return build_schema(registry(EVERY_TYPE, CONTACT, ITEM))


@pytest.fixture(scope="module")
def crm() -> StorageSchema:
    return build_schema(load_packages([CRM]))


_junk = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                  st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=8), st.integers(), max_size=3))


def _values(plan: EntityPlan, source: InputSource, *,
            clean: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads: per field absent, a valid value (as the source writes it) or junk;
    ``clean``: no junk and every required field given (mostly rows the fast path takes)."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    required: dict[str, st.SearchStrategy[Any]] = {}
    for p in plan.fields.values():
        if p.autonumber is not None:
            continue
        good = STRATEGIES[p.field.type]
        if p.field.type in (FieldType.SELECT, FieldType.MULTI_SELECT):
            options = list(p.field.option_values)
            good = st.sampled_from(options) if p.field.type is FieldType.SELECT else \
                st.lists(st.sampled_from(options), min_size=1, unique=True)
        field = p.field
        shown = good.map(lambda v, f=field: to_string(f, v)) if source is InputSource.STRING \
            else good.map(lambda v, f=field: to_json(f, v))
        if clean and p.field.required:
            required[p.name] = shown
        else:
            parts[p.name] = shown if clean else st.one_of(shown, shown, _junk)
    if plan.owned:
        parts["owner_id"] = st.integers(1, 2**62) if clean else \
            st.one_of(st.integers(1, 2**62), _junk)
    return st.fixed_dictionaries(required, optional=parts)


def _typed(values: dict[str, Any]) -> list[tuple[str, type, Any, str]]:
    # Equality alone would take True for 1, 1.0 for 1, 1.50 for 1.5 and -0.0 for 0.0.
    return [(k, type(v), v, repr(v)) for k, v in values.items()]


def _agree(plan: EntityPlan, source: InputSource, payload: dict[str, Any]) -> dict[str, Any]:
    preparer = RowPreparer(plan, source)
    errors: dict[str, str] = {}
    reference = preparer.prepare_one(payload, 3, now=NOW, readonly=frozenset(),
                                     owner_default=OWNER, errors=errors)
    fast = preparer.compiled.fast(payload, NOW, OWNER)
    if fast is None:
        assert errors, f"the compiled path declined a valid row: {payload!r}"
    else:
        assert not errors, f"the compiled path took a bad row: {errors}"
        assert _typed(fast) == _typed(reference)
    # prepare() picks one path per row and reports the same errors either way.
    batch_errors: dict[str, str] = {}
    [prepared] = preparer.prepare([payload], now=NOW, readonly=frozenset(),
                                  owner_default=OWNER, bulk=True, errors=batch_errors)
    assert batch_errors == {k.replace("3.", "0.", 1): v for k, v in errors.items()}
    assert _typed(prepared) == _typed(reference)
    return reference


@pytest.mark.parametrize("source", list(InputSource), ids=[s.value for s in InputSource])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_preparation_matches_the_reference_path(
        schema: StorageSchema, source: InputSource, data: st.DataObject) -> None:
    plan = EntityPlan(schema, schema.registry.entity("account"))
    clean = data.draw(st.booleans())
    _agree(plan, source, data.draw(_values(plan, source, clean=clean)))


def test_every_field_type_is_covered(schema: StorageSchema) -> None:
    types = {f.type for f in schema.registry.entity("account").fields}
    assert types == set(FieldType)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_derived_columns_and_unique_keys_match_the_plan(schema: StorageSchema,
                                                        data: st.DataObject) -> None:
    plan = EntityPlan(schema, schema.registry.entity("account"))
    values = _agree(plan, InputSource.JSON,
                    data.draw(_values(plan, InputSource.JSON, clean=True)))
    values["number"] = "ACC-2026-0001"
    compiled = compiled_rows(plan, InputSource.JSON)
    [derived] = compiled.derived([values])
    assert compile_columns(plan)(41, values, derived) == [41, *plan.column_values(values)]
    keys = compiled.unique_keys([values], [derived])
    assert [k[0] for k in keys] == [spec.key_of(values) for spec in plan.uniques]


def test_defaults_and_required_fields(schema: StorageSchema) -> None:
    plan = EntityPlan(schema, schema.registry.entity("account"))
    fast = compiled_rows(plan, InputSource.JSON).fast
    assert fast({}, NOW, OWNER) is None                       # name is required
    values = fast({"name": " Acme "}, NOW, OWNER)
    assert values is not None
    assert values["name"] == "Acme" and values["active"] is True
    assert values["owner_id"] == OWNER and values["tags"] is None
    assert fast({"name": "Acme", "owner_id": None}, NOW, OWNER)["owner_id"] is None  # type: ignore[index]
    assert fast({"name": "x" * 101}, NOW, OWNER) is None      # max_length
    assert fast({"name": "Acme", "employees": "many"}, NOW, OWNER) is None


@pytest.mark.parametrize("entity", ["customer", "contact", "lead", "opportunity", "follow_up"])
def test_crm_entities_compile_and_agree(crm: StorageSchema, entity: str) -> None:
    if entity not in crm.registry.entities:
        pytest.skip(f"no {entity} in the CRM package")
    plan = EntityPlan(crm, crm.registry.entity(entity))
    compiled = compiled_rows(plan, InputSource.STRING)
    assert compiled_rows(plan, InputSource.STRING) is compiled   # built once per plan
    required = {p.name: "1" for p in plan.fields.values()
                if p.field.required and p.autonumber is None}
    payload = {**required, **({"name": "ＡＢＣ 有限公司"} if "name" in plan.fields else {})}
    _agree(plan, InputSource.STRING, payload)


_GEO = coercer(Field(name="location", type=FieldType.GEO_POINT,
                     label=LocalText.of({"en": "location"})))


def _through_decimal(x: float) -> str | float:
    """What the general path makes of one coordinate: its float, or why it is refused."""
    if not math.isfinite(x):
        return "refused"
    if x == 0:
        return 0.0  # a zero loses its sign (coerce._within)
    return float(Decimal(repr(x))) if abs(x) < 1000 else "too large"


@settings(max_examples=300, deadline=None)
@given(lat=st.floats(allow_nan=True, allow_infinity=True),
       lng=st.floats(allow_nan=True, allow_infinity=True))
def test_geo_floats_read_as_through_decimal(lat: float, lng: float) -> None:
    """The float shortcut of geo points gives the value and the error of the Decimal path."""
    expected = (_through_decimal(lat), _through_decimal(lng))
    unreadable = any(isinstance(e, str) for e in expected)
    try:
        got = _GEO({"lat": lat, "lng": lng})
    except CoercionError as exc:
        if unreadable:
            assert str(exc) == "expected a point as 'latitude,longitude'"
        else:
            assert not (-90 <= float(expected[0]) <= 90 and -180 <= float(expected[1]) <= 180)
        return
    assert not unreadable
    assert [repr(v) for v in (got["lat"], got["lng"])] == [repr(v) for v in expected]  # -0.0


def _changes_the_old_way(plan: EntityPlan, values: dict[str, Any]) -> list[dict[str, Any]]:
    """A create's changes as they were built (and stored) before the flat form."""
    return [{"field": name, "old": None, "new": to_json(p.field, values[name])}
            for name, p in plan.fields.items() if values.get(name) is not None]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_create_entry_reads_as_the_changes_built_the_old_way(schema: StorageSchema,
                                                               data: st.DataObject) -> None:
    """The flat stored form of a create's changes gives the feed the very lines the
    per-field dicts gave, through JSON and back, with hidden fields left out."""
    plan = EntityPlan(schema, schema.registry.entity("account"))
    values = _agree(plan, InputSource.JSON,
                    data.draw(_values(plan, InputSource.JSON, clean=True)))
    values["number"] = "ACC-2026-0001"
    old = orjson.loads(orjson.dumps(_changes_the_old_way(plan, values)))
    flat = orjson.loads(orjson.dumps(feed.created(plan, values)))
    hidden = frozenset(data.draw(st.sets(st.sampled_from(sorted(plan.fields)), max_size=3)))
    assert feed.changes_of(flat, hidden) == feed.changes_of(old, hidden)
    assert [c.field for c in feed.changes_of(flat, frozenset())] == \
        [c["field"] for c in old]  # every field given a value, in the entity's order
    assert feed.changes_of([], hidden) == feed.changes_of(None, hidden) == ()


class _Captured:
    """Stands in for a connection: keeps the parameters an executemany would get."""

    def __init__(self) -> None:
        self.dialect = sqlite.dialect(json_serializer=lambda v: orjson.dumps(v).decode())
        self.params: list[tuple[Any, ...]] = []

    def exec_driver_sql(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        self.params = params


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_insert_parameters_built_from_the_record_equal_the_two_step_ones(
        schema: StorageSchema, crm: StorageSchema, data: st.DataObject) -> None:
    """RowInserter builds each row's driver parameters in one step from its values; they
    equal the column list (``compile_columns``) put through the plain DriverInsert,
    for the record's row (with and without a pool) and its activity entry: the test
    account (every field type) and the CRM customer (pooled)."""
    schema = data.draw(st.sampled_from([schema, crm]))
    entity = "account" if "account" in schema.registry.entities else "customer"
    plan = EntityPlan(schema, schema.registry.entity(entity))
    payloads = data.draw(st.lists(_values(plan, InputSource.JSON, clean=True),
                                  min_size=3, max_size=3))
    rows = [_agree(plan, InputSource.JSON, payload) for payload in payloads]
    for n, row in enumerate(rows):
        if "number" in plan.fields:
            row["number"] = f"ACC-2026-000{n}"
    pooled_too = "pool_id" in plan.table.c
    if pooled_too:
        rows[0]["pool_id"] = 5
    compiled = compiled_rows(plan, InputSource.JSON)
    derived = compiled.derived(rows)
    columns = compile_columns(plan)
    ids = [41, 42, 43]
    system = {"created_at": NOW, "updated_at": NOW, "created_by": 3, "version": 1}
    logged = {"entity": plan.name, "kind": feed.CREATE, "actor_id": 3, "at": NOW,
              "body": None, "via": None}
    inserter = RowInserter(schema.system[feed.ACTIVITY_TABLE])
    conn = _Captured()
    cases: list[tuple[Any, Any, Any, dict[str, Any]]] = [
        (plan.table, ("id", *plan.column_names),
         [columns(i, r, d) for i, r, d in zip(ids, rows, derived)], system),
        (plan.table, ("id", *plan.column_names, "pool_id"),
         [[*columns(i, r, d), r.get("pool_id")]
          for i, r, d in zip(ids, rows, derived)], system),
        (schema.system[feed.ACTIVITY_TABLE], ("record_id", "changes"),
         [[i, feed.created(plan, r)] for i, r in zip(ids, rows)], logged)]
    for pooled, (table, varying, values, constants) in zip((False, True, None), cases):
        if pooled and not pooled_too:
            continue
        valued, nulls = _valued(constants)
        # The reference binds every constant, None ones too; the insert writes those NULL.
        reference = DriverInsert(table, varying=varying, constant=tuple(constants),
                                 dialect=conn.dialect)
        reference.execute(conn, values, constants)  # type: ignore[arg-type]
        expected = conn.params
        driver = inserter._records_driver(plan, pooled, (valued, nulls), conn)  # type: ignore[arg-type]
        driver.execute_records(conn, ids, rows,  # type: ignore[arg-type]
                               derived if pooled is not None else [None] * 3, constants)
        assert driver.sql == DriverInsert(table, varying=varying, constant=valued, nulls=nulls,
                                          dialect=conn.dialect).sql
        bound = [n for n in _insert_columns(reference.sql) if n not in nulls]
        assert _insert_columns(driver.sql) == _insert_columns(reference.sql)
        assert conn.params == [tuple(p for n, p in zip(_insert_columns(reference.sql), row)
                                     if n in bound) for row in expected]
        assert [v for n, v in zip(_insert_columns(driver.sql), _insert_values(driver.sql))
                if n in nulls] == ["NULL"] * len(nulls)
    assert _valued(logged)[1] == ("body", "via")  # the entry's NULLs are not bound


def _insert_columns(sql: str) -> list[str]:
    return sql.split("(", 1)[1].split(")", 1)[0].split(", ")


def _insert_values(sql: str) -> list[str]:
    return sql.rsplit("VALUES (", 1)[1].rstrip(")").split(", ")


# --- the inline reading of usual values (engine/records/_accept.py) ----------------------

_pad = st.sampled_from(["", "", " ", "\t", "\u3000", "\n", "\x1c"])
_decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.integers(0, 6).flatmap(lambda n: st.decimals(-(10**6), 10**6, places=n)),
    st.builds(lambda d, n: d.scaleb(-n), st.decimals(-(10**6), 10**6, places=0),
              st.integers(0, 6)),                     # trailing zeros: 12.500
    st.builds(lambda k, d, neg: (Decimal(10) ** k - d) * (-1 if neg else 1),   # the limits
              st.integers(1, 20), st.sampled_from([Decimal(0), Decimal(1), Decimal("0.01"),
                                                   Decimal(-1)]), st.booleans()),
    st.sampled_from([Decimal(0), Decimal("-0.00"), Decimal("1E+20"), Decimal("1E-70"),
                     Decimal("9999999999999999.99"), Decimal("1E+16"), Decimal("0.001")]),
    st.integers(-(10**18), 10**18), st.floats(), st.text(max_size=12))


def _native(f: Field) -> st.SearchStrategy[Any]:
    """Values of ``f`` as Python callers (seeding, imports, the engine) pass them: the usual
    spelling the compiled path reads inline, near misses and junk of the same shape."""
    t = f.type
    base = STRATEGIES[t]
    if t in (FieldType.SELECT, FieldType.MULTI_SELECT):
        base = st.sampled_from(list(f.option_values))
        items = st.one_of(base, st.tuples(_pad, base, _pad).map("".join), st.text(max_size=4),
                          st.integers(0, 3), st.sampled_from(["", " "]))
        if t is FieldType.MULTI_SELECT:
            return st.one_of(st.lists(base, max_size=4), st.lists(items, max_size=4),
                             st.lists(base, max_size=4), st.tuples(base), _junk)
        return st.one_of(base, items, base, _junk)
    if t in (FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL,
             FieldType.LONG_TEXT, FieldType.RICH_TEXT):
        text = st.one_of(base, st.text(max_size=120), st.from_regex(r"[0-9A-Z]{5,19}"),
                         st.from_regex(r"\+?[0-9][0-9 -]{4,20}"),
                         st.sampled_from(["a@b.cn", "https://x.cn/a b", "https://x.cn/%zz",
                                          'https://x.cn/"q"', "http://localhost:8/",
                                          "x" * 101]))
        return st.one_of(text, st.tuples(_pad, text, _pad).map("".join), _pad, _junk)
    if t in (FieldType.INTEGER, FieldType.RATING, FieldType.REFERENCE, FieldType.USER):
        edges = st.sampled_from([0, 1, -1, 5, 6, 10**6, 10**6 + 1, 2**63 - 1, 2**63, -(2**63),
                                 -(2**63) - 1])
        return st.one_of(base, edges, st.integers(-(2**65), 2**65), st.booleans(),
                         st.builds(Decimal, st.integers(-10, 10)), _junk)
    if t in (FieldType.DECIMAL, FieldType.PERCENT):
        return st.one_of(base, _decimals, _junk)
    if t is FieldType.MONEY:
        currency = st.sampled_from(["CNY", "USD", "cny", " CNY", "CN", "CNYY", "ＣＮＹ", "", None,
                                    "Cny", "1AB"])
        usual = st.decimals(0, 10**6, places=2)
        return st.one_of(base, st.fixed_dictionaries({"amount": _decimals, "currency": currency}),
                         st.fixed_dictionaries({"amount": usual, "currency": currency}),
                         st.fixed_dictionaries({"amount": _decimals},
                                               optional={"currency": currency, "x": st.just(1)}),
                         _junk)
    if t is FieldType.GEO_POINT:
        coordinate = st.one_of(st.floats(), st.integers(-200, 200), st.sampled_from([0.0, -0.0]),
                               st.floats(-90, 90), st.floats(-200, 200))
        return st.one_of(base, st.fixed_dictionaries({"lat": coordinate, "lng": coordinate}),
                         st.fixed_dictionaries({"lat": coordinate, "lng": coordinate},
                                               optional={"alt": st.just(1.0)}), _junk)
    if t is FieldType.ADDRESS:
        part = st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none(),
                         st.booleans(), st.lists(st.integers(), max_size=2))
        plain = st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none())
        return st.one_of(base, st.dictionaries(st.text(max_size=6), part, max_size=3),
                         st.dictionaries(st.integers(0, 3), plain, min_size=1, max_size=2),
                         st.dictionaries(st.one_of(st.text(max_size=2), st.integers(0, 3)),
                                         part, max_size=2), _junk)
    if t is FieldType.DATE:
        return st.one_of(base, st.datetimes(), _junk)
    return st.one_of(base, _junk)


@pytest.fixture(scope="module")
def plans(schema: StorageSchema, crm: StorageSchema) -> dict[str, EntityPlan]:
    """One plan per entity: its compiled functions are built once, not per example."""
    return {"account": EntityPlan(schema, schema.registry.entity("account")),
            "customer": EntityPlan(crm, crm.registry.entity("customer"))}


def _inline_cases() -> list[tuple[str, str]]:
    account = [("account", str(f["name"])) for f in EVERY_TYPE["fields"]
               if f["type"] != "auto_number"]
    return [*account, ("account", "owner_id"), ("customer", "licence_no"),
            ("customer", "phone"), ("customer", "annual_revenue"), ("customer", "tags")]


@pytest.mark.parametrize(("entity", "name"), _inline_cases(), ids="-".join)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_values_read_inline_equal_the_coercer_and_check(
        plans: dict[str, EntityPlan], entity: str, name: str, data: st.DataObject) -> None:
    """One field's native value (Decimals, floats, dicts, padded text, values at and past
    every bound; the required fields valid, so that value alone decides the row): the
    compiled path, which reads each type's usual spelling inline, gives exactly the
    reference path's values, and declines exactly the rows it refuses."""
    plan = plans[entity]
    value = data.draw(st.one_of(st.integers(-3, 2**64), _junk) if name == "owner_id"
                      else _native(plan.fields[name].field))
    required = {p.name: "Acme" for p in plan.fields.values() if p.field.required}
    _agree(plan, data.draw(st.sampled_from(list(InputSource))), {**required, name: value})


def test_usual_values_are_read_inline(crm: StorageSchema) -> None:
    """The seeded CRM customers take the inline branch of every field: no coercer runs."""
    from engine.seeding import generate_rows

    plan = EntityPlan(crm, crm.registry.entity("customer"))
    fast = compile_fast(plan, InputSource.JSON)
    called: list[str] = []
    for name, value in list(fast.__globals__.items()):
        if name.startswith("_c") and name[2:].isdigit():
            fast.__globals__[name] = lambda v, f=value, n=name: called.append(n) or f(v)
    rows = list(generate_rows(plan.entity, count=200, seed=3, start=10))
    assert all(fast(row, NOW, OWNER) is not None for row in rows)
    assert called == []
    assert fast({**rows[0], "tags": ["vip", "vip"]}, NOW, OWNER) is not None
    assert called  # a repeated option: the coercer drops it


_NUMBER_FIELDS = [field("measured", "money", currency="CNY", min=0),
                  field("measured", "money", precision=10, scale=4, max=99999.5),
                  field("measured", "decimal", precision=10, scale=3),
                  field("measured", "decimal", min=-1.25, max=3),
                  field("measured", "decimal", precision=38, scale=0),
                  field("measured", "percent"),
                  field("measured", "percent", scale=1, min=-5)]


@pytest.fixture(scope="module", params=range(len(_NUMBER_FIELDS)))
def number_field(request: pytest.FixtureRequest) -> Field:
    spec = _NUMBER_FIELDS[request.param]
    account = {**ACCOUNT, "fields": [*ACCOUNT["fields"], spec]}
    return registry(account, CONTACT).entity("account").fields[-1]


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=_decimals.filter(lambda d: isinstance(d, Decimal)))
def test_decimal_fits_exactly_what_the_coercer_keeps_and_the_check_passes(
        number_field: Field, number: Decimal) -> None:
    """``decimal_fits`` (a Decimal read inline) implies: the coercer returns that very
    Decimal and the check finds nothing, at the column's limits and scale too; and it
    declines a valid Decimal only for zeros past the scale (12.500 at scale 2)."""
    f = number_field
    rules = number_rules(f)
    assert rules is not None
    fits = decimal_fits(rules, number_limits(f))(number)
    given_ = {"amount": number, "currency": "CNY"} if f.type is FieldType.MONEY else number
    try:
        kept = coercer(f)(given_)
    except CoercionError:
        assert not fits
        return
    amount = kept["amount"] if f.type is FieldType.MONEY else kept
    valid = validator(f)(kept) is None
    if fits:
        assert valid and amount is number
    elif valid and amount is number:
        _, digits, exponent = number.as_tuple()
        scale = rules.scale or 0
        assert isinstance(exponent, int) and exponent < -scale \
            and not any(digits[exponent + scale:])


def test_row_keys_name_each_row_as_a_list_would() -> None:
    from engine.records._write import RowKeys, key

    for bulk in (True, False):
        made = [key(i if bulk else None, "owner_id") for i in range(4)]
        keys = RowKeys("owner_id", 4, bulk=bulk)
        assert list(keys) == made and len(keys) == 4 and keys[-1] == made[-1]
        assert keys[1:3] == made[1:3]
        with pytest.raises(IndexError):
            keys[4]
