"""Match-key normalisation: table-driven spellings, then properties over generated input."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.metadata.model import Entity, Field, FieldType, LocalText, UniqueKey
from engine.storage.matchkeys import (
    code_key,
    email_key,
    inline_source,
    keyed_fields,
    name_stem,
    normaliser,
    phone_key,
    text_key,
)

MOBILE = "8613000000003"
BEIJING = "861012345678"


@pytest.mark.parametrize(("raw", "key"), [
    ("+86 130-0000-0003", MOBILE),
    ("86 13000000003", MOBILE),
    ("130 0000 0003", MOBILE),
    ("13000000003", MOBILE),
    ("0086 130 0000 0003", MOBILE),
    ("+86 (130) 0000.0003", MOBILE),
    ("＋８６ １３００００００００３", MOBILE),   # full-width, as Chinese IMEs type
    ("010-1234 5678", BEIJING),                  # trunk prefix 0
    ("+86 10 1234 5678", BEIJING),
    ("+86 (0)10 1234 5678", BEIJING),            # trunk prefix kept after the code
    ("0086-10-12345678", BEIJING),
    ("86 10 1234 5678", BEIJING),
    ("+1 415 555 0100", "14155550100"),          # another country keeps its code
    ("001 415 555 0100", "14155550100"),
    ("8765 4321", "8687654321"),                 # a local number: short, no code
    ("---", None),
    ("", None),
])
def test_phone_spellings(raw: str, key: str | None) -> None:
    assert phone_key(raw) == key


@pytest.mark.parametrize(("fn", "raw", "key"), [
    (email_key, " Ann@Example.COM ", "ann@example.com"),
    (email_key, "ＡＮＮ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ann@example.com"),
    (email_key, "   ", None),
    (text_key, "  Acme   Trading  Co ", "acme trading co"),
    (text_key, "ＡＣＭＥ　贸易", "acme 贸易"),          # ideographic space folds too
    (text_key, "Straße", "strasse"),                 # case folding, not lower()
    (text_key, "\t", None),
    (code_key, "91110000 6000-1234 5x", "91110000600012345X"),
    (code_key, "９１１１ａｂｃ", "9111ABC"),
])
def test_other_spellings(fn, raw: str, key: str | None) -> None:
    assert fn(raw) == key


def test_none_has_no_key() -> None:
    assert all(fn(None) is None for fn in (phone_key, email_key, text_key, code_key))


mobile = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
separators = st.lists(st.sampled_from([" ", "-", ".", "\u3000"]), max_size=3)


@given(number=mobile, prefix=st.sampled_from(["", "86", "+86", "0086", "+86 ", "86-"]),
       seps=separators, full_width=st.booleans())
def test_every_spelling_of_a_mobile_has_one_key(number: str, prefix: str, seps: list[str],
                                                full_width: bool) -> None:
    spelled = prefix
    for i, digit in enumerate(number):
        spelled += digit + (seps[i % len(seps)] if seps and i % 4 == 2 else "")
    if full_width:
        spelled = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in spelled)
    assert phone_key(spelled) == "86" + number


@given(st.text(max_size=40))
def test_keys_are_idempotent(value: str) -> None:
    for fn in (text_key, email_key, code_key):
        key = fn(value)
        assert key is None or fn(key) == key
    key = phone_key(value)
    assert key is None or key.isdigit()


def _code_key_in_full(value: str) -> str | None:
    # code_key without its ASCII shortcut: fold, drop gaps, fold again
    key = unicodedata.normalize("NFKC", re.sub(r"[\s\-]+", "", unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", value).upper())))
    return key or None


@given(st.one_of(st.text(max_size=20),
                 st.text(alphabet=st.characters(codec="ascii"), max_size=20),
                 st.from_regex(r"[0-9A-Za-z]{1,18}", fullmatch=True),
                 st.from_regex(r"[0-9]{1,14}", fullmatch=True)))
def test_ascii_shortcuts_give_the_full_keys(value: str) -> None:
    """code_key's and phone_key's shortcuts for plain ASCII give what the general
    expressions give (phone_key compared with a trailing dash, which takes the
    expression's path without changing the number)."""
    assert code_key(value) == _code_key_in_full(value)
    assert phone_key(value) == phone_key(value + "-")


@given(st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=1,
               max_size=20))
