"""Field and entity changes on the CRM package: previewed, applied, refused — on both databases."""

from __future__ import annotations

import pytest

from engine.actor import Actor
from engine.configure.changes import AddField, EditEntity, EditField, RemoveField, ReorderFields
from engine.configure.specs import FieldSpec, OptionSpec
from engine.configure.workspace import ChangeRefused
from engine.errors import MigrationError
from engine.runtime import LiveRuntime
from engine.storage.plan import AddColumn, ArchiveField, ChangeField, ConvertColumn
from tests.integration.configure.conftest import Setup
from tests.integration.storage._db import columns, rows, snapshot

SHELVES = FieldSpec(name="shelf_count", type="integer",
                    label={"en": "Shelves", "zh-CN": "货架数"})


def test_add_field_previews_without_writing_then_applies_live(crm: Setup) -> None:
    live = LiveRuntime(crm.url, engine=crm.engine, check_interval=0)
    kept = crm.create("customer", {"name": "Acme"})
    before = snapshot(crm.engine)

    preview = crm.service.preview(AddField("customer", SHELVES))

    assert [type(s) for s in preview.plan.steps if s.touches_schema] == [AddColumn]
    assert "add field customer.shelf_count (column shelf_count)" in preview.plan.describe()
    assert preview.plan.problems == ()
    assert preview.registry.entity("customer").field("shelf_count").label.get("zh-CN") == "货架数"
    assert snapshot(crm.engine) == before  # a preview writes nothing

    plan = crm.service.apply(AddField("customer", SHELVES), crm.admin,
                             expected_version=preview.version)

    assert plan.target_fingerprint == preview.plan.target_fingerprint
    assert "shelf_count" in columns(crm.engine, "customer")
    version, customs, _ = crm.state()
    assert version == (preview.version or 0) + 1
    assert customs == [("overlay", "entity_customer", {
        "entity": "customer", "add_fields": [SHELVES.to_document()]})]
    runtime = live.current()  # no restart: the next request sees the field
    assert runtime.registry.entity("customer").has_field("shelf_count")
    record = runtime.records.get(Actor.system(), "customer", kept)
    assert (record["name"], record["shelf_count"]) == ("Acme", None)  # data kept
    assert runtime.records.create(Actor.system(), "customer",
                                  {"name": "New", "shelf_count": 4})["shelf_count"] == 4
    live.dispose()


def test_a_package_field_changes_labels_and_options_only(crm: Setup) -> None:
    grade = crm.applied().entity("customer").field("grade")
    spec = FieldSpec(
        name="grade", type="select", label={"en": "Tier", "zh-CN": "等级"},
        help={"en": "How much they buy"},
        options=(OptionSpec("C", {"en": "C", "zh-CN": "C类"}, color="gray", order=0),
                 OptionSpec("B", {"en": "B", "zh-CN": "B类"}, color="blue", order=1),
                 OptionSpec("A", {"en": "A - key", "zh-CN": "A类"}, color="orange", order=2),
                 OptionSpec("S", {"en": "S - strategic", "zh-CN": "S类"}, color="red", order=3)))
    assert [o.value for o in grade.options] == ["A", "B", "C"]

    plan = crm.service.apply(EditField("customer", spec), crm.admin)

    assert plan.schema_steps == ()  # labels and options are metadata only
    field = crm.applied().entity("customer").field("grade")
    assert field.label.get("en") == "Tier"
    assert [(o.value, o.color) for o in field.options] == [
        ("C", "gray"), ("B", "blue"), ("A", "orange"), ("S", "red")]
    assert field.option("A").label.get("en") == "A - key"
    _, customs, _ = crm.state()
    change = customs[0][2]["fields"]["grade"]
    assert change["add_options"][0]["value"] == "S"
    assert set(change["options"]) == {"A", "B", "C"}
    no_colour = FieldSpec(**{**spec.__dict__, "options": (
        OptionSpec("A", {"en": "A", "zh-CN": "A类"}), *spec.options[:2], spec.options[3])})
    with pytest.raises(ChangeRefused, match="colour of option 'A' .* can change but not go"):
        crm.service.preview(EditField("customer", no_colour))
    without_b = FieldSpec(**{**spec.__dict__, "options": spec.options[::2]})
    with pytest.raises(ChangeRefused, match="option 'B' .* cannot be removed"):
        crm.service.preview(EditField("customer", without_b))


