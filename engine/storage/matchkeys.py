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
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.metadata.model import DedupMatch, Entity, Field, FieldType

#: Suffix of a key column: ``phone`` -> ``phone__key``. Field names may not hold
#: ``__`` (see engine.metadata.crosscheck), so a key column never clashes with a field.
KEY_SUFFIX = "__key"
#: Suffix of a name-stem column (similar_name dedup rules): ``name`` -> ``name__stem``.
STEM_SUFFIX = "__stem"
#: The country whose numbers are written without a country code (mainland China).
DEFAULT_COUNTRY_CODE = "86"

_SPACES = re.compile(r"\s+")
_NOT_DIGIT = re.compile(r"[^0-9]")
_CODE_GAPS = re.compile(r"[\s\-]+")

Normaliser = Callable[[object], "str | None"]


def _nfkc(value: object) -> str:
    # NFKC folds full-width letters, digits and punctuation (ＡＢＣ１２３) to ASCII.
    if isinstance(value, str) and value.isascii():
        return value  # ASCII is its own NFKC form
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
    if isinstance(value, str) and value.isascii() and value.isalnum():
        return value.upper()  # nothing to fold or drop
    key = _nfkc(_CODE_GAPS.sub("", _nfkc(_nfkc(value).upper())))
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
    # Most numbers arrive as ASCII digits only: no separator for the expression to drop.
    digits = text if text.isascii() and text.isdigit() else _NOT_DIGIT.sub("", text)
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
    names |= set(entity.dedup_keys)
    names |= set(extra)
    return tuple(f for f in entity.fields if f.name in names and normaliser(f) is not None)


# Company-form words. Chinese ones are stripped from the end of the joined name
# (Chinese has no spaces between words), repeatedly ("...集团有限公司"); Latin ones only
# as whole trailing words, so "Taco" and "Costco" keep their endings.
_CJK_SUFFIXES = tuple(sorted((
    "股份有限公司", "有限责任公司", "有限公司", "分公司", "总公司", "公司", "集团", "工作室",
), key=len, reverse=True))
_LATIN_SUFFIXES = frozenset((
    "co", "ltd", "limited", "inc", "incorporated", "corp", "corporation", "company",
    "llc", "gmbh", "plc",
))
_WORD = re.compile(r"\w+")


def name_stem(value: object) -> str | None:
    """A company or person name reduced to what tells it apart, for similar_name rules.

    Width and case folded (NFKC, casefold), company-form words (``Co., Ltd.``,
    ``Inc``) dropped from the end, every space, punctuation mark and symbol removed,
    then Chinese company suffixes (``有限公司``, ``公司``, ``集团``) stripped from the
    end while something remains: ``上海 ABC 贸易有限公司``, ``上海ABC贸易公司`` and
    ``上海 abc 贸易`` share the stem ``上海abc贸易``. Equality of stems is one probe of
    the stem column's index on both databases; similarity measures (trigrams, edit
    distance) would need a scan on SQLite.
    """
    if value is None:
        return None
    if value.__class__ is str and value.isascii():
        plain = value.lower()  # ASCII: its own NFKC form, and casefold is lower
        if plain.replace(" ", "").isalnum():
            # Letters and digits between spaces (most names of a bulk import): the words
            # are the space-separated parts, nothing to fold, drop or strip but the
            # Latin company forms (no Chinese suffix ends ASCII text).
            parts = plain.split()
            while len(parts) > 1 and parts[-1] in _LATIN_SUFFIXES:
                parts.pop()
            return "".join(parts)
    return _general_stem(value)


def _general_stem(value: object) -> str | None:
    """``name_stem`` of any text (the reference its ASCII shortcut is tested against)."""
    words = [w.replace("_", "") for w in _WORD.findall(_nfkc(_nfkc(value).casefold()))]
    words = [w for w in words if w]
    while len(words) > 1 and words[-1] in _LATIN_SUFFIXES:
        words.pop()
    stem = _nfkc("".join(words))
    # One C-level test first: most names end in no company suffix at all.
    changed = stem.endswith(_CJK_SUFFIXES)
    while changed:
        changed = False
        for suffix in _CJK_SUFFIXES:
            if stem.endswith(suffix) and len(stem) > len(suffix):
                stem = stem[:-len(suffix)]
                changed = True
                break
    return stem or None


def inline_source(norm: Normaliser, x: str, call: str, namespace: dict[str, Any]) -> str:
    """An expression equal to ``norm(x)`` that reads a value in its usual spelling inline.

    A bulk create derives every row's match keys and stems; most values are plain
    ASCII (a licence code of letters and digits, a phone number of digits only, a
    name of words) and each normaliser's own shortcut for them is cheaper than its
    call. ``x`` is a variable name, ``call`` the name the caller binds ``norm`` to;
    any other value (or another normaliser) goes through ``call``; names the expression
    uses are added to ``namespace``. The conditions
    are the normalisers' own (tests/unit/storage/test_sto_matchkeys.py holds the
    expressions equal to the calls)."""
    if norm is code_key:
        return (f"({x}.upper() if {x}.__class__ is str and {x}.isascii() and {x}.isalnum() "
                f"else {call}({x}))")
    if norm is phone_key:
        # Digits only, no trunk 0, no country code in front: the country's number.
        country = DEFAULT_COUNTRY_CODE
        return (f"({country!r} + {x} if {x}.__class__ is str and {x}.isascii() "
                f"and {x}.isdigit() and {x}[0] != '0' "
                f"and not ({x}.startswith({country!r}) and len({x}) >= 11) else {call}({x}))")
    if norm is name_stem:
        # Words of ASCII letters and digits, the last no company form: the words joined.
        namespace["_latin_suffixes"] = _LATIN_SUFFIXES
        return (f"(''.join(p_{x}) if {x}.__class__ is str and {x}.isascii() "
                f"and (l_{x} := {x}.lower()).replace(' ', '').isalnum() "
                f"and (p_{x} := l_{x}.split())[-1] not in _latin_suffixes else {call}({x}))")
    return f"{call}({x})"


def stem_column(field_name: str) -> str:
    """The name-stem column of a field."""
    return field_name + STEM_SUFFIX


def stem_fields(entity: Entity) -> tuple[Field, ...]:
    """Fields a similar_name rule compares: they get an indexed stem column."""
    names = {r.field for r in entity.dedup_rules if r.match is DedupMatch.SIMILAR_NAME}
    return tuple(f for f in entity.fields if f.name in names)


def column_normaliser(info: Mapping[str, Any]) -> Normaliser | None:
    """The normalisation a derived column (its ``Column.info``) holds: stem or match key."""
    if info.get("stem_of") is not None:
        return name_stem
    field = info.get("key_of")
    return None if field is None else normaliser(field)
