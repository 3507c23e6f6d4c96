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
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.messages import M
from engine.metadata.model import Field, FieldType

Coercer = Callable[[Any], Any]


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


# --- parsing helpers --------------------------------------------------------

def _number_text(text: str) -> str:
    return _THOUSANDS.sub("", text.strip())


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise CoercionError(M("expected a number"))
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise CoercionError(M("expected a finite number"))
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            try:  # "1,234.50", "1 234,5" style thousands separators from forms
                result = Decimal(_number_text(value))
            except InvalidOperation:
                raise CoercionError(M("%(value)s is not a number", value=repr(value))) from None
    else:
        raise CoercionError(M("expected a number"))
    if not result.is_finite():
        raise CoercionError(M("expected a finite number"))
    return result


def _integer_json(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError(M("expected a whole number"))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise CoercionError(M("expected a whole number"))


def _integer_string(value: str) -> int:
    text = _number_text(value)
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CoercionError(M("%(value)s is not a whole number", value=repr(value))) from None
    if number.is_finite() and number == number.to_integral_value():
        return int(number)
    raise CoercionError(M("%(value)s is not a whole number", value=repr(value)))


def _percent_string(value: str) -> Decimal:
    return _decimal(value.strip().removesuffix("%"))


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
    raise CoercionError(M("%(value)s is not yes/no (use true/false, yes/no, 1/0, 是/否)", value=repr(value)))


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise CoercionError(M("expected a date without a time"))
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise CoercionError(M("expected a date such as 2026-11-23"))
    text = value.strip().replace("/", "-")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CoercionError(M("%(value)s is not a date such as 2026-11-23", value=repr(value))) from None


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip().replace("/", "-")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise CoercionError(M("%(value)s is not a date and time such as 2026-11-23 10:00",
                                  value=repr(value))) from None
    else:
        raise CoercionError(M("expected a date and time such as 2026-11-23 10:00"))
    # Naive input means UTC: the engine stores every instant in UTC.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value.strip()):
        raise CoercionError(M("currency %(value)s is not a three-letter code such as CNY", value=repr(value)))
    return value.strip().upper()


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise CoercionError(M("expected a JSON object")) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CoercionError(M("expected an object"))
    return dict(value)


# --- per type coercers ------------------------------------------------------

def _text_coercer(field: Field, source: InputSource) -> Coercer:
    strip = field.type in SINGLE_LINE_TYPES

    def coerce(value: Any) -> Any:
        if value.__class__ is not str and not isinstance(value, str):
            raise CoercionError(M("expected text"))
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

    def with_currency(amount: Decimal, currency: Any) -> dict[str, Any]:
        if currency is None or currency == "":
            if default_currency is None:
                raise CoercionError(M("give a currency, e.g. 'CNY 12.50'"))
            currency = default_currency
        return {"amount": amount, "currency": _currency(currency)}

    def coerce(value: Any) -> Any:
        if isinstance(value, dict):
            unknown = set(value) - {"amount", "currency"}
            if unknown:
                raise CoercionError(M("unknown money part %(unknown)s", unknown=repr(min(unknown))))
            amount = value.get("amount")
            if amount is None or amount == "":
                return None
            return with_currency(_decimal(amount), value.get("currency"))
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            parts = text.split()
            if len(parts) == 2 and _CURRENCY.match(parts[0]):
                return with_currency(_decimal(parts[1]), parts[0])
            if len(parts) == 2 and _CURRENCY.match(parts[1]):
                return with_currency(_decimal(parts[0]), parts[1])
            return with_currency(_decimal(text), None)
        return with_currency(_decimal(value), None)

    return coerce


def _geo_coercer(field: Field, source: InputSource) -> Coercer:
    def point(lat: Any, lng: Any) -> dict[str, float]:
        try:
            la, ln = float(_decimal(lat)), float(_decimal(lng))
        except CoercionError:
            raise CoercionError(M("expected a point as 'latitude,longitude'")) from None
        if not -90.0 <= la <= 90.0:
            raise CoercionError(M("latitude %(la)s is outside -90..90", la=la))
        if not -180.0 <= ln <= 180.0:
            raise CoercionError(M("longitude %(ln)s is outside -180..180", ln=ln))
        return {"lat": la, "lng": ln}

    def coerce(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) != {"lat", "lng"}:
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
        return number

    return coerce


def _scalar_coercer(parse_json: Callable[[Any], Any],
                    parse_string: Callable[[str], Any]) -> Callable[[Field, InputSource], Coercer]:
    def build(field: Field, source: InputSource) -> Coercer:
        def coerce(value: Any) -> Any:
            if isinstance(value, str):
                if not value.strip():
                    return None
                return parse_string(value) if source is InputSource.STRING else parse_json(value)
            return parse_json(value)

        return coerce

    return build


def _integer_json_lenient(value: Any) -> int:
    # JSON sends whole numbers as numbers; a string is accepted only when it is plain.
    if isinstance(value, str):
        if re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        raise CoercionError(M("expected a whole number"))
    return _integer_json(value)


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
    FieldType.INTEGER: _scalar_coercer(_integer_json_lenient, _integer_string),
    FieldType.RATING: _scalar_coercer(_integer_json_lenient, _integer_string),
    FieldType.DECIMAL: _scalar_coercer(_decimal, _decimal),
    FieldType.PERCENT: _scalar_coercer(_decimal, _percent_string),
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
