"""Report, dashboard and leaderboard documents: schema and cross-checks with file+pointer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.metadata.loader import check_packages, load_packages
from engine.metadata.reports import ReportCatalog
from tests.conftest import REPO_ROOT

CRM = REPO_ROOT / "apps" / "crm"


def test_crm_reports_load_into_the_registry_document() -> None:
    registry = load_packages([CRM])
    catalog = ReportCatalog.from_document(registry.document)
    assert {"sales_funnel", "opportunity_pipeline", "rep_workload", "leads_by_channel",
            "win_loss", "loss_reasons", "funnel_by_team", "funnel_by_rep"} <= \
        set(catalog.reports)
    funnel = catalog.reports["sales_funnel"]
    assert funnel.app == "crm" and funnel.chart.type == "funnel"
    assert funnel.measure("won").entity == "opportunity"
    assert catalog.board_measure("won_amount") is not None
    assert set(catalog.dashboards) == {"rep_home", "supervisor_home", "manager_home"}


Change = Callable[[dict[str, Any]], None]

CASES: list[tuple[str, str, Change, str, str]] = [
    ("reports/opportunity_pipeline.json", "unknown entity",
     lambda d: d.update(entity="deal"), "/entity", "no entity 'deal'"),
    ("reports/opportunity_pipeline.json", "sum of text",
     lambda d: d["measures"][1].update(field="name"), "/measures/1/field", "is not a number"),
    ("reports/opportunity_pipeline.json", "unknown kind",
     lambda d: d["measures"][0].update(kind="median"), "/measures/0/kind", ""),
    ("reports/opportunity_pipeline.json", "stage on a plain entity",
     lambda d: d.update(entity="customer", measures=[d["measures"][0]]),
     "/dimensions/0/kind", "has no pipeline"),
    ("reports/leads_by_channel.json", "ratio of a missing measure",
     lambda d: d["measures"][2].update(numerator="nope"), "/measures/2/numerator",
     "no measure 'nope'"),
    ("reports/leads_by_channel.json", "bad filter value",
     lambda d: d["measures"][1]["filters"][0].update(value="sold"),
     "/measures/1/filters/0/value", "not one of the options"),
    ("reports/leads_by_channel.json", "unknown dimension field",
     lambda d: d["dimensions"][0].update(field="chanel"), "/dimensions/0/field",
     "did you mean 'channel'"),
    ("reports/funnel_by_rep.json", "field breakdown across entities",
     lambda d: d["dimensions"].__setitem__(0, {"name": "ch", "kind": "field",
                                                "field": "channel"}),
     "/dimensions/0/kind", "needs every measure on 'lead'"),
    ("reports/follow_ups_by_grade.json", "department with distinct count",
     lambda d: d["dimensions"].__setitem__(0, {"name": "t", "kind": "department",
                                                "level": 2}),
     "/dimensions/0/kind", "do not add up"),
    ("reports/rep_workload.json", "period on a text field",
     lambda d: d["period"].update(field="content"), "/period/field",
     "cannot place a record in time"),
    ("reports/win_loss.json", "sort by unknown measure",
     lambda d: d["sort"].update(by="nope"), "/sort/by", "no measure 'nope'"),
    ("dashboards/rep_home.json", "unknown report tile",
     lambda d: d["tiles"][3].update(report="nope"), "/tiles/3/report", "no report 'nope'"),
    ("dashboards/rep_home.json", "about to drop without a drop rule",
     lambda d: d["tiles"].append({"kind": "about_to_drop", "entity": "follow_up"}),
     "/tiles/5/entity", "has a drop rule"),
    ("dashboards/rep_home.json", "about to drop too far ahead",
     lambda d: d["tiles"].append({"kind": "about_to_drop", "entity": "customer",
                                  "days": 400}),
     "/tiles/5/days", ""),
    ("dashboards/rep_home.json", "unknown role",
     lambda d: d.update(roles=["clerk"]), "/roles/0", "no role 'clerk'"),
    ("leaderboards/sales.json", "range filter on a rollup",
     lambda d: d["measures"][0]["filters"].__setitem__(
         0, {"field": "probability", "op": "gt", "value": 50}),
     "/measures/0/filters/0/op", "takes only"),
    ("leaderboards/sales.json", "unknown entity",
     lambda d: d["measures"][1].update(entity="nope"), "/measures/1/entity", "no entity"),
]


@pytest.mark.parametrize(("rel", "what", "change", "pointer", "message"), CASES,
                         ids=[c[1] for c in CASES])
def test_bad_report_documents_are_reported_at_file_and_pointer(
        tmp_path: Path, rel: str, what: str, change: Change, pointer: str,
        message: str) -> None:
    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    path = app / rel
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    issues = check_packages([app])
    assert issues, what
    found = [i for i in issues if i.file == str(path) and i.pointer == pointer]
    assert found, [(i.file, i.pointer, i.message) for i in issues]
    assert any(message in i.message for i in found), [i.message for i in found]


def test_an_undeclared_report_file_is_reported(tmp_path: Path) -> None:
    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    shutil.copy(app / "reports" / "win_loss.json", app / "reports" / "extra.json")
    issues = check_packages([app])
    assert any("reports/extra.json is not declared" in i.message for i in issues)
