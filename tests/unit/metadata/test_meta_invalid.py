"""Table of invalid metadata: each mistake is reported once, at its file and pointer.

Every case starts from the valid fixture app, breaks one thing, and expects
exactly one issue naming the file, the JSON pointer and a recognisable message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from meta_packages import L, base_files

from engine.metadata.loader import check_packages

Files = dict[str, Any]
ACC = "entities/account.json"
NOTE = "entities/note.json"
FLOW = "pipelines/account_flow.json"
POOL = "pools/account_pool.json"
ROLE = "roles/rep.json"


@dataclass(frozen=True)
class Case:
    id: str
    change: Callable[[Files], None]
    file: str
    pointer: str
    fragment: str


def fld(files: Files, rel: str, index: int) -> dict[str, Any]:
    return files[rel]["fields"][index]


def add_field(rel: str, **field: Any) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        files[rel]["fields"].append({"label": L("X"), **field})
    return change


def setter(rel: str, *path: Any, value: Any) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        node = files[rel]
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return change


def deleter(rel: str, *path: Any) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        node = files[rel]
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
    return change


RENEW = "pipelines/account_renewal.json"


def second_pipeline(name: str = "account_renewal", *, selector: Any = None,
                    first_key: str = "renew", then: Callable[[Files], None] | None = None
                    ) -> Callable[[Files], None]:
    """A second pipeline of account: records whose status is active, unless told otherwise."""
    def change(files: Files) -> None:
        doc: dict[str, Any] = {
            "name": name, "entity": "account", "label": L("Renewal"),
            "stages": [{"key": first_key, "label": L("Renew"), "order": 1},
                       {"key": f"{name}_done", "label": L("Done"), "order": 2, "kind": "won"}]}
        if selector is not False:
            doc["selector"] = selector or {"field": "status", "values": ["active"]}
        files[f"pipelines/{name}.json"] = doc
        if then is not None:
            then(files)
    return change


def rename_note(files: Files, name: str) -> None:
    """Rename the note entity (and drop the grant that names it)."""
    files[f"entities/{name}.json"] = {**files.pop(NOTE), "name": name}
    del files[ROLE]["grants"][2]


CASES = [
    # --- schema: shape of documents -----------------------------------------------------
    Case("unknown-entity-key", setter(ACC, "title_fild", value="name"),
         ACC, "/title_fild", "did you mean 'title_field'"),
    Case("missing-title-field", deleter(ACC, "title_field"),
         ACC, "", "missing required property 'title_field'"),
    Case("label-missing-zh", setter(ACC, "label", value={"en": "Account"}),
         ACC, "/label", "missing required property 'zh-CN'"),
    Case("bad-entity-name", setter(NOTE, "name", value="Note"),
         NOTE, "/name", "is not a valid name"),
    Case("unknown-field-type", add_field(ACC, name="x", type="strin"),
         ACC, "/fields/6/type", "is not one of: text, long_text"),
    Case("options-on-text", add_field(ACC, name="x", type="text",
                                      options=[{"value": "a", "label": L("A")}]),
         ACC, "/fields/6/options", "'options' is not allowed on a field of type 'text'"),
    Case("select-without-options", add_field(ACC, name="x", type="select"),
         ACC, "/fields/6", "missing required property 'options' on a field of type 'select'"),
    Case("reference-without-target", add_field(ACC, name="x", type="reference"),
         ACC, "/fields/6", "missing required property 'target'"),
    Case("currency-on-decimal", add_field(ACC, name="x", type="decimal", currency="CNY"),
         ACC, "/fields/6/currency", "not allowed on a field of type 'decimal'"),
    Case("bad-currency", add_field(ACC, name="x", type="money", currency="yuan"),
         ACC, "/fields/6/currency", "does not match"),
    Case("auto-number-without-format", add_field(ACC, name="x", type="auto_number"),
         ACC, "/fields/6", "missing required property 'format'"),
    Case("default-wrong-type", add_field(ACC, name="x", type="integer", default="ten"),
         ACC, "/fields/6/default", "expected an integer"),
    Case("default-on-reference", add_field(ACC, name="x", type="reference", target="note",
                                           default=1),
         ACC, "/fields/6/default", "'default' is not allowed"),
    Case("bad-feature", setter(NOTE, "features", value=["owned", "archived"]),
         NOTE, "/features/1", "is not one of"),
    Case("probability-over-100", setter(FLOW, "stages", 1, "probability", value=120),
         FLOW, "/stages/1/probability", "maximum of 100"),
    Case("probability-field-unknown", setter(FLOW, "probability_field", value="chance"),
         FLOW, "/probability_field", "chance"),
    Case("bad-stage-kind", setter(FLOW, "stages", 2, "kind", value="closed"),
         FLOW, "/stages/2/kind", "is not one of"),
    Case("rule-without-after", deleter(POOL, "rules", 0, "after"),
         POOL, "/rules/0", "missing required property 'after' on a rule of kind"),
    Case("distribution-target-role", setter(POOL, "distribution", "targets", "new",
                                            value={"role": "rep"}),
         POOL, "/distribution/targets/new/role", "allowed: department, user"),
    Case("bad-scope", setter(ROLE, "grants", 0, "scope", value="team"),
         ROLE, "/grants/0/scope", "is not one of"),
    Case("bad-action", setter(ROLE, "grants", 0, "actions", value=["read", "destroy"]),
         ROLE, "/grants/0/actions/1", "is not one of"),
    Case("name-differs-from-file", setter(NOTE, "name", value="memo"),
         NOTE, "/name", "does not match the file name 'note'"),
    Case("invalid-json", lambda files: files.__setitem__(NOTE, '{"name": "note",'),
         NOTE, "", "invalid JSON"),
    Case("duplicate-json-key",
         lambda files: files.__setitem__(NOTE, '{"name": "note", "name": "note", '
                                               '"label": {"en": "N", "zh-CN": "N"}, '
                                               '"title_field": "t", "fields": [{"name": "t", '
                                               '"type": "text", "label": {"en": "T", '
                                               '"zh-CN": "T"}}]}'),
         NOTE, "", "appears twice"),
    # --- cross-checks: names ------------------------------------------------------------
    Case("reserved-field-name", add_field(ACC, name="order", type="text"),
         ACC, "/fields/6/name", "reserved SQL word"),
    Case("system-column-field", add_field(ACC, name="owner_id", type="integer"),
         ACC, "/fields/6/name", "system column"),
    Case("duplicate-field", add_field(ACC, name="phone", type="text"),
         ACC, "/fields/6/name", "is already the field at"),
    Case("money-companion-clash", add_field(ACC, name="amount_currency", type="text"),
         ACC, "/fields/3/name", "adds column 'amount_currency'"),
    Case("geo-companion-clash", add_field(ACC, name="location_lng", type="decimal"),
         ACC, "/fields/4/name", "adds column 'location_lng'"),
    Case("reserved-entity-name", lambda files: rename_note(files, "select"),
         "entities/select.json", "/name", "reserved SQL word"),
    Case("tp-prefix-entity", lambda files: rename_note(files, "tp_note"),
         "entities/tp_note.json", "/name", "may not start with 'tp_'"),
    # --- cross-checks: fields -----------------------------------------------------------
    Case("reference-target-missing", setter(NOTE, "fields", 1, "target", value="acount"),
         NOTE, "/fields/1/target", "no entity 'acount'; did you mean 'account'"),
    Case("title-field-missing", setter(ACC, "title_field", value="title"),
         ACC, "/title_field", "no field 'title'"),
    Case("title-field-not-text", setter(ACC, "title_field", value="location"),
         ACC, "/title_field", "cannot be the title"),
    Case("search-field-missing", setter(ACC, "search_fields", value=["name", "mobile"]),
         ACC, "/search_fields/1", "no field 'mobile'"),
    Case("duplicate-option", add_field(ACC, name="x", type="select", options=[
        {"value": "a", "label": L("A")}, {"value": "a", "label": L("A2")}]),
         ACC, "/fields/6/options/1/value", "duplicate option value 'a'"),
    Case("default-not-an-option", setter(ACC, "fields", 2, "default", value="closed"),
         ACC, "/fields/2/default", "not one of the options"),
    Case("min-above-max", add_field(ACC, name="x", type="integer", min=10, max=1),
         ACC, "/fields/6/min", "greater than max"),
    Case("bad-pattern", add_field(ACC, name="x", type="text", pattern="([a-z"),
         ACC, "/fields/6/pattern", "invalid regular expression"),
    Case("pattern-message-without-pattern", add_field(
        ACC, name="x", type="text", pattern_message={"en": "Use digits"}),
         ACC, "/fields/6/pattern_message", "needs a pattern"),
    Case("key-column-clash", add_field(ACC, name="x__key", type="text"),
         ACC, "/fields/6/name", "may not contain '__'"),
    Case("unique-on-long-text", add_field(ACC, name="x", type="long_text", unique=True),
         ACC, "/fields/6/unique", "cannot be unique"),
    Case("required-set-null", add_field(NOTE, name="owner_ref", type="reference",
                                        target="account", required=True, on_delete="set_null"),
         NOTE, "/fields/2/on_delete", "a required field cannot be cleared"),
    Case("auto-number-without-seq", setter(ACC, "fields", 5, "format", value="A-{YYYY}"),
         ACC, "/fields/5/format", "exactly one {seq}"),
    Case("auto-number-unknown-token", setter(ACC, "fields", 5, "format", value="{seq}-{Q}"),
         ACC, "/fields/5/format", "unknown placeholder {Q}"),
    Case("default-date-not-real", add_field(ACC, name="x", type="date", default="2024-02-30"),
         ACC, "/fields/6/default", "not a real date"),
    # --- cross-checks: keys and indexes -------------------------------------------------
    Case("unique-key-missing-field", setter(ACC, "unique_keys", 0, "fields", value=["mobile"]),
         ACC, "/unique_keys/0/fields/0", "no field 'mobile'"),
    Case("unique-key-bad-type", setter(ACC, "unique_keys", 0, "fields", value=["location"]),
         ACC, "/unique_keys/0/fields/0", "cannot be part of a unique key"),
    Case("duplicate-unique-key-name", setter(ACC, "unique_keys", value=[
        {"name": "k", "fields": ["phone"]}, {"name": "k", "fields": ["name"]}]),
         ACC, "/unique_keys/1/name", "duplicate unique key name 'k'"),
    Case("index-missing-field", setter(ACC, "indexes", 0, "fields", value=["stauts"]),
         ACC, "/indexes/0/fields/0", "no field 'stauts'"),
    Case("index-name-clash-with-automatic",
         setter(NOTE, "indexes", value=[{"fields": ["account"]}]),
         NOTE, "/indexes/0", "index name 'ix_note_account' is already used"),
    # --- cross-checks: features, pipelines, pools, roles --------------------------------
    Case("pooled-without-owned", setter(NOTE, "features", value=["pooled"]),
         NOTE, "/features", "needs 'owned'"),
    Case("pipelined-without-pipeline", setter(NOTE, "features", value=["owned", "pipelined"]),
         NOTE, "/features", "no pipeline drives it"),
    Case("pipeline-entity-not-pipelined",
         setter(ACC, "features", value=["owned", "pooled", "activity"]),
         FLOW, "/entity", "lacks the 'pipelined' feature"),
    Case("second-default-pipeline", second_pipeline(selector=False),
         RENEW, "/entity", "already has the default pipeline 'account_flow'"),
    Case("selector-field-missing", second_pipeline(selector={"field": "line",
                                                             "values": ["x"]}),
         RENEW, "/selector/field", "no field 'line'"),
    Case("selector-field-not-select", second_pipeline(selector={"field": "name",
                                                                "values": ["x"]}),
         RENEW, "/selector/field", "must be a select"),
    Case("selector-value-not-option", second_pipeline(selector={"field": "status",
                                                                "values": ["gone"]}),
         RENEW, "/selector/values/0", "no option of 'status' 'gone'"),
    Case("selector-values-overlap", second_pipeline(then=second_pipeline(
        "account_zeta", first_key="z", selector={"field": "status", "values": ["active"]})),
         "pipelines/account_zeta.json", "/selector/values/0",
         "value 'active' already selects pipeline 'account_renewal'"),
    Case("selector-fields-differ", second_pipeline(then=lambda files: (
        add_field(ACC, name="line", type="select", options=[{"value": "a", "label": L("A")}])(
            files),
        second_pipeline("account_zeta", first_key="z",
                        selector={"field": "line", "values": ["a"]})(files))),
         "pipelines/account_zeta.json", "/selector/field", "select by one field"),
    Case("stage-key-of-another-pipeline", second_pipeline(first_key="talk"),
         RENEW, "/stages/0/key", "already a stage of pipeline 'account_flow'"),
    Case("duplicate-stage-key", lambda files: files[FLOW]["stages"].append(
        {"key": "talk", "label": L("Again"), "order": 9}),
         FLOW, "/stages/4/key", "duplicate stage key 'talk'"),
    Case("probability-field-missing", setter(FLOW, "probability_field", value="odds"),
         FLOW, "/probability_field", "no field 'odds'"),
    Case("probability-field-not-a-number", setter(FLOW, "probability_field", value="name"),
         FLOW, "/probability_field", "must be percent, decimal or integer"),
    Case("initial-stage-missing", setter(FLOW, "initial_stage", value="start"),
         FLOW, "/initial_stage", "no stage 'start'"),
    Case("initial-stage-closed", setter(FLOW, "initial_stage", value="won"),
         FLOW, "/initial_stage", "must be open"),
    Case("next-stage-missing", setter(FLOW, "stages", 0, "next_stages", value=["talk", "lose"]),
         FLOW, "/stages/0/next_stages/1", "no stage 'lose'; did you mean 'lost'"),
    Case("required-field-missing", setter(FLOW, "stages", 1, "required_fields",
                                          value=["amout"]),
         FLOW, "/stages/1/required_fields/0", "no field 'amout'"),
    Case("duplicate-stage-order", setter(FLOW, "stages", 3, "order", value=3),
         FLOW, "/stages/3/order", "order 3 is already used by stage 'won'"),
    Case("pool-entity-not-pooled", setter(POOL, "entity", value="note"),
         POOL, "/entity", "lacks the 'pooled' feature"),
    Case("pool-member-role-missing", setter(POOL, "members", "roles", value=["rep", "boss"]),
         POOL, "/members/roles/1", "no role 'boss'"),
    Case("pool-exempt-bad-option", setter(POOL, "rules", 0, "exempt", "value", value="x"),
         POOL, "/rules/0/exempt/value", "'x' is not one of the options"),
    Case("pool-exempt-unknown-field",
         setter(POOL, "rules", 0, "exempt", value={"any": [{"field": "nope", "op": "is_empty"}]}),
         POOL, "/rules/0/exempt/any/0/field", "unknown field 'nope'"),
    Case("pool-when-bad-op", setter(POOL, "rules", 0, "when",
                                    value={"field": "status", "op": "contains", "value": "a"}),
         POOL, "/rules/0/when/op", "operator 'contains' does not apply"),
    Case("pool-warn-after-fire", setter(POOL, "rules", 0, "warn_before_hours", value=80),
         POOL, "/rules/0/warn_before_hours", "less than the shortest duration"),
    Case("pool-per-value-not-option",
         setter(POOL, "rules", 0, "after", value={"hours": 72, "per_value": {
             "field": "status", "values": {"zzz": 50}}}),
         POOL, "/rules/0/after/per_value/values/zzz", "has no option 'zzz'"),
    Case("pool-rule-role-missing", setter(POOL, "rules", 0, "action", value="assign_to_role"),
         POOL, "/rules/0", "missing required property 'role'"),
    Case("pool-touch-not-reference", setter(POOL, "touch", value=[{"entity": "note",
                                                                   "field": "title"}]),
         POOL, "/touch/0/field", "must be a reference to 'account'"),
    Case("pool-limit-bad-time-zone", setter(POOL, "limits", value={"time_zone": "Mars/Base"}),
         POOL, "/limits/time_zone", "unknown time zone 'Mars/Base'"),
    Case("pool-held-excludes-field-missing",
         setter(POOL, "limits", value={"held_excludes": [{"field": "statsu", "op": "eq",
                                                          "value": "x"}]}),
         POOL, "/limits/held_excludes/0/field", "no field 'statsu'"),
    Case("pool-held-excludes-bad-value",
         setter(POOL, "limits", value={"held_excludes": [{"field": "status", "op": "eq",
                                                          "value": "nope"}]}),
         POOL, "/limits/held_excludes/0/value", "status:"),
    Case("distribution-field-not-select", setter(POOL, "distribution", "field", value="name"),
         POOL, "/distribution/field", "needs a select field"),
    Case("distribution-target-not-option",
         setter(POOL, "distribution", "targets", value={"closed": {"department": "t1"}}),
         POOL, "/distribution/targets/closed", "has no option 'closed'"),
    Case("grant-entity-missing", setter(ROLE, "grants", 2, "entity", value="notes"),
         ROLE, "/grants/2/entity", "no entity 'notes'; did you mean 'note'"),
    Case("grant-hidden-field-missing", setter(ROLE, "grants", 2, "hidden_fields",
                                              value=["body"]),
         ROLE, "/grants/2/hidden_fields/0", "no field 'body'"),
    Case("grant-pool-scope-unpooled", setter(ROLE, "grants", 2, "scope", value="pool"),
         ROLE, "/grants/2/scope", "needs a pooled entity"),
    Case("grant-claim-unpooled", setter(ROLE, "grants", 2, "actions", value=["read", "claim"]),
         ROLE, "/grants/2/actions/1", "'claim' needs a pooled entity"),
    Case("duplicate-grant-scope", setter(ROLE, "grants", 1, "scope", value="own"),
         ROLE, "/grants/1/scope", "already has a grant with scope 'own'"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_metadata(case: Case, make_package) -> None:
    files = base_files()
    case.change(files)
    path = make_package("base", files)
    issues = check_packages([path])
    expected = str(path / case.file)
    found = [i for i in issues if i.file == expected and i.pointer == case.pointer]
    assert found, f"no issue at {case.file}:{case.pointer}; got:\n" + \
        "\n".join(map(str, issues))
    assert any(case.fragment in i.message for i in found), [i.message for i in found]
    assert len(issues) == 1, "\n".join(map(str, issues))


MANIFEST_CASES = [
    ("bad-version", {"version": "1.0"}, "/version", "does not match"),
    ("unknown-manifest-key", {"depends": ["x"]}, "/depends", "did you mean 'depends_on'"),
    ("declared-without-file", {"contributes": {"entities": ["note", "ghost"]}},
     "/contributes/entities/1", "entities/ghost.json does not exist"),
    ("reserved-app-name", {"name": "custom"}, "/name", "reserved"),
]


@pytest.mark.parametrize(("case_id", "manifest", "pointer", "fragment"), MANIFEST_CASES,
                         ids=[c[0] for c in MANIFEST_CASES])
def test_invalid_manifest(case_id: str, manifest: dict[str, Any], pointer: str, fragment: str,
                          make_package) -> None:
    files = {NOTE: {"name": "note", "label": L("Note"), "title_field": "title",
                    "fields": [{"name": "title", "type": "text", "label": L("Title")}]}}
    path = make_package("base", files, manifest=manifest)
    issues = check_packages([path])
    app_json = str(path / "app.json")
    assert [(i.file, i.pointer) for i in issues] == [(app_json, pointer)], issues
    assert fragment in issues[0].message


def test_undeclared_file_is_reported_at_the_file(make_package) -> None:
    files = base_files()
    path = make_package("base", files, manifest={"contributes": {
        "entities": ["account"], "pipelines": ["account_flow"], "pools": ["account_pool"],
        "roles": ["rep"]}})
    issues = check_packages([path])
    assert [(i.file, i.pointer) for i in issues] == [(str(path / NOTE), "")]
    assert "not declared in app.json" in issues[0].message


def test_missing_manifest(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    issues = check_packages([tmp_path / "empty"])
    assert [(i.file, i.message) for i in issues] == [
        (str(tmp_path / "empty" / "app.json"), "missing app manifest app.json")]


def test_several_pipelines_with_selectors_are_valid(make_package) -> None:
    files = base_files()
    second_pipeline()(files)
    assert check_packages([make_package("base", files)]) == []