@pytest.mark.parametrize("edit, key", [
    ({"type": "long_text"}, "type"),
    ({"required": True}, "required"),
    ({"unique": True}, "unique"),
])
def test_a_package_field_keeps_its_definition(crm: Setup, edit: dict[str, object],
                                              key: str) -> None:
    current = FieldSpec.from_document(
        crm.service.configured().document["entities"]["customer"]["fields"][1])
    assert current.name == "licence_no"
    spec = FieldSpec(**{**current.__dict__, **edit})
    before = snapshot(crm.engine)
    with pytest.raises(ChangeRefused) as refused:
        crm.service.preview(EditField("customer", spec))
    assert list(refused.value.field_errors) == [key]
    assert "comes from app 'crm'" in refused.value.field_errors[key]
    with pytest.raises(ChangeRefused):
        crm.service.apply(EditField("customer", spec), crm.admin)
    assert snapshot(crm.engine) == before


def test_package_fields_cannot_be_removed_or_reordered(crm: Setup) -> None:
    before = crm.state()
    with pytest.raises(ChangeRefused, match="cannot be removed"):
        crm.service.apply(RemoveField("customer", "notes"), crm.admin)
    names = [f.name for f in crm.applied().entity("customer").fields]
    with pytest.raises(ChangeRefused) as refused:
        crm.service.apply(ReorderFields("customer", tuple(reversed(names))), crm.admin)
    assert "keep their order" in refused.value.field_errors["fields"]
    assert crm.state() == before


def test_an_added_field_is_fully_editable_and_a_lossy_change_is_blocked(crm: Setup) -> None:
    code = FieldSpec(name="shop_code", type="text", label={"en": "Shop", "zh-CN": "门店编号"})
    crm.service.apply(AddField("customer", code), crm.admin)
    crm.create("customer", {"name": "A", "shop_code": "12"})
    crm.create("customer", {"name": "B", "shop_code": "x9"})
    crm.create("customer", {"name": "C", "shop_code": "x10"})
    as_integer = FieldSpec(name="shop_code", type="integer", label=code.label, required=True)

    preview = crm.service.preview(EditField("customer", as_integer))

    assert preview.plan.problems == (
        "customer.shop_code: 2 rows cannot convert from text(255) to bigint",)
    assert "BLOCKED by 1 problem" in preview.plan.describe()
    before = snapshot(crm.engine)
    state = crm.state()
    with pytest.raises(MigrationError, match="2 rows cannot convert"):
        crm.service.apply(EditField("customer", as_integer), crm.admin)
    assert snapshot(crm.engine) == before and crm.state() == state  # nothing half-applied

    crm.service.apply(EditField("customer", FieldSpec(
        name="shop_code", type="text", label=code.label, required=True, unique=True,
        extra={"max_length": 500})), crm.admin)
    assert crm.applied().entity("customer").field("shop_code").required
    assert rows(crm.engine, "customer", "shop_code") == [("12",), ("x9",), ("x10",)]


def test_remove_and_reorder_added_fields_keeps_the_data(crm: Setup) -> None:
    for name in ("aisle", "bay"):
        crm.service.apply(AddField("customer", FieldSpec(
            name=name, type="text", label={"en": name, "zh-CN": name})), crm.admin)
    crm.create("customer", {"name": "A", "aisle": "7"})
    names = [f.name for f in crm.applied().entity("customer").fields]
    assert names[-2:] == ["aisle", "bay"]

    crm.service.apply(ReorderFields("customer", (*names[:-2], "bay", "aisle")), crm.admin)
    assert [f.name for f in crm.applied().entity("customer").fields][-2:] == ["bay", "aisle"]

    preview = crm.service.preview(RemoveField("customer", "aisle"))
    archive = [s for s in preview.plan.steps if isinstance(s, ArchiveField)]
    assert len(archive) == 1 and archive[0].rows == 1
    assert "(1 rows with a value kept)" in preview.plan.describe()
    crm.service.apply(RemoveField("customer", "aisle"), crm.admin)
    assert not crm.applied().entity("customer").has_field("aisle")
    archived = [c for c in columns(crm.engine, "customer") if c.startswith("_archived")
                or "aisle" in c]
    assert archived and "aisle" not in columns(crm.engine, "customer")
    assert rows(crm.engine, "customer", archived[0]) == [("7",)]


