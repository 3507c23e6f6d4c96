"""Constraints from a field definition, checked on coerced values.

``validator(field)`` builds, once per field, a function that returns a message
for a bad value and None for a good one. ``None`` values never reach it:
required is decided by the caller, which knows whether this is a create or an
update. Messages are for the person who typed the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import String

from engine.messages import M
from engine.metadata.model import Field, FieldType
from engine.storage.tables import column_type

Validator = Callable[[Any], "str | None"]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_URL = re.compile(r"https?://[^\s/?#]+\.[^\s/?#]+([/?#]\S*)?|https?://localhost(:\d+)?([/?#]\S*)?",
                  re.IGNORECASE)
_PHONE = re.compile(r"\+?[0-9][0-9 ()\-.]*[0-9](\s*(ext|x|#)\s*\d+)?", re.IGNORECASE)
_FORMATS = {FieldType.EMAIL: _EMAIL, FieldType.URL: _URL, FieldType.PHONE: _PHONE}
DEFAULT_RATING_MAX = 5
#: Longest file name kept (what file systems allow; uploads are cut to 200 characters).
MAX_FILE_NAME = 255
PERCENT_RANGE = (Decimal(0), Decimal(100))


def _number_checks(field: Field, *, scale: int | None, precision: int | None,
                   low: Any, high: Any) -> Callable[[Any], str | None]:
    # Whole bounds stay ints: an int compared with a Decimal is converted on every call
    # (integer and rating fields check each value of a bulk create against them).
    low_d = None if low is None else low if low.__class__ is int else Decimal(str(low))
    high_d = None if high is None else high if high.__class__ is int else Decimal(str(high))
    max_integer_digits = None if precision is None else precision - (scale or 0)
    limit = None if max_integer_digits is None else Decimal(10) ** max_integer_digits

    def check(number: Any) -> str | None:
        if low_d is not None and number < low_d:
            return M("must be at least %(low)s", low=low)
        if high_d is not None and number > high_d:
            return M("must be at most %(high)s", high=high)
        if isinstance(number, Decimal):
            _, digits, exponent = number.as_tuple()
            # Trailing zeros beyond the scale are harmless (12.500 for 2 places). Read from
            # the digits, not by quantize: that is exact whatever the context's precision.
            if scale is not None and isinstance(exponent, int) and -exponent > scale \
                    and any(digits[-(-exponent - scale):]):
                return M("at most %(scale)s digits after the decimal point", scale=scale)
            if limit is not None and abs(number) >= limit:
                return M("too large: at most %(digits)s digits before the point",
                         digits=max_integer_digits)
        return None

    return check


#: The message of a pattern mismatch when the field declares none.
PATTERN_MISMATCH = "is not in the expected format"


@dataclass(frozen=True)
class TextRules:
    """What a text value of a field must satisfy (compiled row preparation reads them
    to test the usual value inline; ``_text_validator`` says what is wrong)."""

    min_length: int | None
    max_length: int | None
    #: The type's own format (email, URL, phone), then the field's pattern; each a
    #: ``fullmatch`` that must succeed.
    patterns: tuple[re.Pattern[str], ...]


def text_rules(field: Field) -> TextRules:
    """The length limits (the column's included) and patterns of a text-like field."""
    type_ = column_type(field)
    max_length = field.max_length
    if isinstance(type_, String) and type_.length:
        max_length = min(max_length or type_.length, type_.length)
    fmt = _FORMATS.get(field.type)
    patterns = (*(() if fmt is None else (fmt,)),
                *((re.compile(field.pattern),) if field.pattern else ()))
    return TextRules(min_length=field.min_length, max_length=max_length, patterns=patterns)



def _text_validator(field: Field) -> Validator:
    rules = text_rules(field)
    max_length = rules.max_length
    min_length = rules.min_length
    pattern = re.compile(field.pattern) if field.pattern else None
    pattern_message = field.pattern_message.get() if field.pattern_message else \
        PATTERN_MISMATCH
    fmt = {FieldType.EMAIL: (_EMAIL, M("is not an email address")),
           FieldType.URL: (_URL, M("is not a web address starting with http:// or https://")),
           FieldType.PHONE: (_PHONE, M("is not a phone number"))}.get(field.type)

    def check(value: Any) -> str | None:
        if min_length is not None and len(value) < min_length:
            return M("must be at least %(min_length)s characters", min_length=min_length)
        if max_length is not None and len(value) > max_length:
            return M("must be at most %(max_length)s characters", max_length=max_length)
        if fmt is not None and not fmt[0].fullmatch(value):
            return fmt[1]
        if pattern is not None and not pattern.fullmatch(value):
            # The expression means nothing to a user: the field's own message (in the
            # default language; screens show the user's) or a generic one.
            return pattern_message
        return None

    return check


def _select_validator(field: Field) -> Validator:
    allowed = frozenset(field.option_values)
    shown = ", ".join(field.option_values)

    def check(value: Any) -> str | None:
        if value not in allowed:
            return M("%(value)s is not one of the options (%(shown)s)", value=repr(value),
                     shown=shown)
        return None

    return check


def _multi_select_validator(field: Field) -> Validator:
    single = _select_validator(field)

    def check(value: Any) -> str | None:
        for item in value:
            message = single(item)
            if message:
                return message
        return None

    return check


def _file_validator(field: Field) -> Validator:
    accept = field.accept

    def accepted(content_type: str) -> bool:
        for pattern in accept:
            if pattern.endswith("/*") and content_type.startswith(pattern[:-1]):
                return True
            if pattern == content_type:
                return True
        return False

    def check(value: Any) -> str | None:
        if not isinstance(value.get("name"), str) or not value["name"]:
            return M("a file needs a name")
        if len(value["name"]) > MAX_FILE_NAME:
            return f"a file name has at most {MAX_FILE_NAME} characters"
        size = value.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            return M("file size must be a whole number of bytes")
        if field.max_size is not None and size is not None and size > field.max_size:
            return M("file is larger than %(max_size)s bytes", max_size=field.max_size)
        if accept:
            content_type = value.get("content_type")
            if not isinstance(content_type, str) or not accepted(content_type):
                return M("file type must be one of %(accept)s", accept=', '.join(accept))
        return None

    return check


def _address_validator(field: Field) -> Validator:
    def check(value: Any) -> str | None:
        for key, part in value.items():
            if part is not None and not isinstance(part, (str, int, float)):
                return M("address part %(key)s must be text", key=repr(key))
        return None

    return check


@dataclass(frozen=True)
class NumberRules:
    """The range and digits a number of a field must keep to (see ``_number_checks``)."""

    low: Any
    high: Any
    scale: int | None
    precision: int | None


def number_rules(field: Field) -> NumberRules | None:
    """The checks of a numeric field's value (a money field's amount); None if not numeric."""
    t = field.type
    if t is FieldType.INTEGER:
        return NumberRules(low=field.min, high=field.max, scale=None, precision=None)
    if t is FieldType.RATING:
        return NumberRules(low=field.min if field.min is not None else 1,
                           high=field.max if field.max is not None else DEFAULT_RATING_MAX,
                           scale=None, precision=None)
    if t in (FieldType.DECIMAL, FieldType.MONEY, FieldType.PERCENT):
        type_ = column_type(field)
        low: Any = field.min
        high: Any = field.max
        if t is FieldType.PERCENT and low is None and high is None:
            low, high = PERCENT_RANGE
        return NumberRules(low=low, high=high, scale=getattr(type_, "scale", None),
                           precision=getattr(type_, "precision", None))
    return None


def _nothing(value: Any) -> str | None:
    return None


def validator(field: Field) -> Validator:
    """The constraint check of one field (None = fine, else a message)."""
    t = field.type
    if t in (FieldType.TEXT, FieldType.LONG_TEXT, FieldType.RICH_TEXT, FieldType.EMAIL,
             FieldType.PHONE, FieldType.URL, FieldType.AUTO_NUMBER):
        return _text_validator(field)
    if t is FieldType.SELECT:
        return _select_validator(field)
    if t is FieldType.MULTI_SELECT:
        return _multi_select_validator(field)
    rules = number_rules(field)
    if rules is not None:
        checks = _number_checks(field, scale=rules.scale, precision=rules.precision,
                                low=rules.low, high=rules.high)
        if t is FieldType.MONEY:
            return lambda value: checks(value["amount"])
        return checks
    if t is FieldType.FILE:
        return _file_validator(field)
    if t is FieldType.ADDRESS:
        return _address_validator(field)
    return _nothing


def checks_nothing(check: Validator) -> bool:
    """Whether ``check`` accepts every value (compiled row preparation skips calling it)."""
    return check is _nothing
