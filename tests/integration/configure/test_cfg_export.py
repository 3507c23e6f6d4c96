"""Export the customisations as an app package: `tidepool check` accepts it, and the base
apps plus the export give the live metadata back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.configure.changes import AddField, AddPipeline, EditField, SetRole, SetStage
from engine.configure.export import export_package
from engine.configure.specs import FieldSpec, GrantSpec, OptionSpec, StageSpec
from engine.errors import TidepoolError
from engine.metadata.check import run_check
from engine.metadata.loader import load_packages
from engine.storage.planner import plan_migration
from tests.integration.configure.conftest import CRM, Setup
from tests.integration.configure.test_cfg_service import FLOW, TICKET


def _content(document: object) -> dict[str, object]:
    """The registry document without the app manifests (the export is an app of its own)."""
    return {k: v for k, v in dict(document).items() if k != "apps"}  # type: ignore[call-overload]


def _configure(crm: Setup) -> None:
    label = {"en": "Shelves", "zh-CN": "货架数"}
    crm.service.apply(AddField("customer", FieldSpec(name="shelf_count", type="integer",
                                                     label=label)), crm.admin)
    grade = FieldSpec.from_document(next(
        f for f in crm.service.configured().document["entities"]["customer"]["fields"]
        if f["name"] == "grade"))
    crm.service.apply(EditField("customer", FieldSpec(**{**grade.__dict__, "options": (
        *grade.options, OptionSpec("S", {"en": "S", "zh-CN": "S类"}, color="red"))})),
        crm.admin)
    crm.service.apply(TICKET, crm.admin)
    crm.service.apply(AddPipeline(FLOW), crm.admin)
    crm.service.apply(SetStage("opportunity_sales", StageSpec(
        "trial", {"en": "Trial", "zh-CN": "试单"}, order=35)), crm.admin)
    rep = crm.applied().roles["rep"]
    crm.service.apply(SetRole("rep", label={"en": "Rep", "zh-CN": "销售"}, grants=tuple(
        GrantSpec(g.entity, g.actions, g.scope.value, g.hidden_fields, g.readonly_fields)
        for g in rep.grants) + (GrantSpec("ticket", ("read",), "own"),)), crm.admin)


def test_export_round_trip(crm: Setup, tmp_path: Path) -> None:
    _configure(crm)
    out = tmp_path / "site"

    written = export_package(crm.engine, apps=[CRM], out=out)

    manifest = json.loads((out / "app.json").read_text(encoding="utf-8"))
    assert written[0] == out / "app.json"
    assert manifest["depends_on"] == ["crm"]
    assert manifest["contributes"] == {
        "entities": ["ticket"], "overlays": ["entity_customer", "pipeline_opportunity_sales"],
        "pipelines": ["ticket_flow"], "roles": ["admin", "rep"]}
    report = io.StringIO()
    assert run_check([str(CRM), str(out)], report) == 0, report.getvalue()

    exported = load_packages([CRM, out])
    live = crm.applied()
    assert _content(exported.document) == _content(live.document)
    assert [a.name for a in exported.apps] == ["crm", "site"]
    with crm.engine.connect() as conn:
        plan = plan_migration(conn, applied=live, target=exported)
    # installing the export in place of the customisations changes no table
    assert plan.schema_steps == ()
    assert {(s.what, s.name) for s in plan.steps} == {("app", "custom"), ("app", "site")}  # type: ignore[attr-defined]


def test_export_refuses_a_folder_in_use(crm: Setup, tmp_path: Path) -> None:
    (tmp_path / "taken.txt").write_text("x", encoding="utf-8")
    with pytest.raises(TidepoolError, match="not an empty folder"):
        export_package(crm.engine, apps=[CRM], out=tmp_path)


def test_cli_export(crm: Setup, tmp_path: Path) -> None:
    crm.service.apply(TICKET, crm.admin)
    out = io.StringIO()
    code = main(["customisations", "export", "--db", crm.url, "--app", str(CRM),
                 "--out", str(tmp_path / "pkg")], out)
    assert code == 0, out.getvalue()
    assert "entities/ticket.json" in out.getvalue()
    assert run_check([str(CRM), str(tmp_path / "pkg")], io.StringIO()) == 0
    again = io.StringIO()
    assert main(["customisations", "export", "--db", crm.url, "--app", str(CRM),
                 "--out", str(tmp_path / "pkg")], again) == 1
    assert "not an empty folder" in again.getvalue()