def test_entity_labels_change_but_a_package_entity_keeps_its_features(crm: Setup) -> None:
    label = {"en": "Account", "zh-CN": "客户账户"}
    plan = crm.service.apply(EditEntity("customer", label=label, plural_label=label), crm.admin)
    assert plan.schema_steps == ()
    assert crm.applied().entity("customer").label.get("en") == "Account"
    with pytest.raises(ChangeRefused) as refused:
        crm.service.preview(EditEntity("customer", label=label, features=("owned",)))
    assert list(refused.value.field_errors) == ["features"]


@pytest.mark.parametrize("spec, key, pointer, message", [
    (FieldSpec(name="vip_level", type="select", label={"en": "VIP", "zh-CN": "等级"}),
     "", "/add_fields/0", "options"),
    (FieldSpec(name="vip_level", type="text", label={"en": "VIP"}),
     "label", "/add_fields/0/label", "zh-CN"),
    (FieldSpec(name="Bad Name", type="text", label={"en": "x", "zh-CN": "x"}),
     "name", "/add_fields/0/name", "not a valid name"),
    (FieldSpec(name="vip_level", type="text", label={"en": "x", "zh-CN": "x"},
               default=3),
     "default", "/add_fields/0/default", ""),
    (FieldSpec(name="owner_id", type="text", label={"en": "x", "zh-CN": "x"}),
     "name", "/add_fields/0/name", "system column"),
])
def test_bad_fields_are_refused_with_pointers_and_nothing_is_written(
        crm: Setup, spec: FieldSpec, key: str, pointer: str, message: str) -> None:
    before = snapshot(crm.engine)
    for attempt in (crm.service.preview, lambda c: crm.service.apply(c, crm.admin)):
        with pytest.raises(ChangeRefused) as refused:
            attempt(AddField("customer", spec))
        assert key in refused.value.field_errors, refused.value.field_errors
        assert message in refused.value.field_errors[key]
        assert ("customisation:overlay/entity_customer", pointer) in [
            (i.file, i.pointer) for i in refused.value.issues]
    assert snapshot(crm.engine) == before  # no customisation row, no DDL, no version


def test_duplicate_and_unknown_names_are_refused(crm: Setup) -> None:
    with pytest.raises(ChangeRefused, match="already has a field 'phone'"):
        crm.service.preview(AddField("customer", FieldSpec(
            name="phone", type="text", label={"en": "x", "zh-CN": "x"})))
    with pytest.raises(ChangeRefused, match="no entity 'nope'"):
        crm.service.preview(AddField("nope", SHELVES))
    with pytest.raises(ChangeRefused, match="no field 'nope'"):
        crm.service.preview(EditField("customer", FieldSpec(
            name="nope", type="text", label={"en": "x", "zh-CN": "x"})))


def test_a_change_that_changes_nothing_is_refused(crm: Setup) -> None:
    current = FieldSpec.from_document(
        crm.service.configured().document["entities"]["customer"]["fields"][0])
    with pytest.raises(ChangeRefused, match="changes nothing"):
        crm.service.preview(EditField("customer", current))


def test_required_on_an_added_field_is_metadata_only(crm: Setup) -> None:
    crm.service.apply(AddField("customer", SHELVES), crm.admin)
    preview = crm.service.preview(EditField("customer", FieldSpec(
        **{**SHELVES.__dict__, "required": True})))
    assert [type(s) for s in preview.plan.steps] == [ChangeField]
    assert not any(isinstance(s, ConvertColumn) for s in preview.plan.steps)
