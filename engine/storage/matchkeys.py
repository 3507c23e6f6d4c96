"""Match keys: the normalised form of a value that uniqueness and matching compare.

``+86 130-0000-0003``, ``86 13000000003`` and ``130 0000 0003`` are one phone
number; ``Ann@Example.COM`` and ``ann@example.com`` one address; ``ＡＢＣ 公司``
and ``abc 公司`` one name. Comparing raw values lets each spelling in as a new
record (a known way to game "new customer" bonuses), so every field that takes
part in a unique key gets a companion *key column* holding its normalised value.
The unique constraint sits on the key columns, which makes a duplicate lookup one
index probe on both databases and lets the database itself refuse a racing twin.

The functions are pure and live in storage because the migration that adds a key
column fills it for the rows already there; the records service writes it on
every insert and update.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

from engine.metadata.model import Entity, Field, FieldType

#: Suffix of a key column: ``phone`` -> ``phone__key``. Field names may not hold
#: ``__`` (see engine.metadata.crosscheck), so a key column never clashes with a field.
KEY_SUFFIX = "__key"
#: The country whose numbers are written without a country code (mainland China).
DEFAULT_COUNTRY_CODE = "86"

_SPACES = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"[^0-9]")

Normaliser = Callable[[object], "str | None"]


def _nfkc(value: object) -> str:
    # NFKC folds full-width letters, digits and punctuation (ＡＢＣ１２３) to ASCII.
    return unicodedata.normalize("NFKC", str(value))


def text_key(value: object) -> str | None:
    """Trimmed, inner whitespace collapsed, width-folded (NFKC) and case-folded."""
    if value is None:
        return None
    # NFKC again after folding: case folding can leave a decomposed sequence (ŗ -> r + ̧).
    key = _nfkc(_SPACES.sub(" ", _nfkc(_nfkc(value).casefold())).strip())
    return key or None


def email_key(value: object) -> str | None:
    """An address with its case folded (mailbox parts are case-insensitive in practice)."""
    if value is None:
        return None
    key = _nfkc(_SPACES.sub("", _nfkc(_nfkc(value).casefold())))
    return key or None


def code_key(value: object) -> str | None:
    """Identifiers such as licence numbers: width-folded, spaces and dashes gone, upper-cased."""
    if value is None:
        return None
    key = _nfkc(re.sub(r"[\s\-]+", "", _nfkc(_nfkc(value).upper())))
    return key or None


def phone_key(value: object, *, country: str = DEFAULT_COUNTRY_CODE) -> str | None:
    """Country code plus national number, digits only.

    A number written without a country code belongs to ``country``; its trunk
    prefix ``0`` (``010-1234 5678``) is dropped, as it is after a country code
    (``+86 (0)10 ...``). ``+``, ``00`` or a leading ``86`` on an 11+ digit number
    mark an international number. Separators, brackets and full-width digits
    never matter.
    """
    if value is None:
        return None
    text = _nfkc(value).strip()
    digits = _NOT_DIGIT.sub("", text)
    if not digits:
        return None
    if text.startswith("+"):
        full = digits
    elif digits.startswith("00"):
        full = digits[2:]
    elif digits.startswith(country) and len(digits) >= 11:
        # 11+ digits starting with the country code: a national number never does
        # (mobiles start with 1, landlines with the trunk 0, local numbers are short).
        full = digits
    elif digits.startswith("0"):
        full = country + digits.lstrip("0")
    else:
        full = country + digits
    if full.startswith(country + "0"):
        full = country + full[len(country):].lstrip("0")
    return full or None


#: Field types with a normalisation, and which one.
NORMALISERS: dict[FieldType, Normaliser] = {
    FieldType.TEXT: text_key,
    FieldType.EMAIL: email_key,
    FieldType.PHONE: phone_key,
}


def normaliser(field: Field) -> Normaliser | None:
    """The key function of a field (None: the raw value is its own key).

    A text field constrained by a pattern of upper-case letters and digits holds a
    code (licence or registration number): its key keeps letters upper-cased and
    drops spaces and dashes, which people type between groups of characters.
    """
    if field.type is FieldType.TEXT and field.pattern and _looks_like_code(field.pattern):
        return code_key
    return NORMALISERS.get(field.type)


def _looks_like_code(pattern: str) -> bool:
    # An upper-case class and no lower-case one: ^([0-9A-HJ-NP...]{18}|[0-9]{15})$
    return bool(re.search(r"\[[^\]]*A-", pattern)) and not re.search(r"\[[^\]]*a-", pattern)


def key_column(field_name: str) -> str:
    """The key column of a field."""
    return field_name + KEY_SUFFIX


def keyed_fields(entity: Entity, extra: Iterable[str] = ()) -> tuple[Field, ...]:
    """Fields that get a key column: those in a unique key (or ``unique``) whose type
    normalises, plus ``extra`` names (fields a dedup rule matches on)."""
    names = {f for k in entity.unique_keys for f in k.fields}
    names |= {f.name for f in entity.fields if f.unique}
    names |= set(extra)
    return tuple(f for f in entity.fields if f.name in names and normaliser(f) is not None)
