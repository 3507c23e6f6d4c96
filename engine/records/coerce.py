"""Field values in and out: strings (forms, CSV) and JSON become Python values, and back.

Python values per field type (what a ``Record`` holds):

=================  ==========================================================
text-like, select  ``str`` (single-line text is stripped; "" becomes None)
integer, rating    ``int``
decimal, percent   ``Decimal``
money              ``{"amount": Decimal, "currency": "CNY"}``
boolean            ``bool``
date / datetime    ``date`` / timezone-aware ``datetime`` in UTC (naive input is UTC)
multi_select       ``list[str]`` (non-empty, no repeats; empty becomes None)
reference, user    ``int`` (the id)
geo_point          ``{"lat": float, "lng": float}``
address, file      ``dict``
=================  ==========================================================

Coercion only gets the *shape* right; constraints from the field definition
(required, ranges, options, patterns...) are checked in ``validate``. Every
failure raises ``CoercionError`` with a message meant for the person who typed it.

One constraint is checked here, first: a number must fit its column
(``NumberLimits``: digits before the point from the declared precision and
scale, whole numbers and ids within signed 64-bit), read lexically while it is
still short text, because ``Decimal`` makes ``1e999999999`` cheap to read and
ruinous to turn into an ``int``, quantize or send to a database.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

from engine.messages import M
from engine.metadata.model import Field, FieldType

Coercer = Callable[[Any], Any]

#: Ids and integers are signed 64-bit, as both databases store them.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_ID = INT64_MAX
#: Longest text read as a number, separators included: far above what any column holds
#: (precision is at most 38), short enough that reading it costs microseconds.
MAX_NUMBER_TEXT = 100
#: Most significant digits a number may carry (trailing zeros included).
MAX_NUMBER_DIGITS = 60
#: Most digits of an exponent: "1e999999999" is read (cheaply: a ``Decimal`` keeps the
#: exponent apart) so that it is refused as out of range rather than as not a number.
MAX_EXPONENT_DIGITS = 12
#: Longest text read as a date or an instant ("2026-11-23T10:00:00.000000+08:00" is 32).
MAX_DATE_TEXT = 64


class InputSource(str, enum.Enum):
    """Where a payload comes from, which decides how lenient parsing is.

    ``JSON`` accepts JSON values and native Python values (``Decimal``, ``date``,
    ``datetime``) as the engine itself and the API send them. ``STRING`` is for
    forms and CSV files, where every value is text: "1,234.50", "是", "CNY 12.50".
    """

    JSON = "json"
    STRING = "string"


class CoercionError(ValueError):
    """A value that cannot be read as its field's type; the message is per field."""


SINGLE_LINE_TYPES = frozenset({FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL,
                               FieldType.AUTO_NUMBER, FieldType.SELECT})
_TRUE = frozenset({"true", "yes", "y", "1", "on", "是", "对", "真"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "否", "错", "假"})
_THOUSANDS = re.compile(r"[,\s_\u00a0]")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_LIST_SPLIT = re.compile(r"[,，;；]")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,"
                     + str(MAX_EXPONENT_DIGITS) + "})?")
#: What an IRI may not contain: controls, space, the excluded ASCII and a % that starts no
#: percent-encoding (RFC 3987, 2.2).
_NOT_IN_IRI = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})')
_NOT_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
_PLAIN_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_STR_ONLY = frozenset({str})
_MONEY_PARTS = frozenset({"amount", "currency"})
_LAT_LNG = frozenset({"lat", "lng"})
#: How many spellings of currencies a money coercer remembers (see ``_money_coercer``).
_KNOWN_CURRENCIES = 64
#: Printable ASCII an IRI holds as it is: ``web_address`` returns text made only of these
#: without running its expression (no "%": it may start a bad percent-encoding).
_IRI_PLAIN = frozenset(map(chr, range(0x21, 0x7F))) - frozenset('"<>\\^`{|}%')
#: The same set, for compiled row preparation (``_accept``): such text is its own IRI.
IRI_PLAIN = _IRI_PLAIN