def test_text_key_ignores_case_and_width(value: str) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) for c in value)
    assert text_key(value.upper()) == text_key(value.lower()) == text_key(wide)


def _field(name: str, type_: FieldType, **kw: object) -> Field:
    return Field(name=name, type=type_, label=LocalText.of({"en": name}), **kw)  # type: ignore[arg-type]


def test_keyed_fields_are_the_normalisable_parts_of_unique_keys() -> None:
    entity = Entity(
        name="lead", label=LocalText.of({"en": "Lead"}), plural_label=LocalText.of({"en": "Leads"}),
        title_field="name",
        fields=(_field("name", FieldType.TEXT), _field("phone", FieldType.PHONE),
                _field("email", FieldType.EMAIL, unique=True),
                _field("licence", FieldType.TEXT, pattern="^[0-9A-Z]{18}$"),
                _field("size", FieldType.INTEGER, unique=True)),
        unique_keys=(UniqueKey("phone", ("phone",)), UniqueKey("lic", ("licence", "size"))))
    assert [f.name for f in keyed_fields(entity)] == ["phone", "email", "licence"]
    assert normaliser(entity.field("licence")) is code_key
    assert normaliser(entity.field("name")) is text_key
    assert normaliser(entity.field("size")) is None


_NORMALISERS = (code_key, phone_key, name_stem, text_key, email_key)
_INLINE = {}
for _norm in _NORMALISERS:
    _namespace: dict[str, object] = {"_n": _norm}
    exec(f"def f(x):\n    return {inline_source(_norm, 'x', '_n', _namespace)}\n",  # noqa: S102
         _namespace)
    _INLINE[_norm] = _namespace["f"]
#: The spellings the shortcuts take, their edges (trunk 0, country code, company
#: forms, blanks), and anything else.
_spellings = st.one_of(
    st.text(alphabet="0123456789", max_size=14),
    st.text(alphabet="0123456789").map(lambda d: "86" + d),
    st.text(alphabet="AbcXYz019 -", max_size=20),
    st.builds(lambda words, form: " ".join([*words, form]),
              st.lists(st.text(alphabet="abcDEF123", min_size=1, max_size=6), max_size=3),
              st.sampled_from(["co", "Ltd", "inc", "", "x", "GmbH"])),
    st.text(max_size=20),
    st.none(), st.integers(), st.builds(type("Text", (str,), {}), st.text(max_size=5)))


@pytest.mark.parametrize("norm", _NORMALISERS, ids=lambda n: n.__name__)
@given(value=_spellings)
def test_inline_sources_equal_the_normalisers(norm: object, value: object) -> None:
    """What bulk creates derive inline (``_prepare.compile_derive``) is the normaliser's
    value, for the usual spellings and every other."""
    try:
        expected = norm(value)  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 -- an int: whatever the call does, inline does
        with pytest.raises(type(exc)):
            _INLINE[norm](value)
        return
    assert _INLINE[norm](value) == expected


def test_inline_sources_take_the_usual_spellings_without_a_call() -> None:
    def refuse(value: object) -> str:
        raise AssertionError(f"called for {value!r}")

    cases = [(code_key, "91310000MA1FL0K0X1", "91310000MA1FL0K0X1"),
             (code_key, "abc123", "ABC123"),
             (phone_key, "13000000003", MOBILE), (phone_key, "1012345678", BEIJING),
             (name_stem, "Fuxin Chen 5000", "fuxinchen5000"),
             (name_stem, "Acme Trading Co Ltd x", "acmetradingcoltdx")]
    for norm, value, key in cases:
        namespace: dict[str, object] = {"_n": refuse}
        exec(f"def f(x):\n    return {inline_source(norm, 'x', '_n', namespace)}\n",  # noqa: S102
             namespace)
        assert namespace["f"](value) == key == norm(value)  # type: ignore[operator]
