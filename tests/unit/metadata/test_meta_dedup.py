"""The ``dedup`` section of an entity: valid rules load, each mistake is reported once at
its file and pointer."""

from __future__ import annotations

from typing import Any

import pytest
from meta_packages import L, base_files

from engine.metadata.loader import check_packages, load_packages
from engine.metadata.model import DedupMatch

ACC = "entities/account.json"
NOTE = "entities/note.json"

SIMILAR = {"name": "similar", "match": "similar_name", "field": "name",
           "message": L("A similar account exists")}


def phone_of(entity: str, **extra: Any) -> dict[str, Any]:
    return {"name": "their_phone", "match": "other_entity", "field": "phone",
            "entity": entity, **extra}


def with_note_phone(files: dict[str, Any]) -> None:
    files[NOTE]["fields"].append({"name": "phone", "type": "phone", "label": L("Phone")})
    files[NOTE]["fields"].append({"name": "mail", "type": "email", "label": L("Mail")})


def test_valid_rules_load_with_their_sources(make_package) -> None:
    files = base_files()
    with_note_phone(files)
    files[ACC]["dedup"] = {"warn": [SIMILAR]}
    files[NOTE]["dedup"] = {"keys": ["mail"], "warn": [phone_of("account")]}
    registry = load_packages([make_package("base", files)])
    account, note = registry.entity("account"), registry.entity("note")
    assert [(r.name, r.match) for r in account.dedup_rules] == \
        [("similar", DedupMatch.SIMILAR_NAME)]
    assert account.dedup_rules[0].source.pointer == "/dedup/warn/0"
    rule = note.dedup_rules[0]
    assert (rule.entity, rule.target_field, note.dedup_keys) == ("account", "phone", ("mail",))


CASES = [
    ("duplicate-rule-name", ACC, {"warn": [SIMILAR, SIMILAR]}, "/dedup/warn/1/name",
     "duplicate dedup rule name"),
    ("missing-field", ACC, {"warn": [{**SIMILAR, "field": "nmae"}]}, "/dedup/warn/0/field",
     "no field 'nmae'; did you mean 'name'?"),
    ("similar-name-on-phone", ACC, {"warn": [{**SIMILAR, "field": "phone"}]},
     "/dedup/warn/0/field", "not text"),
    ("similar-name-with-entity", ACC, {"warn": [{**SIMILAR, "entity": "note"}]},
     "/dedup/warn/0/entity", "other_entity rules only"),
    ("other-entity-without-entity", NOTE, {"warn": [phone_of("account") | {"entity": ""}]},
     "/dedup/warn/0/entity", ""),
    ("other-entity-unknown", NOTE, {"warn": [phone_of("acount")]}, "/dedup/warn/0/entity",
     "no entity 'acount'"),
    ("other-entity-type-mismatch", NOTE,
     {"warn": [phone_of("account", field="mail", entity_field="phone")]},
     "/dedup/warn/0/entity_field", "cannot be compared"),
    ("other-entity-field-unkeyed", ACC, {"warn": [phone_of("note")]},
     "/dedup/warn/0/field", "has no match key to probe"),
    ("other-entity-reference", NOTE, {"warn": [phone_of("account", field="account")]},
     "/dedup/warn/0/field", "has no match key"),
    ("key-of-wrong-type", ACC, {"keys": ["amount"]}, "/dedup/keys/0", "has no match key"),
    ("unknown-match", ACC, {"warn": [{**SIMILAR, "match": "soundex"}]},
     "/dedup/warn/0/match", ""),
]


@pytest.mark.parametrize(("case_id", "rel", "dedup", "pointer", "fragment"), CASES,
                         ids=[c[0] for c in CASES])
def test_invalid_dedup(case_id: str, rel: str, dedup: dict[str, Any], pointer: str,
                       fragment: str, make_package) -> None:
    files = base_files()
    with_note_phone(files)
    files[rel]["dedup"] = dedup
    path = make_package("base", files)
    issues = check_packages([path])
    assert len(issues) == 1, "\n".join(map(str, issues))
    assert (issues[0].file, issues[0].pointer) == (str(path / rel), pointer), str(issues[0])
    assert fragment in issues[0].message
