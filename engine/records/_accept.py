"""The usual spelling of a field's value, accepted inline by compiled row preparation.

Nearly every value of a bulk create comes in one spelling per field type: text
that needs no stripping or folding, an option as it is stored, an ``int`` in
range, a ``Decimal`` that fits its column, a ``{"lat", "lng"}`` dict of floats.
Calling the field's coercer and then its check costs two to six Python calls per
value (a money amount about 3 µs: ``_decimal``, ``_within``, the check's digit
walk), a third of a bulk create's preparation.

``inline(p, i, namespace)`` gives, for one field, a condition over the payload
value ``v{i}`` and the expression of the stored value. The condition holds only
for a value that the field's coercer turns into exactly that stored value *and*
that passes the field's check; ``_prepare.compile_fast`` takes such a value
without a call. Every other value -- another spelling, or a wrong one -- goes
through the coercer and check as before, so values and error messages do not
change (tests/unit/records/test_rec_prepare.py holds the two paths equal).

The condition text holds only integer bounds, ``repr()`` of registry strings and
names; sets, patterns and helpers are passed in ``namespace`` by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from engine.metadata.model import FieldType
from engine.records._plan import FieldPlan
from engine.records.coerce import (
    INT64_MAX,
    INT64_MIN,
    IRI_PLAIN,
    MAX_NUMBER_DIGITS,
    NumberLimits,
    number_limits,
)
from engine.records.validate import NumberRules, number_rules, text_rules

_SINGLE_LINE = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL})
_MULTI_LINE = frozenset({FieldType.LONG_TEXT, FieldType.RICH_TEXT})
#: Types of an address's parts that its check takes as they are (bool, a subclass of
#: int, is taken too, but by the general path).
_PLAIN_PARTS = frozenset({str, int, float, type(None)})
_STR_ONLY = frozenset({str})


def inline(p: FieldPlan, i: int, namespace: dict[str, Any]) -> tuple[str, str] | None:
    """(condition, stored value) over ``v{i}`` for field ``p``'s usual spelling, or None
    when the type has none worth reading inline; names used are added to ``namespace``."""
    v, s = f"v{i}", f"s{i}"
    t = p.field.type
    if t in _SINGLE_LINE:
        conds = [f"{v}.__class__ is str", f"({s} := {v}.strip())"]
        if t is FieldType.URL:  # web_address keeps plain printable ASCII as it is
            namespace["_iri"] = IRI_PLAIN.issuperset
            conds.append(f"_iri({s})")
        return " and ".join(conds + _text_conditions(p, i, s, namespace)), s
    if t in _MULTI_LINE:  # kept as typed; all-blank text is no value
        conds = [f"{v}.__class__ is str", v, f"not {v}.isspace()"]
        return " and ".join(conds + _text_conditions(p, i, v, namespace)), v
    if t is FieldType.SELECT or t is FieldType.MULTI_SELECT:
        # Option values as stored: nothing to strip, and not empty.
        namespace[f"_o{i}"] = frozenset(o for o in p.field.option_values if o and o == o.strip())
        if t is FieldType.SELECT:
            return f"{v}.__class__ is str and {v} in _o{i}", v
        namespace["_str_only"] = _STR_ONLY
        # Distinct options as stored; an empty list is no value.
        return ((f"{v}.__class__ is list and _str_only.issuperset(map(type, {v})) "
                f"and _o{i}.issuperset({v}) and len(set({v})) == len({v})"),
                f"list({v}) or None")
    if t is FieldType.INTEGER or t is FieldType.RATING:
        rules = number_rules(p.field)
        assert rules is not None
        low = INT64_MIN if rules.low is None else max(INT64_MIN, _whole_bound(rules.low, up=True))
        high = INT64_MAX if rules.high is None else \
            min(INT64_MAX, _whole_bound(rules.high, up=False))
        return f"{v}.__class__ is int and {low} <= {v} <= {high}", v
    if t is FieldType.DECIMAL or t is FieldType.PERCENT:
        namespace["_Decimal"] = Decimal
        namespace[f"_q{i}"] = decimal_fits(_rules(p), number_limits(p.field))
        return f"{v}.__class__ is _Decimal and _q{i}({v})", v
    if t is FieldType.MONEY:
        namespace["_Decimal"] = Decimal
        namespace[f"_q{i}"] = decimal_fits(_rules(p), number_limits(p.field))
        a, c = f"a{i}", f"c{i}"
        # Exactly the two parts, the amount a Decimal that fits, the currency a code as
        # stored (three upper-case ASCII letters: what _currency makes of it).
        return ((f"{v}.__class__ is dict and len({v}) == 2 "
                f"and ({a} := {v}.get('amount')).__class__ is _Decimal "
                f"and ({c} := {v}.get('currency')).__class__ is str and len({c}) == 3 "
                f"and {c}.isascii() and {c}.isalpha() and {c}.isupper() and _q{i}({a})"),
                f"{{'amount': {a}, 'currency': {c}}}")
    if t is FieldType.GEO_POINT:
        a, b = f"a{i}", f"b{i}"
        # Finite non-zero floats in range: the coercer's own float shortcut, no check.
        return ((f"{v}.__class__ is dict and len({v}) == 2 "
                f"and ({a} := {v}.get('lat')).__class__ is float "
                f"and ({b} := {v}.get('lng')).__class__ is float "
                f"and 0.0 < abs({a}) <= 90.0 and 0.0 < abs({b}) <= 180.0"),
                f"{{'lat': {a}, 'lng': {b}}}")
    if t is FieldType.ADDRESS:
        namespace["_str_only"] = _STR_ONLY
        namespace["_plain_parts"] = _PLAIN_PARTS
        return ((f"{v}.__class__ is dict and {v} and _str_only.issuperset(map(type, {v})) "
                f"and _plain_parts.issuperset(map(type, {v}.values()))"), f"dict({v})")
    if t is FieldType.BOOLEAN:
        return f"{v}.__class__ is bool", v
    if t is FieldType.DATE:
        namespace["_date"] = date
        return f"{v}.__class__ is _date", v
    if t is FieldType.REFERENCE or t is FieldType.USER:
        return id_condition(v), v
    return None


def id_condition(v: str) -> str:
    """A record id given as a plain positive ``int`` within signed 64-bit (``_id_coercer``)."""
    return f"{v}.__class__ is int and 0 < {v} <= {INT64_MAX}"


def _rules(p: FieldPlan) -> NumberRules:
    rules = number_rules(p.field)
    assert rules is not None
    return rules


def _text_conditions(p: FieldPlan, i: int, s: str, namespace: dict[str, Any]) -> list[str]:
    rules = text_rules(p.field)
    conds = []
    if rules.min_length is not None or rules.max_length is not None:
        low = "" if rules.min_length is None else f"{int(rules.min_length)} <= "
        high = "" if rules.max_length is None else f" <= {int(rules.max_length)}"
        conds.append(f"{low}len({s}){high}")
    for j, pattern in enumerate(rules.patterns):
        namespace[f"_m{i}_{j}"] = pattern.fullmatch
        conds.append(f"_m{i}_{j}({s})")
    return conds


def _whole_bound(bound: Any, *, up: bool) -> int:
    """The whole number an int must reach (``up``: at least, else at most) to be within
    ``bound``, compared exactly as the check compares (``Decimal(str(bound))``)."""
    if bound.__class__ is int:
        return int(bound)
    exact = Decimal(str(bound))
    return int(math.ceil(exact) if up else math.floor(exact))


def decimal_fits(rules: NumberRules, limits: NumberLimits) -> Callable[[Decimal], bool]:
    """Whether a ``Decimal`` is kept as it is by the coercer (``coerce._within``) and
    passes the check (``validate._number_checks``): finite, not zero (the coercer makes
    every zero ``Decimal(0)``), no more places than the scale, fewer integer digits than
    both the column and the coercer allow, within the field's range. A value this
    declines may still be valid (``12.500`` at scale 2): the general path decides."""
    low = None if rules.low is None else \
        rules.low if rules.low.__class__ is int else Decimal(str(rules.low))
    high = None if rules.high is None else \
        rules.high if rules.high.__class__ is int else Decimal(str(rules.high))
    # Lowest exponent: the check's scale, and the coercer's bound on places.
    least = None if rules.scale is None else -rules.scale
    if limits.scale is not None:
        coerced = -(limits.scale + MAX_NUMBER_DIGITS)
        least = coerced if least is None else max(least, coerced)
    # Highest adjusted exponent (a non-zero |d| < 10**k holds exactly when adjusted < k).
    top = limits.integer_digits
    if rules.precision is not None:
        top = min(top, rules.precision - (rules.scale or 0))

    def fits(d: Decimal) -> bool:
        _, digits, exponent = d.as_tuple()
        if not isinstance(exponent, int) or not digits[0] or len(digits) > MAX_NUMBER_DIGITS:
            return False  # NaN, infinity, zero, too many digits: the general path
        if least is not None and exponent < least:
            return False
        if exponent + len(digits) - 1 >= top:
            return False
        return (low is None or d >= low) and (high is None or d <= high)

    return fits
