"""Sharing rules in roles metadata: parsed with their sources, bad ones named by file:pointer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.metadata.loader import check_packages, load_packages
from engine.metadata.model import Condition
from engine.metadata.parse import registry_from_document
from tests.unit.metadata.meta_packages import base_files, write_package

ROLE = "roles/rep.json"
GOOD_RULE: dict[str, Any] = {
    "name": "actives", "entity": "account", "access": "write",
    "where": [{"field": "status", "op": "eq", "value": "active"},
              {"field": "amount", "op": "gte", "value": 1000}],
    "departments": ["north"],
}


def _with_rules(*rules: dict[str, Any]) -> dict[str, Any]:
    files = base_files()
    files[ROLE]["sharing_rules"] = list(rules)
    return files


def test_a_rule_loads_with_its_conditions_and_source(tmp_path: Path) -> None:
    path = write_package(tmp_path, "base", _with_rules(GOOD_RULE))
    registry = load_packages([path])
    (rule,) = registry.roles["rep"].sharing_rules
    assert rule.name == "actives" and rule.entity == "account" and rule.access == "write"
    assert rule.where == (Condition("status", "eq", "active"), Condition("amount", "gte", 1000))
    assert rule.departments == ("north",)
    assert rule.source.file == str(path / ROLE) and rule.source.pointer == "/sharing_rules/0"
    # The applied document round-trips: what storage records, a later process reads back.
    again = registry_from_document(registry.document)
    assert again.roles["rep"].sharing_rules[0].where == rule.where


def _rule(**changes: Any) -> dict[str, Any]:
    return {**GOOD_RULE, **changes}


def _drop_note_grant(files: dict[str, Any]) -> None:
    files[ROLE]["grants"] = [g for g in files[ROLE]["grants"] if g["entity"] != "note"]


CASES: list[tuple[str, list[dict[str, Any]], Callable[[dict[str, Any]], None] | None,
                  str, str]] = [
    ("duplicate-name", [GOOD_RULE, _rule(access="read")], None,
     "/sharing_rules/1/name", "duplicate sharing rule name 'actives'"),
    ("unknown-entity", [_rule(entity="acount")], None,
     "/sharing_rules/0/entity", "no entity 'acount'; did you mean 'account'"),
    ("unknown-field", [_rule(where=[{"field": "stats", "op": "eq", "value": "new"}])], None,
     "/sharing_rules/0/where/0/field", "no field 'stats'"),
    ("operator-for-type", [_rule(where=[{"field": "status", "op": "contains", "value": "a"}])],
     None, "/sharing_rules/0/where/0/op", "operator 'contains' does not apply to select"),
    ("value-not-an-option", [_rule(where=[{"field": "status", "op": "eq", "value": "gone"}])],
     None, "/sharing_rules/0/where/0/value", "'gone' is not one of the options"),
    ("value-type", [_rule(where=[{"field": "amount", "op": "gt", "value": "lots"}])], None,
     "/sharing_rules/0/where/0/value", "amount: needs a number"),
    ("write-without-update", [_rule(entity="note", where=[
        {"field": "title", "op": "starts_with", "value": "VIP"}])], None,
     "/sharing_rules/0/access", "write access needs the role to grant 'update' on 'note'"),
    ("read-without-read", [_rule(entity="note", access="read", where=[
        {"field": "title", "op": "is_empty"}])], _drop_note_grant,
     "/sharing_rules/0/access", "read access needs the role to grant 'read' on 'note'"),
    ("schema-access", [_rule(access="delete")], None,
     "/sharing_rules/0/access", ""),
    ("schema-empty-where", [_rule(where=[])], None, "/sharing_rules/0/where", ""),
    ("schema-unknown-op", [_rule(where=[{"field": "status", "op": "like", "value": "a"}])],
     None, "/sharing_rules/0/where/0/op", ""),
]


@pytest.mark.parametrize(("case_id", "rules", "tweak", "pointer", "fragment"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_rules_are_reported_once_at_their_pointer(
        tmp_path: Path, case_id: str, rules: list[dict[str, Any]],
        tweak: Callable[[dict[str, Any]], None] | None, pointer: str, fragment: str) -> None:
    files = _with_rules(*rules)
    if tweak is not None:
        tweak(files)
    path = write_package(tmp_path, "base", files)
    issues = check_packages([path])
    assert [(i.file, i.pointer) for i in issues] == [(str(path / ROLE), pointer)], \
        "\n".join(map(str, issues))
    assert fragment in issues[0].message
