"""Name stems (similar_name dedup rules) and full-width phone spellings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.storage.matchkeys import _general_stem, name_stem, phone_key


@pytest.mark.parametrize(("raw", "stem"), [
    ("上海 ABC 贸易有限公司", "上海abc贸易"),
    ("上海ABC贸易公司", "上海abc贸易"),
    ("上海ＡＢＣ贸易（集团）有限公司", "上海abc贸易"),   # full-width, brackets, two suffixes
    ("Acme Trading Co., Ltd.", "acmetrading"),
    ("ACME trading co ltd", "acmetrading"),
    ("Acme, Inc.", "acme"),
    ("公司", "公司"),                                  # a bare suffix is kept, not emptied
    ("Co.", "co"),
    ("Taco Co", "taco"),                             # Latin suffixes are whole words
    ("  ·—  ", None),
    ("", None),
])
def test_name_stems(raw: str, stem: str | None) -> None:
    assert name_stem(raw) == stem


def test_none_has_no_stem() -> None:
    assert name_stem(None) is None


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else
                   "\u3000" if c == " " else c for c in text)


def test_the_issue_spelling() -> None:
    assert phone_key("１３０ ００００ ０００３") == phone_key("130 0000 0003") == "8613000000003"


@given(st.text(alphabet="0123456789 +-().", max_size=20))
def test_full_width_phone_has_the_half_width_key(text: str) -> None:
    assert phone_key(full_width(text)) == phone_key(text)


@given(st.text(max_size=30))
def test_stem_is_idempotent_and_ignores_width(text: str) -> None:
    stem = name_stem(text)
    assert stem is None or name_stem(stem) == stem
    assert name_stem(full_width(text)) == stem


@settings(max_examples=400)
@given(st.one_of(st.text(alphabet=st.characters(max_codepoint=127), max_size=30),
                 st.lists(st.sampled_from(["Acme", "TRADING", "co", "Ltd", "inc", "9", "a1",
                                           " ", "  ", "\t", ".", "_", "-"]), max_size=6)
                 .map(" ".join), st.text(max_size=12)))
def test_the_ascii_shortcut_gives_the_general_stem(text: str) -> None:
    """Names of ASCII letters, digits and spaces skip the folding and the expression."""
    assert name_stem(text) == _general_stem(text)
