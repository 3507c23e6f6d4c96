"""Admin: a second pipeline of an entity with a selector, through the forms; conflicting
selectors refused on the form (translated), a plan that strands records refused."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from engine.actor import Actor
from engine.storage.applied import applied_version
from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]

BUSINESS_LINE = {"type": "select", "label_en": "Business line", "label_zh": "业务类型",
                 "opt_value": ["new_business", "renewal", "partner", "channel"],
                 "opt_en": ["New business", "Renewal", "Partner", "Channel"],
                 "opt_zh": ["新业务", "续约", "伙伴", "渠道"], "opt_color": ["blue", "green", "", ""],
                 "opt_order": ["", "", "", ""], "default": "new_business", "confirm": "1",
                 "help_en": "Decides the pipeline.", "help_zh": "决定销售流程。"}


def _pipeline(name: str, keys: list[str], **selector: str | list[str]) -> dict[str, object]:
    return {"entity": "opportunity", "name": name, "label_en": "Partners", "label_zh": "伙伴",
            "st_key": keys, "st_en": keys, "st_zh": keys, "st_kind": ["open", "won"][:len(keys)],
            "st_probability": ["20", ""][:len(keys)], **selector}


def _version(db: DemoDB) -> int | None:
    with db.live.engine.connect() as conn:
        return applied_version(conn)


def test_a_second_pipeline_with_a_selector_drives_its_business_line(
        client_for: Client, demo_db: DemoDB) -> None:
    client = client_for("admin")
    token = csrf(client)
    added = client.post("/admin/entities/opportunity/fields/business_line",
                        data={**BUSINESS_LINE, "csrf_token": token}, follow_redirects=False)
    assert added.status_code == 303, added.text[:2000]
    page = client.get("/admin/pipelines/new?entity=opportunity").text
    assert 'name="sel_business_line" value="partner"' in page
    assert "taken by opportunity_renewal" in page
    form = {**_pipeline("opportunity_partner", ["partner_intro", "partner_won"],
                        selector_field="business_line",
                        sel_business_line=["partner", "channel"]), "csrf_token": token}

    preview = client.post("/admin/pipelines/new", data=form)
    assert preview.status_code == 200, preview.text[:2000]
    assert "Apply the change" in preview.text
    version = re.search(r'name="version" value="(\d+)"', preview.text)
    assert version
    done = client.post("/admin/pipelines/new",
                       data={**form, "confirm": "1", "version": version.group(1)},
                       follow_redirects=False)

    assert done.status_code == 303, done.text[:2000]
    pipeline = demo_db.live.current().registry.pipelines["opportunity_partner"]
    assert pipeline.selector is not None and pipeline.selector.values == ("partner", "channel")
    customer = make_record(demo_db, "customer", {"name": "Selector shop"}, owner="rep_east1")
    deal = make_record(demo_db, "opportunity", {"name": "Via a partner", "customer": customer,
                                                "business_line": "partner"}, owner="rep_east1")
    record = demo_db.live.current().records.get(Actor.system("test"), "opportunity", deal)
    assert record.get("stage") == "partner_intro"
    board = client.get("/e/opportunity/kanban?pipeline=opportunity_partner")
    assert board.status_code == 200 and "Via a partner" in board.text
    edit = client.get("/admin/pipelines/opportunity_partner").text
    assert 'name="sel_business_line" value="channel" checked' in edit

    # Taking "channel" only would leave the partner deal in a stage its pipeline lacks.
    stranded = {"csrf_token": token, "selector_field": "business_line",
                "sel_business_line": ["channel"]}
    blocked = client.post("/admin/pipelines/opportunity_partner/selector", data=stranded)
    assert blocked.status_code == 200
    assert "Apply the change" not in blocked.text
    assert "in a stage of another pipeline" in blocked.text
    before = _version(demo_db)
    forced = client.post("/admin/pipelines/opportunity_partner/selector",
                         data={**stranded, "confirm": "1"})
    assert forced.status_code == 422
    assert _version(demo_db) == before


def test_conflicting_selectors_are_refused_on_the_form(client_for: Client,
                                                       demo_db: DemoDB) -> None:
    client = client_for("admin", lang="zh-CN")
    token = csrf(client)
    before = _version(demo_db)
    taken = client.post("/admin/pipelines/new", data={
        **_pipeline("opportunity_resell", ["resell_open"], selector_field="business_line",
                    sel_business_line="renewal"), "csrf_token": token})
    assert taken.status_code == 422
    assert "取值 &#39;renewal&#39; 已用于流程 &#39;opportunity_renewal&#39;" in taken.text
    assert 'name="sel_business_line" value="renewal" checked' in taken.text
    second_default = client.post("/admin/pipelines/new", data={
        **_pipeline("opportunity_other", ["other_open"]), "selector_field": "",
        "csrf_token": token})
    assert second_default.status_code == 422
    assert "已有默认流程" in second_default.text
    not_select = client.post("/admin/pipelines/new", data={
        **_pipeline("opportunity_named", ["named_open"]), "selector_field": "name",
        "sel_name": "x", "csrf_token": token})
    assert not_select.status_code == 422
    assert "选择字段必须是单选字段" in not_select.text
    package = client.post("/admin/pipelines/opportunity_renewal/selector", data={
        "csrf_token": token, "selector_field": "business_line",
        "sel_business_line": ["renewal", "new_business"]})
    assert package.status_code == 422
    assert "来自应用" in package.text
    none_ticked = client.post("/admin/pipelines/new", data={
        **_pipeline("opportunity_empty", ["empty_open"]), "selector_field": "business_line",
        "csrf_token": token})
    assert none_ticked.status_code == 422
    assert _version(demo_db) == before


def test_non_admins_cannot_set_a_selector(client_for: Client, demo_db: DemoDB) -> None:
    client = client_for("manager")
    before = _version(demo_db)
    response = client.post("/admin/pipelines/opportunity_renewal/selector", data={
        "csrf_token": csrf(client), "selector_field": "", "confirm": "1"})
    assert response.status_code == 403
    assert _version(demo_db) == before