@dataclass(frozen=True)
class NumberLimits:
    """How large a number a field's column holds, checked before any arbitrary-precision work.

    A ``Decimal`` keeps an exponent apart from its digits, so ``1e999999999`` is
    cheap to read but ruinous to turn into an ``int`` or to quantize; the
    limits refuse it while it is still a short text or a small tuple.
    """

    integer_digits: int          # digits before the point the column holds
    scale: int | None = None     # digits after the point (None: integers)
    low: int | None = None       # whole-number range (integers only)
    high: int | None = None


INTEGER_LIMITS = NumberLimits(integer_digits=19, low=INT64_MIN, high=INT64_MAX)


def number_limits(field: Field) -> NumberLimits:
    """The limits of a numeric field, from the precision and scale its column is declared with."""
    if field.type in (FieldType.INTEGER, FieldType.RATING, FieldType.REFERENCE, FieldType.USER):
        return INTEGER_LIMITS
    default_scale = {FieldType.MONEY: 2}.get(field.type, 4)
    scale = field.scale if field.scale is not None else default_scale
    precision = 9 if field.type is FieldType.PERCENT else (field.precision or 18)
    return NumberLimits(integer_digits=max(precision - scale, 1), scale=scale)


_DEFAULT_DECIMAL = NumberLimits(integer_digits=18, scale=18)
#: Latitude and longitude: three digits before the point, any after (they become floats).
_GEO_LIMITS = NumberLimits(integer_digits=3)


# --- parsing helpers --------------------------------------------------------

def _number_text(text: str) -> str:
    return _THOUSANDS.sub("", text.strip())


def _number_literal(value: str) -> Decimal:
    """A number from text, read lexically first: length, digits and exponent are bounded
    before ``Decimal`` sees it. Thousands separators ("1,234.50") are dropped."""
    text = value.strip()
    if len(text) > MAX_NUMBER_TEXT:
        raise CoercionError(M("is too long for a number (at most %(max_number_text)s characters)",
                              max_number_text=MAX_NUMBER_TEXT))
    if not _NUMBER.fullmatch(text):
        if text.lstrip("+-").lower() in _NOT_FINITE:
            raise CoercionError(M("expected a finite number"))
        text = _number_text(text)
        if not _NUMBER.fullmatch(text):
            raise CoercionError(M("%(value)s is not a number", value=repr(value[:MAX_NUMBER_TEXT])))
    return Decimal(text)


def _within(number: Decimal, limits: NumberLimits) -> Decimal:
    """``number`` if its column can hold it; every check here is O(digits), digits bounded."""
    if not number.is_finite():
        raise CoercionError(M("expected a finite number"))
    if number.is_zero():
        return Decimal(0)  # 0E+999999999 is zero; its exponent must not travel on
    digits = number.as_tuple().digits
    if len(digits) > MAX_NUMBER_DIGITS:
        raise CoercionError(M("has too many digits (at most %(max_number_digits)s)",
                              max_number_digits=MAX_NUMBER_DIGITS))
    if number.adjusted() >= limits.integer_digits:
        _too_large(limits)
    exponent = number.adjusted() - len(digits) + 1
    if limits.scale is not None and exponent < -(limits.scale + MAX_NUMBER_DIGITS):
        raise CoercionError(M("at most %(scale)s digits after the decimal point",
                              scale=limits.scale))
    return number


def _too_large(limits: NumberLimits) -> NoReturn:
    if limits.high is not None:
        raise CoercionError(M("is out of range (at most %(high)s)", high=limits.high))
    raise CoercionError(M("too large: at most %(integer_digits)s digits before the point",
                          integer_digits=limits.integer_digits))


def _decimal(value: Any, limits: NumberLimits = _DEFAULT_DECIMAL) -> Decimal:
    if isinstance(value, bool):
        raise CoercionError(M("expected a number"))
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        if value.bit_length() > 4 * MAX_NUMBER_DIGITS:
            raise CoercionError(M("has too many digits (at most %(max_number_digits)s)",
                                  max_number_digits=MAX_NUMBER_DIGITS))
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise CoercionError(M("expected a finite number"))
        result = Decimal(repr(value))
    elif isinstance(value, str):
        result = _number_literal(value)
    else:
        raise CoercionError(M("expected a number"))
    return _within(result, limits)


