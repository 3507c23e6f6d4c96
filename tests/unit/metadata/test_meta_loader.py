"""Dependencies, customisations, all-issues-in-one-pass, and the check command."""

from __future__ import annotations

import io
import json

import pytest
from meta_packages import L, base_files

from engine.errors import MetadataError
from engine.metadata.check import run_check
from engine.metadata.loader import Customisation, check_packages, load_packages


def test_every_issue_of_a_broken_package_in_one_pass(make_package) -> None:
    files = base_files()
    files["entities/account.json"]["fields"][1]["type"] = "phon"            # schema
    files["entities/note.json"]["fields"][1]["target"] = "acount"            # cross-check
    files["entities/note.json"]["fields"].append(
        {"name": "select", "type": "text", "label": L("S")})                 # reserved word
    files["pipelines/account_flow.json"]["initial_stage"] = "start"          # missing stage
    files["pools/account_pool.json"]["limits"] = {"max_held": 0}             # schema minimum
    files["roles/rep.json"]["grants"][2]["hidden_fields"] = ["body"]         # missing field
    files["overlays/x.json"] = {"entity": "note"}                            # own entity
    path = make_package("base", files, manifest={"depends_on": ["crm_core"]})
    with pytest.raises(MetadataError) as raised:
        load_packages([path])
    found = {(i.file.removeprefix(str(path) + "/"), i.pointer) for i in raised.value.issues}
    assert found == {
        ("entities/account.json", "/fields/1/type"),
        ("entities/note.json", "/fields/1/target"),
        ("entities/note.json", "/fields/2/name"),
        ("pipelines/account_flow.json", "/initial_stage"),
        ("pools/account_pool.json", "/limits/max_held"),
        ("roles/rep.json", "/grants/2/hidden_fields/0"),
        ("overlays/x.json", "/entity"),
        ("app.json", "/depends_on/0"),
    }
    # A broken account is not also reported as missing by the pool, pipeline and role
    # naming it: one mistake, one issue.
    assert len(raised.value.issues) == len(found)
    assert str(raised.value).count("\n") == len(found) - 1


def test_dependency_cycle_and_missing_dependency(make_package) -> None:
    a = make_package("a", {}, manifest={"depends_on": ["b"]})
    b = make_package("b", {}, manifest={"depends_on": ["a", "zz"]})
    issues = check_packages([a, b])
    assert [(i.file, i.pointer, i.message) for i in issues] == [
        (str(a / "app.json"), "/depends_on/0", "dependency cycle: a -> b -> a"),
        (str(b / "app.json"), "/depends_on/0", "dependency cycle: b -> a -> b"),
        (str(b / "app.json"), "/depends_on/1",
         "depends on app 'zz', which is not loaded (pass its folder too)"),
    ]


def test_apps_load_in_dependency_order(make_package) -> None:
    base = make_package("base", base_files())
    c = make_package("c", {}, manifest={"depends_on": ["b"]})
    b = make_package("b", {}, manifest={"depends_on": ["base"]})
    registry = load_packages([c, b, base])
    assert [a.name for a in registry.apps] == ["base", "b", "c"]
    assert registry.apps[2].depends_on == ("b",)


def test_same_app_twice_and_same_entity_in_two_apps(make_package, tmp_path) -> None:
    base = make_package("base", base_files())
    other = make_package("other", {"entities/note.json": base_files()["entities/note.json"]},
                         manifest={"depends_on": ["base"]})
    issues = check_packages([base, other, base])
    assert [(i.file, i.pointer) for i in issues] == [
        (str(base / "app.json"), "/name"), (str(other / "entities/note.json"), "/name")]
    assert "already declared by app 'base'" in issues[1].message


