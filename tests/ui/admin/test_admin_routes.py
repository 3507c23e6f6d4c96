"""Admin routes: admins only, CSRF on every form, a plan before each metadata change, live."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from engine.storage.applied import applied_version
from tests.ui.conftest import DemoDB, csrf

Client = Callable[..., TestClient]

GET_ROUTES = ["/admin", "/admin/history", "/admin/entities/new", "/admin/entities/customer",
              "/admin/entities/customer/fields/new", "/admin/entities/customer/fields/grade",
              "/admin/pipelines/new", "/admin/pipelines/opportunity_sales", "/admin/roles",
              "/admin/roles/new", "/admin/roles/rep", "/admin/users", "/admin/org"]
POST_ROUTES = ["/admin/entities/new", "/admin/entities/customer",
               "/admin/entities/customer/order", "/admin/entities/customer/fields/new",
               "/admin/entities/customer/fields/grade",
               "/admin/entities/customer/fields/notes/remove", "/admin/pipelines/new",
               "/admin/pipelines/opportunity_sales/stages",
               "/admin/pipelines/opportunity_sales/stages/won/remove", "/admin/roles/new",
               "/admin/roles/rep", "/admin/users", "/admin/users/1/active",
               "/admin/users/1/password", "/admin/users/1/roles", "/admin/users/1/department",
               "/admin/org", "/admin/org/1/parent", "/admin/org/1/leader"]


def _version(db: DemoDB) -> int | None:
    with db.live.engine.connect() as conn:
        return applied_version(conn)


def _field_form(name: str, **extra: str) -> dict[str, str]:
    return {"name": name, "type": "integer", "label_en": "Shelves", "label_zh": "货架数", **extra}


@pytest.mark.parametrize("path", GET_ROUTES)
def test_non_admins_get_403_on_every_admin_page(client_for: Client, path: str) -> None:
    for login in ("rep_east1", "manager"):
        response = client_for(login).get(path)
        assert response.status_code == 403, (login, path)


@pytest.mark.parametrize("path", POST_ROUTES)
def test_non_admins_get_403_on_every_admin_form(client_for: Client, demo_db: DemoDB,
                                                path: str) -> None:
    client = client_for("manager")
    before = _version(demo_db)
    response = client.post(path, data={"csrf_token": csrf(client), "confirm": "1",
                                       **_field_form("x_forbidden")}, follow_redirects=False)
    assert response.status_code == 403
    assert _version(demo_db) == before


def test_anonymous_visitors_are_sent_to_sign_in(client_for: Client) -> None:
    response = client_for(None).get("/admin/entities/customer", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/admin/entities/customer")


def test_admin_sees_the_admin_link_others_do_not(client_for: Client) -> None:
    assert 'href="/admin"' in client_for("admin").get("/").text
    assert 'href="/admin"' not in client_for("rep_east1").get("/").text


def test_every_admin_page_renders_for_the_admin(client_for: Client) -> None:
    client = client_for("admin")
    for path in GET_ROUTES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert 'name="csrf_token"' in response.text or path in ("/admin", "/admin/history",
                                                                "/admin/roles")


@pytest.mark.parametrize("path", ["/admin/entities/customer/fields/new", "/admin/users",
                                  "/admin/roles/rep"])
def test_a_post_without_the_csrf_token_is_refused(client_for: Client, demo_db: DemoDB,
                                                  path: str) -> None:
    before = _version(demo_db)
    response = client_for("admin").post(path, data={**_field_form("no_csrf"), "confirm": "1"},
                                        follow_redirects=False)
    assert response.status_code == 403
    assert _version(demo_db) == before


def test_add_a_field_preview_then_apply_and_it_is_in_the_form_and_list(
        client_for: Client, demo_db: DemoDB) -> None:
    client = client_for("admin")
    token = csrf(client)
    before = _version(demo_db)
    form = {**_field_form("shelf_count"), "help_en": "Shelves in the shop", "csrf_token": token}

    preview = client.post("/admin/entities/customer/fields/new", data=form)

    assert preview.status_code == 200
    assert "add field customer.shelf_count (column shelf_count)" in preview.text
    assert "Apply the change" in preview.text
    assert _version(demo_db) == before  # previewed, not applied
    assert 'name="shelf_count"' not in client.get("/e/customer/new").text
    version = re.search(r'name="version" value="(\d+)"', preview.text)
    assert version and int(version.group(1)) == before
    carried = re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', preview.text)
    assert ("name", "shelf_count") in carried and ("label_zh", "货架数") in carried

    applied = client.post("/admin/entities/customer/fields/new",
                          data={**form, "confirm": "1", "version": version.group(1)},
                          follow_redirects=False)

    assert applied.status_code == 303
    assert applied.headers["location"] == "/admin/entities/customer"
    assert _version(demo_db) == before + 1
    new_form = client.get("/e/customer/new").text
    assert 'name="shelf_count"' in new_form and "Shelves in the shop" in new_form
    listing = client.get("/e/customer?cols=name&cols=shelf_count").text
    assert "Shelves" in listing
    assert "shelf_count" in client.get("/admin/entities/customer").text
    history = client.get("/admin/history").text
    assert "add field customer.shelf_count (integer)" in history and "admin" in history


def test_a_bad_field_is_refused_with_messages_and_nothing_applies(
        client_for: Client, demo_db: DemoDB) -> None:
    client = client_for("admin")
    before = _version(demo_db)
    response = client.post("/admin/entities/customer/fields/new", data={
        "csrf_token": csrf(client), "name": "vip", "type": "select", "label_en": "VIP",
        "confirm": "1"})
    assert response.status_code == 422
    assert "missing required property &#39;zh-CN&#39;" in response.text
    assert "options" in response.text
    assert 'value="vip"' in response.text  # the form keeps what was typed
    assert _version(demo_db) == before


def test_a_package_field_edit_shows_its_limits(client_for: Client, demo_db: DemoDB) -> None:
    client = client_for("admin")
    page = client.get("/admin/entities/customer/fields/grade").text
    assert "comes from an app package" in page and 'readonly' in page
    form = {"csrf_token": csrf(client), "type": "select", "label_en": "Tier",
            "label_zh": "客户等级", "opt_value": ["A", "B", "C", "S"],
            "opt_en": ["A", "B", "C", "S"], "opt_zh": ["A类", "B类", "C类", "S类"],
            "opt_color": ["green", "blue", "gray", "red"], "opt_order": ["3", "2", "1", "0"]}
    preview = client.post("/admin/entities/customer/fields/grade", data=form)
    assert preview.status_code == 200, preview.text[:2000]
    assert "add option &#39;S&#39; to customer.grade (metadata only)" in preview.text
    version = re.search(r'name="version" value="(\d+)"', preview.text)
    assert version
    done = client.post("/admin/entities/customer/fields/grade",
                       data={**form, "confirm": "1", "version": version.group(1)},
                       follow_redirects=False)
    assert done.status_code == 303
    grade = demo_db.live.current().registry.entity("customer").field("grade")
    assert [o.value for o in grade.options] == ["S", "C", "B", "A"]
    assert grade.label.get("en") == "Tier"


def test_a_stale_confirm_is_refused_with_the_new_plan(client_for: Client,
                                                      demo_db: DemoDB) -> None:
    client = client_for("admin")
    form = {**_field_form("stale_one"), "csrf_token": csrf(client), "confirm": "1",
            "version": str((_version(demo_db) or 0) - 1)}
    response = client.post("/admin/entities/customer/fields/new", data=form)
    assert response.status_code == 409
    assert "changed since you saw this plan" in response.text
    assert not demo_db.live.current().registry.entity("customer").has_field("stale_one")


def test_a_lossy_change_is_blocked_on_the_confirm_page(client_for: Client,
                                                       demo_db: DemoDB) -> None:
    from tests.ui.conftest import make_record

    client = client_for("admin")
    token = csrf(client)
    text_field = {"csrf_token": token, "name": "shop_code", "type": "text",
                  "label_en": "Shop", "label_zh": "门店", "confirm": "1"}
    assert client.post("/admin/entities/customer/fields/new", data=text_field,
                       follow_redirects=False).status_code == 303
    make_record(demo_db, "customer", {"name": "Lossy Co", "shop_code": "A-17"})
    preview = client.post("/admin/entities/customer/fields/shop_code", data={
        "csrf_token": token, "type": "integer", "label_en": "Shop", "label_zh": "门店"})
    assert preview.status_code == 200
    assert "1 rows cannot convert from text(255) to bigint" in preview.text
    assert "Apply the change" not in preview.text
    forced = client.post("/admin/entities/customer/fields/shop_code", data={
        "csrf_token": token, "type": "integer", "label_en": "Shop", "label_zh": "门店",
        "confirm": "1"})
    assert forced.status_code == 422
    field = demo_db.live.current().registry.entity("customer").field("shop_code")
    assert field.type.value == "text"


def test_a_new_entity_and_its_pipeline_through_the_forms(client_for: Client,
                                                          demo_db: DemoDB) -> None:
    client = client_for("admin")
    token = csrf(client)
    response = client.post("/admin/entities/new", data={
        "csrf_token": token, "name": "ticket", "label_en": "Ticket", "label_zh": "工单",
        "plural_en": "Tickets", "plural_zh": "工单", "feature_owned": "1",
        "title_name": "subject", "title_label_en": "Subject", "title_label_zh": "主题",
        "grant_role": "admin", "confirm": "1"}, follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    assert "ticket" in demo_db.live.current().registry.entities
    assert client.get("/e/ticket/new").status_code == 200
    response = client.post("/admin/pipelines/new", data={
        "csrf_token": token, "entity": "ticket", "name": "ticket_flow",
        "label_en": "Flow", "label_zh": "流程", "st_key": ["open", "done", ""],
        "st_en": ["Open", "Done", ""], "st_zh": ["待办", "完成", ""],
        "st_kind": ["open", "won", "open"], "st_probability": ["", "", ""], "confirm": "1"},
        follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    registry = demo_db.live.current().registry
    assert registry.pipeline_for("ticket").initial_stage == "open"
    assert client.get("/e/ticket/kanban").status_code == 200
    page = client.get("/admin/pipelines/ticket_flow").text
    assert 'id="stage-open"' in page and 'id="stage-done"' in page


def test_the_permission_matrix_changes_a_role(client_for: Client, demo_db: DemoDB) -> None:
    client = client_for("admin")
    page = client.get("/admin/roles/rep").text
    assert 'name="g:lead:own" value="read" checked' in page
    token = csrf(client)
    form = {"csrf_token": token, "label_en": "Sales rep", "label_zh": "销售专员",
            "g:lead:own": ["read", "create", "update"], "g:customer:own": ["read"],
            "h:customer:own": ["phone"]}
    preview = client.post("/admin/roles/rep", data=form)
    assert "changed role rep (metadata only)" in preview.text
    version = re.search(r'name="version" value="(\d+)"', preview.text)
    assert version
    done = client.post("/admin/roles/rep", data={**form, "confirm": "1",
                                                 "version": version.group(1)},
                       follow_redirects=False)
    assert done.status_code == 303
    rep = demo_db.live.current().registry.roles["rep"]
    assert {(g.entity, g.scope.value) for g in rep.grants} == {("lead", "own"),
                                                                 ("customer", "own")}
    rep_client = client_for("rep_east1")
    assert rep_client.get("/e/contact").status_code == 403  # the policy followed at once
    assert rep_client.get("/e/customer").status_code == 200