def _whole(number: Decimal, limits: NumberLimits, shown: str) -> int:
    """A bounded ``Decimal`` as an ``int``; refused unless whole and inside the range."""
    number = _within(number, limits)
    if number != number.to_integral_value():
        raise CoercionError(M("%(value)s is not a whole number", value=shown))
    return _in_range(int(number), limits)


def _in_range(number: int, limits: NumberLimits) -> int:
    if limits.low is not None and number < limits.low:
        raise CoercionError(M("is out of range (at least %(low)s)", low=limits.low))
    if limits.high is not None and number > limits.high:
        raise CoercionError(M("is out of range (at most %(high)s)", high=limits.high))
    return number


def _integer_json(value: Any, limits: NumberLimits = INTEGER_LIMITS) -> int:
    if isinstance(value, bool):
        raise CoercionError(M("expected a whole number"))
    if isinstance(value, int):
        return _in_range(value, limits)
    if isinstance(value, float):
        if not value.is_integer():
            raise CoercionError(M("expected a whole number"))
        return _whole(Decimal(repr(value)), limits, repr(value))
    if isinstance(value, Decimal) and value.is_finite():
        return _whole(value, limits, "the value")
    raise CoercionError(M("expected a whole number"))


def _integer_string(value: str, limits: NumberLimits = INTEGER_LIMITS) -> int:
    text = value.strip()
    if _PLAIN_INTEGER.fullmatch(text):
        return _in_range(int(text), limits)
    try:
        number = _number_literal(value)
    except CoercionError as exc:
        if "too long" in str(exc):
            raise
        raise CoercionError(M("%(value)s is not a whole number",
                                      value=repr(value[:MAX_NUMBER_TEXT]))) from None
    return _whole(number, limits, repr(value))


def read_id(value: Any) -> int:
    """A record id from text or JSON: a positive whole number within signed 64-bit.

    For ids that arrive from a URL or a form; raises ``CoercionError``.
    """
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[0-9]{1,19}", text):
            raise CoercionError(M("expected a record id (a positive whole number)"))
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise CoercionError(M("expected a record id (a positive whole number)"))
    if not 0 < number <= MAX_ID:
        raise CoercionError(M("expected a record id between 1 and %(max_id)s", max_id=MAX_ID))
    return number


def _percent_string(value: str, limits: NumberLimits = _DEFAULT_DECIMAL) -> Decimal:
    return _decimal(value.strip().removesuffix("%"), limits)


