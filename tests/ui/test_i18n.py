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


def test_engine_messages_are_extracted_with_the_ui_messages() -> None:
    ids = {m.id for m in extract() if m.id}
    # one of each kind: coercion, validation, stage rules, query, permissions, plan lines
    for template in ("expected a whole number", "must be at least %(low)s",
                     "is required to enter stage %(stage)s", "unknown operator %(op)s",
                     "none of your roles grants it",
                     "add field %(entity)s.%(field)s (column %(columns)s)",
                     "Demo: sign in as %(logins)s... with the password %(password)s"):
        assert template in ids, template


def test_engine_messages_translate_with_their_values() -> None:
    from engine.messages import M
    from engine.metadata.model import LocalText

    stage = LocalText.of({"en": "Quote", "zh-CN": "报价"})
    message = M("is required to enter stage %(stage)s", stage=stage)
    assert message == "is required to enter stage Quote"  # English for logs and the API
    assert i18n.translate("zh-CN", message) == "进入“报价”阶段前必须填写"
    assert i18n.t("zh-CN", M("must be at least %(low)s", low=3)) == "不能小于 3"
    assert i18n.translate("zh-CN", "not in the catalog") == "not in the catalog"


def test_every_metadata_label_has_both_languages() -> None:
    """Labels users read that come from the app packages: entities, fields, options,
    pipelines and stages, pools, roles."""
    from engine.metadata.loader import load_packages
    from tests.conftest import REPO_ROOT

    registry = load_packages([REPO_ROOT / "apps" / "crm"])
    labels: list[tuple[str, object]] = []
    for entity in registry.entities.values():
        labels += [(entity.name, entity.label), (f"{entity.name} (plural)", entity.plural_label)]
        for f in entity.fields:
            labels.append((f"{entity.name}.{f.name}", f.label))
            labels += [(f"{entity.name}.{f.name}={o.value}", o.label) for o in f.options]
    for pipeline in registry.pipelines.values():
        labels.append((pipeline.name, pipeline.label))
        labels += [(f"{pipeline.name}/{s.key}", s.label) for s in pipeline.stages]
    labels += [(p.name, p.label) for p in registry.pools.values()]
    labels += [(r.name, r.label) for r in registry.roles.values()]
    missing = [name for name, label in labels
               if not label or {"en", "zh-CN"} - set(label.as_dict())]  # type: ignore[attr-defined]
    assert missing == []


def test_vocabulary_covers_the_metadata_words() -> None:
    from engine.metadata.model import ACTIONS, Feature, FieldType, RowScope, StageKind
    from ui.vocabulary import VOCABULARY

    words = [*ACTIONS, *(s.value for s in RowScope), *(f.value for f in Feature),
             *(t.value for t in FieldType), *(k.value for k in StageKind)]
    assert [w for w in words if w not in VOCABULARY] == []
