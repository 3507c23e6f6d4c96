"""Conversion documents: the CRM's loads; each mistake is reported at file and pointer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.errors import MetadataError
from engine.metadata.conversions import conversions_of
from engine.metadata.loader import Customisation, check_packages, load_packages
from tests.conftest import REPO_ROOT

CRM = REPO_ROOT / "apps" / "crm"
REL = "conversions/lead_to_customer.json"


def test_crm_conversion_loads_into_the_registry_document() -> None:
    conversion = conversions_of(load_packages([CRM]).document)["lead_to_customer"]
    assert conversion.app == "crm" and conversion.source == "lead"
    assert [t.name for t in conversion.targets] == ["customer", "contact", "opportunity"]
    assert conversion.mark.field == "status" and conversion.mark.value == "converted"
    assert conversion.main.back_reference == "source_lead" and conversion.main.attach_existing
    assert conversion.target("opportunity").optional
    assert dict(conversion.target("contact").links) == {"customer": "customer"}


Change = Callable[[dict[str, Any]], None]


def _target(i: int, **values: Any) -> Change:
    return lambda d: d["targets"][i].update(values)


CASES: list[tuple[str, Change, str, str]] = [
    ("unknown source", lambda d: d.update(source="leed"), "/source", "did you mean 'lead'"),
    ("mark field missing", lambda d: d["mark"].update(field="state"), "/mark/field",
     "no field 'state'"),
    ("mark field not a select", lambda d: d["mark"].update(field="region"), "/mark/field",
     "use a select field"),
    ("mark value not an option", lambda d: d["mark"].update(value="done"), "/mark/value",
     "not one of the options"),
    ("mark stage on a plain entity", lambda d: d.update(mark={"stage": "won"}), "/mark/stage",
     "has no pipeline"),
    ("unknown target entity", _target(1, entity="contacts"), "/targets/1/entity",
     "did you mean 'contact'"),
    ("duplicate target name", _target(2, name="contact"), "/targets/2/name",
     "duplicate target name"),
    ("main target optional", _target(0, optional=True), "/targets/0/optional",
     "cannot be optional"),
    ("unknown target field", lambda d: d["targets"][0]["mapping"].update(nmae="company_name"),
     "/targets/0/mapping/nmae", "did you mean 'name'"),
    ("unknown source field", lambda d: d["targets"][0]["mapping"].update(name="company"),
     "/targets/0/mapping/name", "no field of 'lead' 'company'"),
    ("text into a number", lambda d: d["targets"][0]["mapping"].update(employees="region"),
     "/targets/0/mapping/employees", "cannot copy 'region' (text) into 'employees' (integer)"),
    ("select options that do not fit",
     lambda d: d["targets"][0]["mapping"].update(industry="channel"),
     "/targets/0/mapping/industry", "are not options of 'industry'"),
    ("constant not an option", lambda d: d["targets"][2].update(constants={"loss_reason": "Z"}),
     "/targets/2/constants/loss_reason", "not one of the options"),
    ("constant of the wrong type", _target(1, constants={"is_primary": "yes"}),
     "/targets/1/constants/is_primary", "expected true or false"),
    ("field set twice", lambda d: d["targets"][1]["constants"].update(name="x"),
     "/targets/1/constants/name", "already set by mapping"),
    ("link to a later target", lambda d: d["targets"][0].update(links={"source_lead": "contact"}),
     "/targets/0/links/source_lead", "listed before it"),
    ("link through a field of another entity",
     lambda d: d["targets"][2]["links"].update(customer="contact"),
     "/targets/2/links/customer", "is not a reference to 'contact'"),
    ("required target linking to an optional one",
     lambda d: d["targets"].extend([
         {"name": "second", "entity": "customer", "optional": True,
          "mapping": {"name": "contact_name"}},
         {"name": "visit", "entity": "follow_up", "links": {"customer": "second"},
          "constants": {"kind": "visit"}}]),
     "/targets/4/links/customer", "a required target cannot link to it"),
    ("back reference to another entity", _target(1, back_reference="customer"),
     "/targets/1/back_reference", "already set by links"),
    ("back reference not to the source", _target(0, back_reference="website"),
     "/targets/0/back_reference", "is not a reference to the source 'lead'"),
    ("attach without unique keys", _target(1, attach_existing=True),
     "/targets/1/attach_existing", "has no unique key"),
    ("selected on a required target", _target(1, selected=False), "/targets/1/selected",
     "only an optional target"),
    ("record on source: unknown target",
     lambda d: d.update(record_on_source={"field": "region", "target": "nope"}),
     "/record_on_source/target", "no target 'nope'"),
    ("record on source: not a reference",
     lambda d: d.update(record_on_source={"field": "region", "target": "customer"}),
     "/record_on_source/field", "is not a reference to 'customer'"),
    ("record on source: optional target",
     lambda d: d.update(record_on_source={"field": "region", "target": "opportunity"}),
     "/record_on_source/target", "is optional"),
    ("schema: unknown key", lambda d: d.update(targetz=[]), "/targetz", "did you mean"),
    ("schema: mark with field and stage", lambda d: d["mark"].update(stage="won"),
     "/mark/field", ""),
]


@pytest.mark.parametrize(("what", "change", "pointer", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_conversions_are_reported_at_file_and_pointer(
        tmp_path: Path, what: str, change: Change, pointer: str, message: str) -> None:
    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    path = app / REL
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    issues = check_packages([app])
    assert issues, what
    found = [i for i in issues if i.file == str(path) and i.pointer == pointer]
    assert found, [(i.file, i.pointer, i.message) for i in issues]
    assert any(message in i.message for i in found), [i.message for i in found]


def test_an_undeclared_conversion_file_is_reported(tmp_path: Path) -> None:
    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    shutil.copy(app / REL, app / "conversions" / "extra.json")
    issues = check_packages([app])
    assert any("conversions/extra.json is not declared" in i.message for i in issues)


def test_a_customisation_replaces_a_conversion_whole() -> None:
    doc = json.loads((CRM / REL).read_text(encoding="utf-8"))
    doc.pop("$schema")
    doc["targets"][0]["mapping"]["website"] = "landing_url"
    registry = load_packages([CRM], customisations=[
        Customisation("conversion", "lead_to_customer", doc)])
    conversion = conversions_of(registry.document)["lead_to_customer"]
    assert ("website", "landing_url") in conversion.main.mapping
    assert conversion.app == "custom"
    doc["targets"][0]["mapping"]["website"] = "nope"
    with pytest.raises(MetadataError) as caught:
        load_packages([CRM], customisations=[Customisation("conversion", "lead_to_customer",
                                                           doc)])
    assert any(i.file == "customisation:conversion/lead_to_customer"
               and i.pointer == "/targets/0/mapping/website" for i in caught.value.issues)
