"""Overlays: an app changing entities and pipelines of an app it depends on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meta_packages import L, base_files

from engine.errors import MetadataError
from engine.metadata.loader import check_packages, load_packages
from engine.metadata.model import Source


def variant(make_package, name: str, overlays: dict[str, Any], *,
            depends_on: tuple[str, ...] = ("base",), extra: dict[str, Any] | None = None) -> Path:
    files = {f"overlays/{k}.json": v for k, v in overlays.items()}
    files.update(extra or {})
    return make_package(name, files, manifest={"depends_on": list(depends_on)})


def test_add_field_option_relabel_and_stage(make_package) -> None:
    base = make_package("base", base_files())
    fmcg = variant(make_package, "fmcg", {
        "account_more": {
            "entity": "account", "label": L("Store", "门店"),
            "add_fields": [{"name": "shelf_count", "type": "integer", "label": L("Shelves"),
                            "min": 0}],
            "fields": {"status": {"label": L("Store status", "门店状态"),
                                  "add_options": [{"value": "closed", "label": L("Closed")}],
                                  "options": {"new": {"label": L("Just opened"),
                                                      "color": "green"}}}},
            "add_indexes": [{"fields": ["shelf_count"]}],
        },
        "flow_more": {
            "pipeline": "account_flow",
            "add_stages": [{"key": "trial", "label": L("Trial order"), "probability": 60}],
            "stages": {"talk": {"probability": 40, "next_stages": ["trial", "lost"]}},
        },
    })
    registry = load_packages([fmcg, base])  # order of paths does not matter
    assert [a.name for a in registry.apps] == ["base", "fmcg"]
    account = registry.entity("account")
    assert account.label.get("zh-CN") == "门店"
    shelf = account.field("shelf_count")
    assert shelf.source == Source(str(fmcg / "overlays/account_more.json"), "/add_fields/0")
    status = account.field("status")
    assert status.option_values == ("new", "active", "closed")
    assert status.option("new").label.get() == "Just opened"
    assert status.option("new").color == "green"
    assert status.label.get("zh-CN") == "门店状态"
    assert [i.fields for i in account.indexes] == [("status",), ("shelf_count",)]
    flow = registry.pipelines["account_flow"]
    assert [s.key for s in flow.stages] == ["new", "talk", "won", "lost", "trial"]
    assert flow.stage("trial").order == 5
    assert flow.stage("trial").source.file == str(fmcg / "overlays/flow_more.json")
    assert flow.stage("talk").probability == 40
    assert flow.stage("talk").next_stages == ("trial", "lost")
    # The base package's own documents are unchanged in the merged registry's sources.
    assert account.field("phone").source.file == str(base / "entities/account.json")
    assert registry.document["entities"]["account"]["fields"][-1]["name"] == "shelf_count"


def test_overlay_issues_point_into_the_overlay(make_package) -> None:
    base = make_package("base", base_files())
    bad = variant(make_package, "bad", {"more": {
        "entity": "account",
        "add_fields": [{"name": "boss", "type": "reference", "label": L("Boss"),
                        "target": "persn"}],
    }})
    with pytest.raises(MetadataError) as raised:
        load_packages([base, bad])
    assert [(i.file, i.pointer) for i in raised.value.issues] == [
        (str(bad / "overlays/more.json"), "/add_fields/0/target")]


CONFLICTS = [
    ("field-exists", {"entity": "account", "add_fields": [
        {"name": "phone", "type": "text", "label": L("P")}]},
     "/add_fields/0/name", "already has a field 'phone'"),
    ("no-such-field", {"entity": "account", "fields": {"fax": {"label": L("Fax")}}},
     "/fields/fax", "has no field 'fax'"),
    ("option-exists", {"entity": "account", "fields": {"status": {"add_options": [
        {"value": "new", "label": L("N")}]}}},
     "/fields/status/add_options/0/value", "already has an option 'new'"),
    ("no-such-option", {"entity": "account", "fields": {"status": {"options": {
        "gone": {"label": L("G")}}}}},
     "/fields/status/options/gone", "has no option 'gone'"),
    ("options-on-text", {"entity": "account", "fields": {"name": {"add_options": [
        {"value": "x", "label": L("X")}]}}},
     "/fields/name/add_options", "which has no options"),
    ("no-such-entity", {"entity": "acount"}, "/entity", "no entity 'acount'"),
    ("no-such-stage", {"pipeline": "account_flow", "stages": {"closing": {"order": 9}}},
     "/stages/closing", "has no stage 'closing'"),
    ("stage-exists", {"pipeline": "account_flow", "add_stages": [
        {"key": "won", "label": L("W")}]},
     "/add_stages/0/key", "already has a stage 'won'"),
    ("bad-required-field", {"pipeline": "account_flow", "stages": {"won": {
        "required_fields": ["amount", "signed_on"]}}},
     "/stages/won/required_fields/1", "no field 'signed_on'"),
    ("schema-branch", {"entity": "account", "add_fields": [{"name": "x", "type": "select",
                                                            "label": L("X")}]},
     "/add_fields/0", "missing required property 'options'"),
    ("both-kinds", {"entity": "account", "pipeline": "account_flow"},
     "/pipeline", "unknown property 'pipeline'"),
]


@pytest.mark.parametrize(("case_id", "overlay", "pointer", "fragment"), CONFLICTS,
                         ids=[c[0] for c in CONFLICTS])
def test_overlay_conflicts(case_id: str, overlay: dict[str, Any], pointer: str, fragment: str,
                           make_package) -> None:
    base = make_package("base", base_files())
    var = variant(make_package, "var", {"change": overlay})
    issues = check_packages([base, var])
    assert [(i.file, i.pointer) for i in issues] == [(str(var / "overlays/change.json"), pointer)]
    assert fragment in issues[0].message


def test_two_unrelated_apps_adding_the_same_field(make_package) -> None:
    base = make_package("base", base_files())
    field = {"name": "region", "type": "text", "label": L("Region")}
    one = variant(make_package, "one", {"r": {"entity": "account", "add_fields": [field]}})
    two = variant(make_package, "two", {"r": {"entity": "account", "add_fields": [field]}})
    issues = check_packages([base, one, two])
    assert [(i.file, i.pointer) for i in issues] == [(str(two / "overlays/r.json"),
                                                      "/add_fields/0/name")]
    assert str(one / "overlays/r.json") in issues[0].message


def test_unrelated_apps_relabelling_the_same_option_conflict(make_package) -> None:
    base = make_package("base", base_files())
    change = {"entity": "account", "fields": {"status": {"options": {"new": {"label": L("A")}}}}}
    one = variant(make_package, "one", {"r": change})
    two = variant(make_package, "two", {"r": change})
    issues = check_packages([base, one, two])
    assert [(i.file, i.pointer) for i in issues] == [
        (str(two / "overlays/r.json"), "/fields/status/options/new/label")]
    assert "conflicts with app 'one'" in issues[0].message


def test_a_dependent_app_may_override_its_dependency(make_package) -> None:
    base = make_package("base", base_files())
    change = {"entity": "account", "label": L("Shop")}
    one = variant(make_package, "one", {"r": change})
    two = variant(make_package, "two", {"r": {"entity": "account", "label": L("Outlet")}},
                  depends_on=("base", "one"))
    registry = load_packages([base, one, two])
    assert registry.entity("account").label.get() == "Outlet"


def test_overlay_needs_a_dependency_on_the_target_app(make_package) -> None:
    base = make_package("base", base_files())
    var = variant(make_package, "var", {"r": {"entity": "account", "label": L("X")}},
                  depends_on=())
    issues = check_packages([base, var])
    assert [(i.pointer, i.message) for i in issues] == [
        ("/entity", ("entity 'account' belongs to app 'base', which app 'var' does not depend "
                    "on (add it to depends_on)"))]


def test_overlay_of_own_entity_is_refused(make_package) -> None:
    files = base_files()
    files["overlays/self.json"] = {"entity": "note", "label": L("Memo")}
    path = make_package("base", files)
    issues = check_packages([path])
    assert [(i.file, i.pointer) for i in issues] == [(str(path / "overlays/self.json"),
                                                      "/entity")]
    assert "declared by this app" in issues[0].message
