"""The admin's pool editor: members, limits, rules and distribution as JSON, previewed with
the migration plan and the rules' dry run (which records would move, and why), then applied
live; bad JSON and rules the cross-checks refuse come back to the form; reps may not."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]

NEW_RULE = {"name": "created_20d", "label": {"en": "Created 20 days ago", "zh-CN": "创建20天"},
            "kind": "drop", "clock": "created", "after": {"days": 20}}


def _form(admin: TestClient, **override: object) -> dict[str, str]:
    page = admin.get("/admin/pools/customer_pool").text
    parts: dict[str, str] = {}
    for part in ("members", "limits", "rules", "distribution"):
        found = re.search(rf'name="{part}"[^>]*>(.*?)</textarea>', page, re.DOTALL)
        assert found is not None, part
        parts[part] = html.unescape(found.group(1))
    parts.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in override.items()})
    return {"csrf_token": csrf(admin), **parts}


def test_preview_lists_the_records_a_new_rule_would_move_then_apply(
        client_for: Client, demo_db: DemoDB) -> None:
    admin = client_for("admin")
    assert "customer_pool" in admin.get("/admin/pools").text
    old = make_record(demo_db, "customer", {"name": "Old Shop", "grade": "C"}, owner="rep_east1")
    table = demo_db.live.current().schema.table("customer")
    with demo_db.live.engine.begin() as conn:
        created = conn.execute(select(table.c.created_at).where(table.c.id == old)).scalar_one()
        conn.execute(update(table).where(table.c.id == old)
                     .values(created_at=created - timedelta(days=30)))
    rules = json.loads(_form(admin)["rules"])
    data = _form(admin, rules=[*rules, NEW_RULE])
    shown = admin.post("/admin/pools/customer_pool", data=data)
    assert shown.status_code == 200, shown.text[:500]
    assert "What the rules would move now" in shown.text
    assert f'href="/e/customer/{old}"' in shown.text
    rows = re.findall(rf'<tr><td>([^<]*)</td><td><a href="/e/customer/{old}".*?</tr>',
                      shown.text, re.DOTALL)
    assert "Created 20 days ago" in rows   # the new rule, by its label
    assert re.search(r"created_20d: created clock at 7\d\d\.\d h", shown.text)
    # Nothing applied yet.
    assert "created_20d" not in [r.name for r in
                                 demo_db.live.current().registry.pools["customer_pool"].rules]
    version = re.search(r'name="version" value="(\d*)"', shown.text)
    assert version is not None
    applied = admin.post("/admin/pools/customer_pool",
                         data={**data, "confirm": "1", "version": version.group(1)},
                         follow_redirects=False)
    assert applied.status_code == 303
    pool = demo_db.live.current().registry.pools["customer_pool"]
    assert "created_20d" in [r.name for r in pool.rules]
    with demo_db.live.engine.connect() as conn:   # previewing and applying moved nothing
        assert conn.execute(select(table.c.owner_id).where(table.c.id == old)).scalar() \
            == demo_db.user_id("rep_east1")


def test_limits_and_members_are_edited_too(client_for: Client, demo_db: DemoDB) -> None:
    admin = client_for("admin")
    limits = json.loads(_form(admin)["limits"])
    data = _form(admin, limits={**limits, "max_held": 55})
    shown = admin.post("/admin/pools/customer_pool", data=data)
    version = re.search(r'name="version" value="(\d*)"', shown.text)
    assert version is not None
    admin.post("/admin/pools/customer_pool",
               data={**data, "confirm": "1", "version": version.group(1)})
    assert demo_db.live.current().registry.pools["customer_pool"].limits.max_held == 55


def test_bad_json_and_refused_rules_come_back_to_the_form(client_for: Client) -> None:
    admin = client_for("admin")
    bad = admin.post("/admin/pools/customer_pool", data=_form(admin, rules="[{oops"))
    assert bad.status_code == 422 and "is not valid JSON" in bad.text
    assert "[{oops" in bad.text                                   # what was typed stays
    shape = admin.post("/admin/pools/customer_pool", data=_form(admin, members="[1]"))
    assert shape.status_code == 422 and "must be a JSON object" in shape.text
    empty = admin.post("/admin/pools/customer_pool", data=_form(admin, members=""))
    assert empty.status_code == 422 and "is required" in empty.text
    wrong = {**NEW_RULE, "name": "on_nothing", "when": {"field": "no_such_field", "op": "eq",
                                                        "value": 1}}
    rules = json.loads(_form(admin)["rules"])
    refused = admin.post("/admin/pools/customer_pool", data=_form(admin, rules=[*rules, wrong]))
    assert refused.status_code == 422 and "no_such_field" in refused.text
    assert admin.get("/admin/pools/nope").status_code == 404


def test_only_admins_edit_pools(client_for: Client) -> None:
    rep = client_for("rep_east1")
    assert rep.get("/admin/pools/customer_pool").status_code == 403
    assert rep.post("/admin/pools/customer_pool",
                    data={"csrf_token": csrf(rep), "members": "{}"}).status_code == 403


def test_the_editor_in_chinese(client_for: Client) -> None:
    page = client_for("admin", lang="zh-CN").get("/admin/pools/customer_pool").text
    assert "成员" in page and "分配规则" in page
