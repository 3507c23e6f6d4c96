"""Report screens over the demo: pages, chart JSON, drill-down links, exports, the
leaderboard, the dashboard per role, targets and the admin's dashboard editor."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.permissions.org import load_org_snapshot
from tests.ui.conftest import DemoDB, csrf

Client = Callable[..., TestClient]


def test_reports_need_a_sign_in(client_for: Client) -> None:
    client = client_for(None)
    assert client.get("/reports", follow_redirects=False).status_code in (302, 303)
    assert client.get("/reports/sales_funnel/chart.json",
                      follow_redirects=False).status_code in (302, 303, 401)


def test_the_report_list_and_a_report_page_with_drill_down_links(client_for: Client) -> None:
    client = client_for("manager")
    index = client.get("/reports")
    assert index.status_code == 200 and "/reports/opportunity_pipeline" in index.text
    page = client.get("/reports/opportunity_pipeline?period=all_time")
    assert page.status_code == 200
    assert 'data-chart="/reports/opportunity_pipeline/chart.json?period=all_time"' in page.text
    links = re.findall(r'href="(/e/opportunity\?[^"]+)"', page.text)
    assert links
    count = next(link for link in links if "f.stage.eq" in link)
    params = dict(parse_qsl(urlsplit(count.replace("&amp;", "&")).query))
    assert params["f.stage.eq"] == "research"
    listed = client.get(count.replace("&amp;", "&"))
    assert listed.status_code == 200


def test_the_chart_json_carries_a_list_url_per_point(client_for: Client) -> None:
    data = client_for("manager").get("/reports/sales_funnel/chart.json?period=all_time").json()
    assert data["type"] == "funnel"
    steps = data["series"][0]["data"]
    assert [s["name"] for s in steps] == ["Leads", "Customers from leads", "Opportunities",
                                          "Won"]
    assert all(s["url"].startswith("/e/") for s in steps)
    zh = client_for("manager", lang="zh-CN").get(
        "/reports/sales_funnel/chart.json?period=all_time").json()
    assert zh["series"][0]["data"][0]["name"] == "线索"


@pytest.mark.parametrize(("url", "status"), [
    ("/reports/nope", 404), ("/reports/sales_funnel?period=eons", 400),
    ("/reports/sales_funnel?period=custom&from=2026-01-01", 400),
    ("/reports/sales_funnel?period=custom&from=2026-13-01&to=2026-12-01", 400),
    ("/leaderboard?measure=nope", 400), ("/leaderboard?scope=galaxy", 400),
    ("/targets?month=2026-99", 400),
])
def test_bad_report_input_is_a_clear_client_error(client_for: Client, url: str,
                                                  status: int) -> None:
    assert client_for("manager").get(url).status_code == status


def test_exports_are_formula_safe_and_need_the_export_grant(client_for: Client) -> None:
    client = client_for("manager")
    got = client.get("/reports/leads_by_channel/export.csv?period=all_time")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["Channel", "Leads"] and rows[-1][0] == "Total"
    xlsx = client.get("/reports/leads_by_channel/export.xlsx?period=all_time")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet["A1"].value == "Channel"
    rep = client_for("rep_east1")
    assert rep.get("/reports/leads_by_channel/export.csv").status_code in (200, 403)


def test_each_role_gets_its_own_dashboard(client_for: Client) -> None:
    rep = client_for("rep_east1", lang="en").get("/dashboard")
    assert rep.status_code == 200 and "My dashboard" in rep.text
    assert "Follow-ups due today" in rep.text and "My rank" in rep.text
    sup = client_for("sup_east").get("/dashboard")
    assert "Team dashboard" in sup.text or "团队工作台" in sup.text
    manager = client_for("manager", lang="en").get("/dashboard")
    assert "Sales overview" in manager.text and "/reports/funnel_by_team" in manager.text
    home = client_for("rep_east1").get("/")
    assert 'hx-get="/dashboard"' in home.text


def test_the_leaderboard_always_shows_my_position(client_for: Client) -> None:
    page = client_for("rep_east1", lang="en").get(
        "/leaderboard?measure=new_leads&period=this_year&scope=all")
    assert page.status_code == 200
    assert 'class="me"' in page.text and "Your position:" in page.text


def test_targets_are_set_by_a_manager_not_a_rep(client_for: Client) -> None:
    manager = client_for("manager")
    page = manager.get("/targets")
    assert page.status_code == 200 and 'name="assignee"' in page.text
    option = re.search(r'<option value="(user:\d+)">rep_east1</option>', page.text)
    assert option, page.text[:2000]
    done = manager.post("/targets", data={"csrf_token": csrf(manager), "month": "2026-11",
                                          "measure": "new_leads", "assignee": option.group(1),
                                          "value": "40"})
    assert done.status_code == 200 and "Target saved." in done.text
    rep = client_for("rep_east1")
    refused = rep.post("/targets", data={"csrf_token": csrf(rep), "month": "2026-11",
                                         "measure": "new_leads", "assignee": option.group(1),
                                         "value": "400"})
    assert refused.status_code == 403
    bad = manager.post("/targets", data={"csrf_token": csrf(manager), "month": "2026-11",
                                         "measure": "new_leads", "assignee": option.group(1),
                                         "value": "lots"})
    assert bad.status_code == 422
    no_csrf = manager.post("/targets", data={"month": "2026-11", "measure": "new_leads",
                                             "assignee": option.group(1), "value": "1"})
    assert no_csrf.status_code == 403


def test_an_admin_adds_a_report_to_a_dashboard(client_for: Client) -> None:
    admin = client_for("admin")
    assert client_for("manager").get("/admin/dashboards").status_code == 403
    page = admin.get("/admin/dashboards")
    assert page.status_code == 200 and "rep_home" in page.text
    done = admin.post("/admin/dashboards/rep_home/add",
                      data={"csrf_token": csrf(admin), "report": "leads_by_channel",
                            "period": "this_year"}, follow_redirects=False)
    assert done.status_code == 303
    dashboard = client_for("rep_east1", lang="en").get("/dashboard")
    assert "/reports/leads_by_channel" in dashboard.text
    again = admin.post("/admin/dashboards/rep_home/add",
                       data={"csrf_token": csrf(admin), "report": "leads_by_channel",
                             "period": "this_year"}, follow_redirects=False)
    assert again.status_code == 422


def _dropping_owners(demo_db: DemoDB, html: str) -> set[int | None]:
    ids = {int(i) for i in re.findall(r'href="/e/customer/(\d+)"', html)}
    records = demo_db.live.current().records
    return {records.get(Actor.system("test"), "customer", i).get("owner_id") for i in ids}


def test_about_to_drop_tile_and_its_list_show_only_my_records(client_for: Client,
                                                               demo_db: DemoDB) -> None:
    rep = client_for("rep_east1", lang="en")
    home = rep.get("/dashboard")
    assert "About to drop back to the pool" in home.text
    assert "/dashboard/dropping?entity=customer&amp;days=3&amp;scope=mine" in home.text
    listed = rep.get("/dashboard/dropping?entity=customer&days=90&scope=mine")
    assert listed.status_code == 200
    assert _dropping_owners(demo_db, listed.text) == {demo_db.user_id("rep_east1")}
    team = client_for("sup_east", lang="zh-CN").get(
        "/dashboard/dropping?entity=customer&days=90&scope=team")
    assert team.status_code == 200 and "即将退回公海" in team.text
    with demo_db.live.engine.connect() as conn:
        org = load_org_snapshot(conn)
    sup = demo_db.user_id("sup_east")
    team_ids = set(org.users_under(org.user_department[sup]))
    owners = _dropping_owners(demo_db, team.text)
    assert owners and owners <= team_ids


@pytest.mark.parametrize("query", ["entity=nope", "entity=customer&days=0",
                                   "entity=customer&days=abc", "entity=customer&days=9999",
                                   "entity=customer&scope=galaxy"])
def test_about_to_drop_bad_input_is_a_client_error(client_for: Client, query: str) -> None:
    assert client_for("rep_east1").get(f"/dashboard/dropping?{query}").status_code == 400


def test_time_in_stage_numbers_link_to_their_stays(client_for: Client) -> None:
    manager = client_for("manager", lang="en")
    page = manager.get("/reports/time_in_stage?period=all_time")
    links = re.findall(r'href="(/reports/time_in_stage/stays\?[^"]+)"', page.text)
    assert links and all("measure=" in link for link in links)
    stays = manager.get(links[0].replace("&amp;", "&"))
    assert stays.status_code == 200 and re.search(r'href="/e/opportunity/\d+"', stays.text)
    zh = client_for("manager", lang="zh-CN").get(links[0].replace("&amp;", "&"))
    assert "停留天数" in zh.text


@pytest.mark.parametrize("query", ["measure=nope", "measure=avg_days&stage=nope",
                                   "measure=avg_days&owner=x", "measure=avg_days&period=eons"])
def test_stays_bad_input_is_a_client_error(client_for: Client, query: str) -> None:
    assert client_for("manager").get(
        f"/reports/time_in_stage/stays?{query}").status_code == 400
