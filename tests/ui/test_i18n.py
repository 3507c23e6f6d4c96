"""Every UI message has a Chinese translation that keeps its placeholders, and each
request gets the locale it asks for."""

from __future__ import annotations

import re

import pytest

from ui import i18n
from ui.i18n_catalog import _read, extract, missing_translations


def test_every_message_is_translated() -> None:
    assert len(list(extract())) > 50
    assert missing_translations("zh-CN") == []


def test_translations_keep_their_placeholders() -> None:
    for message in _read("zh-CN"):
        if message.id and isinstance(message.id, str):
            wanted = sorted(re.findall(r"%\(\w+\)s", message.id))
            assert sorted(re.findall(r"%\(\w+\)s", str(message.string))) == wanted, message.id


def test_catalog_is_read_at_runtime() -> None:
    assert i18n.t("zh-CN", "Search") == "搜索"
    assert i18n.t("en", "Search") == "Search"
    assert i18n.t("zh-CN", "%(n)s records", n=3) == "3 条记录"
    assert i18n.t("zh-CN", "not in the catalog") == "not in the catalog"


@pytest.mark.parametrize("kwargs,expected", [
    ({"param": "zh-CN", "cookie": "en", "user_locale": "en", "accept_language": "en"}, "zh-CN"),
    ({"param": "xx", "cookie": "zh_cn", "user_locale": "en", "accept_language": "en"}, "zh-CN"),
    ({"param": None, "cookie": None, "user_locale": "zh-CN", "accept_language": "en"}, "zh-CN"),
    ({"param": None, "cookie": None, "user_locale": None,
      "accept_language": "fr;q=0.9, zh-Hans;q=0.8, en;q=0.5"}, "zh-CN"),
    ({"param": None, "cookie": None, "user_locale": None,
      "accept_language": "en-GB, zh;q=0.5"}, "en"),
    ({"param": None, "cookie": None, "user_locale": None, "accept_language": ""}, "en"),
])
def test_negotiation_order(kwargs: dict[str, str | None], expected: str) -> None:
    assert i18n.negotiate(**kwargs) == expected  # type: ignore[arg-type]
