"""The admin's sharing-rule editor: create, edit and remove a rule (previewed with how
many records it matches) and see a rep's visibility follow; bad rules come back to
the form with a clear message; only admins; zh-CN."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]
BASE = "/admin/roles/rep/sharing"


def _rule(admin: TestClient, **override: str) -> dict[str, str]:
    return {"csrf_token": csrf(admin), "entity": "customer", "name": "saas_for_reps",
            "access": "read", "description_en": "Every rep sees SaaS shops",
            "description_zh-CN": "所有销售可见 SaaS 客户", "c0_field": "industry",
            "c0_op": "eq", "c0_value": "saas", **override}


def _apply(admin: TestClient, url: str, data: dict[str, str]) -> TestClient:
    """Post the change, check its preview, then confirm it as the confirm page does."""
    shown = admin.post(url, data=data)
    assert shown.status_code == 200, shown.text[:800]
    assert "Apply the change" in shown.text
    version = re.search(r'name="version" value="(\d*)"', shown.text)
    assert version is not None
    applied = admin.post(url, data={**data, "confirm": "1", "version": version.group(1)},
                         follow_redirects=False)
    assert applied.status_code == 303, applied.text[:800]
    assert applied.headers["location"] == BASE
    return admin


def test_create_edit_and_remove_a_rule_change_what_a_rep_sees(
        client_for: Client, demo_db: DemoDB) -> None:
    saas = make_record(demo_db, "customer", {"name": "Sharezone Saas", "industry": "saas"},
                       owner="rep_west1")
    retail = make_record(demo_db, "customer", {"name": "Sharezone Retail",
                                               "industry": "retail"}, owner="rep_west1")
    rep = client_for("rep_east1")
    assert rep.get(f"/e/customer/{saas}").status_code == 404  # another team's customer
    admin = client_for("admin")
    assert admin.get(f"{BASE}/new?entity=customer").status_code == 200
    preview = admin.post(f"{BASE}/new", data=_rule(admin))
    assert re.search(r"[\d,]+ records of Customers match this rule now", preview.text), \
        preview.text[:800]
    assert "set sharing rule saas_for_reps of role rep" in preview.text
    assert rep.get(f"/e/customer/{saas}").status_code == 404  # a preview applies nothing
    _apply(admin, f"{BASE}/new", _rule(admin))
    listed = admin.get(BASE).text
    assert "saas_for_reps" in listed and "Every rep sees SaaS shops" in listed
    assert "Industry equals saas" in listed
    assert rep.get(f"/e/customer/{saas}").status_code == 200
    assert rep.get(f"/e/customer/{retail}").status_code == 404
    assert admin.get(f"{BASE}/saas_for_reps").status_code == 200
    _apply(admin, f"{BASE}/saas_for_reps", _rule(admin, c0_op="in", c0_value="retail, other"))
    assert rep.get(f"/e/customer/{saas}").status_code == 404
    assert rep.get(f"/e/customer/{retail}").status_code == 200
    rule = demo_db.live.current().registry.roles["rep"].sharing_rules[0]
    assert rule.where[0].value == ["retail", "other"]
    _apply(admin, f"{BASE}/saas_for_reps/remove", {"csrf_token": csrf(admin)})
    assert rep.get(f"/e/customer/{retail}").status_code == 404
    assert "saas_for_reps" not in admin.get(BASE).text
    assert demo_db.live.current().registry.roles["rep"].sharing_rules == ()


def test_invalid_rules_come_back_to_the_form(client_for: Client) -> None:
    admin = client_for("admin")
    wrong_op = admin.post(f"{BASE}/new", data=_rule(admin, c0_field="employees",
                                                    c0_op="contains", c0_value="3"))
    assert wrong_op.status_code == 422
    assert "does not apply to integer fields" in wrong_op.text
    not_number = admin.post(f"{BASE}/new", data=_rule(admin, c0_field="employees",
                                                      c0_op="gte", c0_value="many"))
    assert not_number.status_code == 422 and "needs a number" in not_number.text
    no_condition = admin.post(f"{BASE}/new", data=_rule(admin, c0_field=""))
    assert no_condition.status_code == 422 and "add at least one condition" in no_condition.text
    bad_name = admin.post(f"{BASE}/new", data=_rule(admin, name="Bad Name!"))
    assert bad_name.status_code == 422 and "lower-case identifier" in bad_name.text
    between = admin.post(f"{BASE}/new", data=_rule(admin, c0_field="employees",
                                                   c0_op="between", c0_value="5"))
    assert between.status_code == 422 and "between needs two values" in between.text
    option = admin.post(f"{BASE}/new", data=_rule(admin, c0_value="no_such_industry"))
    assert option.status_code == 422  # the loader's own check of select options
    assert "no_such_industry" in option.text
    assert admin.post(f"{BASE}/nope/remove", data={"csrf_token": csrf(admin)}).status_code == 422
    assert admin.get(f"{BASE}/new?entity=nope").status_code == 404
    assert admin.get("/admin/roles/nope/sharing").status_code == 404


def test_only_admins_edit_sharing_rules(client_for: Client) -> None:
    rep = client_for("rep_east1")
    assert rep.get(BASE).status_code == 403
    assert rep.post(f"{BASE}/new", data=_rule(rep)).status_code == 403
    anonymous = client_for(None)
    assert anonymous.get(BASE, follow_redirects=False).status_code in (302, 303)
    admin = client_for("admin")
    assert admin.post(f"{BASE}/new", data={**_rule(admin), "csrf_token": "forged"}
                      ).status_code == 403


def test_the_editor_in_chinese(client_for: Client) -> None:
    admin = client_for("admin", lang="zh-CN")
    page = admin.get("/admin/roles/manager/sharing").text
    assert "共享规则" in page and "a_grade_customers" in page
    form = admin.get(f"{BASE}/new?entity=customer").text
    assert "条件" in form and "等于" in form
    refused = admin.post(f"{BASE}/new", data=_rule(admin, c0_field="employees", c0_op="gte",
                                                   c0_value="many"))
    assert refused.status_code == 422 and "需要一个数字" in refused.text
