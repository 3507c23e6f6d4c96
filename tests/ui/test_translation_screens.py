"""Screens in zh-CN show engine messages, metadata words, role labels, plan lines and
the demo banner in Chinese (issue 12: English leaked into the Chinese UI)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from engine.demo import DEMO_PASSWORD
from engine.messages import M
from tests.ui.conftest import SECRET, DemoDB, csrf, sign_in
from ui.app import create_app

Client = Callable[..., TestClient]


def test_validation_messages_from_the_engine_are_chinese(client_for: Client) -> None:
    rep = client_for("rep_east1", lang="zh-CN")
    page = rep.post("/e/customer/new", data={"csrf_token": csrf(rep), "name": "X",
                                             "phone": "not a phone", "employees": "many"})
    assert page.status_code == 422
    assert "不是有效的电话号码" in page.text and "is not a phone number" not in page.text
    assert "不是整数" in page.text


def test_forbidden_details_and_query_errors_are_chinese(client_for: Client) -> None:
    manager = client_for("manager", lang="zh-CN")
    refused = manager.get("/e/follow_up/new")
    assert refused.status_code == 403
    assert "none of your roles grants it" not in refused.text and "您的角色都没有此权限" in refused.text
    bad = manager.get("/e/customer?f.name.nonsense=1")
    assert bad.status_code == 400 and "无法显示此列表" in bad.text and "未知运算符" in bad.text


def test_admin_vocabulary_and_role_labels_are_chinese(client_for: Client, demo_db: DemoDB) -> None:
    admin = client_for("admin", lang="zh-CN")
    role = admin.get("/admin/roles/rep").text
    assert "<th>查看</th>" in role and ("本人的记录" in role or "本部门及下级部门" in role)
    users = admin.get("/admin/users").text
    labels = [r.label.get("zh-CN") for r in demo_db.live.current().registry.roles.values()]
    assert all(label in users for label in labels)
    field = admin.get("/admin/entities/customer/fields/grade").text
    assert "日期时间" in field and ">datetime<" not in field


def test_the_demo_banner_speaks_the_pages_language(demo_db: DemoDB) -> None:
    banner = M("Demo: sign in as %(logins)s... with the password %(password)s",
               logins="admin, rep_east1", password=DEMO_PASSWORD)
    app = create_app(demo_db.live, secret_key=SECRET, banner=banner, api_module=None)
    with TestClient(app) as client:
        client.cookies.set("tp_lang", "zh-CN")
        sign_in(client, "rep_east1")
        page = client.get("/").text
        assert f"演示环境：可用 admin, rep_east1 等账号登录，密码 {DEMO_PASSWORD}" in page
        client.cookies.set("tp_lang", "en")
        assert "Demo: sign in as admin, rep_east1..." in client.get("/?lang=en").text