def _boolean_json(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _boolean_string(value)
    raise CoercionError(M("expected true or false"))


def _boolean_string(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CoercionError(M("%(value)s is not yes/no (use true/false, yes/no, 1/0, 是/否)",
                          value=repr(value[:40])))


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise CoercionError(M("expected a date without a time"))
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise CoercionError(M("expected a date such as 2026-11-23"))
    text = value.strip().replace("/", "-")
    try:
        if len(text) > MAX_DATE_TEXT:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise CoercionError(M("%(value)s is not a date such as 2026-11-23",
                              value=repr(value[:MAX_DATE_TEXT]))) from None


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip().replace("/", "-")
        try:
            if len(text) > MAX_DATE_TEXT:
                raise ValueError(text)
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise CoercionError(M("%(value)s is not a date and time such as 2026-11-23 10:00",
                                  value=repr(value[:MAX_DATE_TEXT]))) from None
    else:
        raise CoercionError(M("expected a date and time such as 2026-11-23 10:00"))
    # Naive input means UTC: the engine stores every instant in UTC.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01 00:00+01:00 is before the first instant Python holds
        raise CoercionError(M("is out of range (years 1 to 9999 in UTC)")) from None


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value.strip()):
        raise CoercionError(M("currency %(value)s is not a three-letter code such as CNY",
                              value=repr(str(value)[:40])))
    return value.strip().upper()


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise CoercionError(M("expected a JSON object")) from None
    # Key types read in C: a generator over the keys was a visible share of a bulk create.
    if not isinstance(value, dict) or not _STR_ONLY.issuperset(map(type, value)) and \
            not all(isinstance(k, str) for k in value):
        raise CoercionError(M("expected an object"))
    return dict(value)


# --- per type coercers ------------------------------------------------------

def web_address(text: str) -> str:
    """``text`` with the characters an IRI (RFC 3987) may not hold percent-encoded.

    People paste addresses such as ``https://x.example/search?q="a b"``; browsers send
    them encoded, and so are they stored, so every stored address is a valid IRI
    (the API documents url fields with ``format: iri``). Valid IRIs are unchanged.
    """
    if _IRI_PLAIN.issuperset(text):  # the usual address: checked in C, char by char
        return text
    return _NOT_IN_IRI.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def _text_coercer(field: Field, source: InputSource) -> Coercer:
    strip = field.type in SINGLE_LINE_TYPES
    is_url = field.type is FieldType.URL

    def coerce(value: Any) -> Any:
        if value.__class__ is not str and not isinstance(value, str):
            raise CoercionError(M("expected text"))
        if is_url:
            return web_address(value.strip()) or None
        if strip:
            return value.strip() or None
        return value if value.strip() else None

    return coerce


def _select_coercer(field: Field, source: InputSource) -> Coercer:
    # A form or CSV may carry an option's label in any locale; the value is stored.
    by_label = {text.strip().lower(): o.value for o in field.options for _, text in o.label.values}
    values = set(field.option_values)

    def coerce(value: Any) -> Any:
        if not isinstance(value, str):
            raise CoercionError(M("expected an option value"))
        value = value.strip()
        if not value:
            return None
        if value in values:
            return value
        return by_label.get(value.lower(), value)

    return coerce


def _multi_select_coercer(field: Field, source: InputSource) -> Coercer:
    single = _select_coercer(field, source)

    def coerce(value: Any) -> Any:
        if isinstance(value, str):
            items: list[Any] = _LIST_SPLIT.split(value)
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise CoercionError(M("expected a list of option values"))
        result: list[str] = []
        for item in items:
            chosen = single(item)
            if chosen is not None and chosen not in result:
                result.append(chosen)
        return result or None

    return coerce


def _money_coercer(field: Field, source: InputSource) -> Coercer:
    default_currency = field.currency
    limits = number_limits(field)
    # Currencies as given (None, "", "cny", " CNY") -> their code, once read: a bulk
    # create names the same few thousands of times. Only valid ones, and only a few.
    known: dict[str | None, str] = {}

    def with_currency(amount: Decimal, currency: Any) -> dict[str, Any]:
        given = currency
        if currency is None or currency == "":
            if default_currency is None:
                raise CoercionError(M("give a currency, e.g. 'CNY 12.50'"))
            currency = default_currency
        code = _currency(currency)
        if (given is None or given.__class__ is str) and len(known) < _KNOWN_CURRENCIES:
            known[given] = code
        return {"amount": amount, "currency": code}

    def coerce(value: Any) -> Any:
        if isinstance(value, dict):
            if not _MONEY_PARTS.issuperset(value):
                unknown = set(value) - _MONEY_PARTS
                raise CoercionError(M("unknown money part %(unknown)s", unknown=repr(min(unknown))))
            amount = value.get("amount")
            if amount is None or amount == "":
                return None
            currency = value.get("currency")
            code = known.get(currency) if currency is None or currency.__class__ is str \
                else None
            if code is not None:
                return {"amount": _decimal(amount, limits), "currency": code}
            return with_currency(_decimal(amount, limits), currency)
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            parts = text.split()
            if len(parts) == 2 and _CURRENCY.match(parts[0]):
                return with_currency(_decimal(parts[1], limits), parts[0])
            if len(parts) == 2 and _CURRENCY.match(parts[1]):
                return with_currency(_decimal(parts[0], limits), parts[1])
            return with_currency(_decimal(text, limits), None)
        return with_currency(_decimal(value, limits), None)

    return coerce


def _geo_coercer(field: Field, source: InputSource) -> Coercer:
    def point(lat: Any, lng: Any) -> dict[str, float]:
        try:
            # JSON numbers are floats already: finite ones need no trip through Decimal
            # (a float has at most 17 significant digits; the range is checked below).
            # Zero (its sign dropped) and |x| >= 1000 (refused as too large) take the
            # general path, as do NaN and infinities (every comparison below fails).
            if lat.__class__ is float and lng.__class__ is float \
                    and 0.0 < abs(lat) < 1000.0 and 0.0 < abs(lng) < 1000.0:
                la, ln = lat, lng
            else:
                la, ln = float(_decimal(lat, _GEO_LIMITS)), float(_decimal(lng, _GEO_LIMITS))
        except CoercionError:
            raise CoercionError(M("expected a point as 'latitude,longitude'")) from None
        if not -90.0 <= la <= 90.0:
            raise CoercionError(M("latitude %(la)s is outside -90..90", la=la))
        if not -180.0 <= ln <= 180.0:
            raise CoercionError(M("longitude %(ln)s is outside -180..180", ln=ln))
        return {"lat": la, "lng": ln}

    def coerce(value: Any) -> Any:
        if isinstance(value, dict):
            if value.keys() != _LAT_LNG:
                raise CoercionError(M("expected an object with lat and lng"))
            return point(value["lat"], value["lng"])
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return point(value[0], value[1])
        if isinstance(value, str):
            if not value.strip():
                return None
            parts = value.split(",")
            if len(parts) == 2:
                return point(parts[0].strip(), parts[1].strip())
        raise CoercionError(M("expected a point as 'latitude,longitude'"))

    return coerce


def _object_coercer(field: Field, source: InputSource) -> Coercer:
    def coerce(value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and field.type is FieldType.ADDRESS \
                and not value.lstrip().startswith("{"):
            return {"text": value.strip()}  # a one-line address typed into a form
        obj = _json_object(value)
        return obj or None

    return coerce


def _id_coercer(field: Field, source: InputSource) -> Coercer:
    def coerce(value: Any) -> Any:
        if isinstance(value, dict) and "id" in value:
            value = value["id"]
        if isinstance(value, str):
            if not value.strip():
                return None
            value = _integer_string(value)
        number = _integer_json(value)
        if number <= 0:
            raise CoercionError(M("expected a record id (a positive whole number)"))
        return number  # _integer_json keeps it within signed 64-bit

    return coerce


def _scalar_coercer(parse_json: Callable[..., Any],
                    parse_string: Callable[..., Any], *,
                    numeric: bool = False) -> Callable[[Field, InputSource], Coercer]:
    def build(field: Field, source: InputSource) -> Coercer:
        if numeric:  # the field's own limits, computed once per coercer
            limits = number_limits(field)
            read_json: Callable[[Any], Any] = lambda v: parse_json(v, limits)
            read_string: Callable[[str], Any] = lambda v: parse_string(v, limits)
        else:
            read_json, read_string = parse_json, parse_string

        def coerce(value: Any) -> Any:
            if isinstance(value, str):
                if not value.strip():
                    return None
                return read_string(value) if source is InputSource.STRING else read_json(value)
            return read_json(value)

        return coerce

    return build


def _integer_json_lenient(value: Any, limits: NumberLimits = INTEGER_LIMITS) -> int:
    # JSON sends whole numbers as numbers; a string is accepted only when it is plain.
    if isinstance(value, str):
        if _PLAIN_INTEGER.fullmatch(value.strip()):
            return _in_range(int(value), limits)
        raise CoercionError(M("expected a whole number"))
    return _integer_json(value, limits)


_BUILDERS: dict[FieldType, Callable[[Field, InputSource], Coercer]] = {
    FieldType.TEXT: _text_coercer,
    FieldType.LONG_TEXT: _text_coercer,
    FieldType.RICH_TEXT: _text_coercer,
    FieldType.EMAIL: _text_coercer,
    FieldType.PHONE: _text_coercer,
    FieldType.URL: _text_coercer,
    FieldType.AUTO_NUMBER: _text_coercer,
    FieldType.SELECT: _select_coercer,
    FieldType.MULTI_SELECT: _multi_select_coercer,
    FieldType.INTEGER: _scalar_coercer(_integer_json_lenient, _integer_string, numeric=True),
    FieldType.RATING: _scalar_coercer(_integer_json_lenient, _integer_string, numeric=True),
    FieldType.DECIMAL: _scalar_coercer(_decimal, _decimal, numeric=True),
    FieldType.PERCENT: _scalar_coercer(_decimal, _percent_string, numeric=True),
    FieldType.MONEY: _money_coercer,
    FieldType.BOOLEAN: _scalar_coercer(_boolean_json, _boolean_string),
    FieldType.DATE: _scalar_coercer(_date, _date),
    FieldType.DATETIME: _scalar_coercer(_datetime, _datetime),
    FieldType.REFERENCE: _id_coercer,
    FieldType.USER: _id_coercer,
    FieldType.GEO_POINT: _geo_coercer,
    FieldType.ADDRESS: _object_coercer,
    FieldType.FILE: _object_coercer,
}


def coercer(field: Field, source: InputSource = InputSource.JSON) -> Coercer:
    """Build the coercion function of one field; callers on hot paths keep it.

    The function maps None to None and raises ``CoercionError`` on bad input.
    """
    inner = _BUILDERS[field.type](field, InputSource(source))

    def coerce(value: Any) -> Any:
        if value is None:
            return None
        return inner(value)

    return coerce


def present_coercer(field: Field, source: InputSource = InputSource.JSON) -> Coercer:
    """``coercer`` for values already known not to be None (compiled row preparation
    tests for None itself and saves a call per value)."""
    return _BUILDERS[field.type](field, InputSource(source))


def coerce(field: Field, value: Any, *, source: InputSource = InputSource.JSON) -> Any:
    """Read one value of ``field`` from a payload; raises ``CoercionError``."""
    return coercer(field, source)(value)


# --- output ------------------------------------------------------------------

_ZERO = timedelta(0)


def instant_json(value: datetime) -> str:
    """An instant as ISO 8601 in UTC (naive values are taken as UTC)."""
    offset = value.utcoffset()
    if offset == _ZERO:  # what both databases return: no conversion needed
        return value.isoformat()
    if offset is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _decimal_json(value: Decimal) -> str:
    return format(value, "f")


def to_json(field: Field, value: Any) -> Any:
    """A JSON-safe form of a field value (decimals as strings, instants as ISO 8601).

    ``coerce(field, to_json(field, v)) == v`` for every valid value.
    """
    if value is None:
        return None
    t = field.type
    if t in (FieldType.DECIMAL, FieldType.PERCENT):
        return _decimal_json(value)
    if t is FieldType.MONEY:
        return {"amount": _decimal_json(value["amount"]), "currency": value["currency"]}
    if t is FieldType.DATE:
        return value.isoformat()
    if t is FieldType.DATETIME:
        return instant_json(value)
    if t is FieldType.MULTI_SELECT:
        return list(value)
    if t in (FieldType.GEO_POINT, FieldType.ADDRESS, FieldType.FILE):
        return dict(value)
    return value


def _money_json(value: Any) -> dict[str, Any]:
    return {"amount": _decimal_json(value["amount"]), "currency": value["currency"]}


def _date_json(value: Any) -> str:
    return str(value.isoformat())


_JSON_WRITERS: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.DECIMAL: _decimal_json, FieldType.PERCENT: _decimal_json,
    FieldType.MONEY: _money_json, FieldType.DATE: _date_json,
    FieldType.DATETIME: instant_json, FieldType.MULTI_SELECT: list,
    FieldType.GEO_POINT: dict, FieldType.ADDRESS: dict, FieldType.FILE: dict,
}


def json_writer(field: Field) -> Callable[[Any], Any] | None:
    """``to_json`` for one field as a function of non-None values; None when values are
    already JSON-safe. Serialisers that write many rows keep one per field."""
    return _JSON_WRITERS.get(field.type)


def to_string(field: Field, value: Any) -> str:
    """The text a form or CSV export shows; ``coerce(field, s, source=STRING)`` reads it back."""
    if value is None:
        return ""
    t = field.type
    if t is FieldType.BOOLEAN:
        return "true" if value else "false"
    if t is FieldType.MONEY:
        return f"{value['currency']} {_decimal_json(value['amount'])}"
    if t is FieldType.MULTI_SELECT:
        return ",".join(value)
    if t is FieldType.GEO_POINT:
        return f"{value['lat']!r},{value['lng']!r}"
    if t in (FieldType.ADDRESS, FieldType.FILE):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    json_value = to_json(field, value)
    return json_value if isinstance(json_value, str) else str(json_value)