def test_customisations_apply_after_all_packages(make_package) -> None:
    base = make_package("base", base_files())
    customs = [
        Customisation("overlay", "account_extra", {
            "entity": "account",
            "add_fields": [{"name": "vip", "type": "boolean", "label": L("VIP")}],
            "fields": {"status": {"add_options": [{"value": "lost", "label": L("Lost")}]}}}),
        Customisation("entity", "visit", {
            "name": "visit", "label": L("Visit", "拜访"), "title_field": "summary",
            "fields": [{"name": "summary", "type": "text", "label": L("Summary")},
                       {"name": "account", "type": "reference", "label": L("Account"),
                        "target": "account"}]}),
        Customisation("role", "rep", {
            "name": "rep", "label": L("Rep"),
            "grants": [{"entity": "visit", "actions": ["read"], "scope": "all"}]}),
    ]
    registry = load_packages([base], customisations=customs)
    assert registry.entity("account").field("vip").source.file == \
        "customisation:overlay/account_extra"
    assert registry.entity("account").field("status").option_values[-1] == "lost"
    assert registry.entity("visit").app == "custom"
    assert [g.entity for g in registry.roles["rep"].grants] == ["visit"]  # replaced
    custom_app = registry.apps[-1]
    assert (custom_app.name, custom_app.depends_on) == ("custom", ("base",))
    assert registry.document["apps"][-1]["contributes"] == {
        "entities": ["visit"], "overlays": ["account_extra"], "roles": ["rep"]}


CUSTOM_ERRORS = [
    (Customisation("entity", "note", {**base_files()["entities/note.json"]}),
     "customisation:entity/note", "/name", "store an overlay customisation"),
    (Customisation("overlay", "x", {"entity": "account", "add_fields": [
        {"name": "x", "type": "money", "label": L("X"), "options": []}]}),
     "customisation:overlay/x", "/add_fields/0/options", "not allowed on a field of type"),
    (Customisation("pool", "p2", {"name": "p3", "entity": "account", "label": L("P")}),
     "customisation:pool/p2", "/name", "does not match the file name 'p2'"),
    (Customisation("widget", "r", {}), "customisation:widget/r", "",
     "unknown customisation kind 'widget'"),
    (Customisation("overlay", "y", {"entity": "account", "fields": {"status": {"options": {
        "new": {"color": "mauve"}}}}}),
     "customisation:overlay/y", "/fields/status/options/new/color", "does not match"),
]


@pytest.mark.parametrize(("custom", "file", "pointer", "fragment"), CUSTOM_ERRORS,
                         ids=[c[0].file for c in CUSTOM_ERRORS])
def test_bad_customisations(custom: Customisation, file: str, pointer: str, fragment: str,
                            make_package) -> None:
    base = make_package("base", base_files())
    with pytest.raises(MetadataError) as raised:
        load_packages([base], customisations=[custom])
    assert [(i.file, i.pointer) for i in raised.value.issues] == [(file, pointer)]
    assert fragment in raised.value.issues[0].message


def test_run_check_prints_every_issue_and_fails(make_package) -> None:
    files = base_files()
    files["entities/note.json"]["title_field"] = "nope"
    files["roles/rep.json"]["grants"][0]["scope"] = "team"
    path = make_package("base", files)
    out = io.StringIO()
    assert run_check([str(path)], out) == 1
    lines = out.getvalue().splitlines()
    assert lines[:-1] == [
        f"{path}/entities/note.json:/title_field: no field 'nope'",
        (f"{path}/roles/rep.json:/grants/0/scope: 'team' is not one of: own, department, "
        "subtree, pool, shared, all"),
    ]
    assert lines[-1] == "2 issue(s) found"


def test_run_check_clean_and_usage(make_package) -> None:
    path = make_package("base", base_files())
    out = io.StringIO()
    assert run_check([str(path)], out) == 0
    assert out.getvalue() == "ok: 1 package(s) valid\n"
    assert run_check([], io.StringIO()) == 2


def test_schema_key_is_allowed_and_ignored(make_package) -> None:
    files = base_files()
    files["entities/note.json"]["$schema"] = "../../schemas/entity.schema.json"
    path = make_package("base", files)
    registry = load_packages([path])
    assert "$schema" not in json.dumps(dict(registry.document))
