"""The OpenAPI 3.1 document: valid, complete (every entity and operation, each one routed),
faithful (real responses and bodies validate against its component schemas), and live (a
metadata change applied by another process shows up in it and in the API without restart)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from engine.metadata.conversions import conversions_of
from engine.metadata.model import Feature, FieldType
from tests.conftest import REPO_ROOT
from tests.ui.api.conftest import API, CRM, World

OPERATIONS = ("list", "create", "get", "update", "delete", "activity", "bulk_create")


def _document(world: World) -> dict[str, Any]:
    response = world.get("rep1", "/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    doc: dict[str, Any] = response.json()
    return doc


def _validator(doc: dict[str, Any], component: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _check(doc: dict[str, Any], component: str, instance: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in _validator(doc, component).iter_errors(instance)]
    assert errors == [], (component, errors)


def test_the_document_is_valid_openapi_31(sqlite_world: World) -> None:
    doc = _document(sqlite_world)
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": API}]
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "An API token (tpk_...)."}
    for name in ("BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict",
                 "UnprocessableContent", "PayloadTooLarge", "UnsupportedMediaType"):
        assert "application/problem+json" in doc["components"]["responses"][name]["content"]


def test_every_entity_and_operation_appears_and_is_routed(sqlite_world: World) -> None:
    world = sqlite_world
    doc = _document(world)
    registry = world.live.current().registry
    expected = {"openapi"}
    for name, entity in registry.entities.items():
        expected |= {f"{op}_{name}" for op in OPERATIONS}
        if entity.has(Feature.SOFT_DELETE):
            expected |= {f"restore_{name}", f"merge_{name}", f"get_merge_{name}",
                         f"undo_merge_{name}"}
        if entity.has(Feature.ACTIVITY):
            expected.add(f"comment_{name}")
        if entity.has(Feature.OWNED):
            expected.add(f"assign_{name}")
        for f in entity.fields:
            if f.type is FieldType.FILE:
                expected |= {f"upload_{name}_{f.name}", f"download_{name}_{f.name}"}
        if entity.has(Feature.POOLED):
            expected |= {f"{op}_{name}" for op in ("claim", "return", "recycle", "move",
                                                    "lock", "unlock")}
        for suffix in ("", ".create", ".update", ".page"):
            assert name + suffix in doc["components"]["schemas"]
    for conversion in conversions_of(registry.document):
        expected |= {f"preview_{conversion}", f"convert_{conversion}"}
    found = {op["operationId"] for path in doc["paths"].values()
             for method, op in path.items() if method != "parameters"}
    assert found == expected
    # Each documented path and method is served (not a routing 404 or 405).
    for path, item in doc["paths"].items():
        for method in (m for m in item if m != "parameters"):
            url = API + path.replace("{record_id}", "999999").replace("{merge_id}", "999999")
            response = world.client.request(method.upper(), url, headers=world.auth("admin"),
                                            json={} if method in ("post", "patch") else None)
            assert response.status_code not in (405, 415), (method, path, response.text)
            if response.status_code == 404:
                assert "999999 not found" in response.json()["detail"], (method, path)


def test_field_types_map_to_json_schema(sqlite_world: World) -> None:
    schemas = _document(sqlite_world)["components"]["schemas"]
    customer = schemas["customer"]["properties"]
    assert customer["industry"]["enum"][-1] is None and "retail" in customer["industry"]["enum"]
    assert customer["tags"]["items"]["enum"] == ["key_account", "chain", "new_store", "vip"]
    assert customer["annual_revenue"]["properties"]["amount"]["pattern"]
    assert customer["annual_revenue"]["required"] == ["amount", "currency"]
    assert customer["location"]["required"] == ["lat", "lng"]
    assert customer["website"]["format"] == "iri" and customer["name"]["maxLength"] == 200
    assert customer["source_lead"]["x-target"] == "lead"
    assert customer["id"]["readOnly"] and customer["version"]["readOnly"]
    assert customer["pool_id"]["readOnly"] and customer["created_at"]["format"] == "date-time"
    assert customer["name"]["x-labels"] == {"en": "Name", "zh-CN": "客户名称"}
    assert schemas["customer.create"]["required"] == ["name"]
    assert "id" not in schemas["customer.create"]["properties"]
    assert "version" in schemas["customer.update"]["properties"]
    follow = schemas["follow_up"]["properties"]
    assert follow["code"]["readOnly"] and "code" not in schemas["follow_up.create"]["properties"]
    assert follow["happened_at"]["format"] == "date-time"
    assert schemas["opportunity"]["properties"]["stage"]["enum"][0] == "research"
    assert schemas["opportunity.update"]["properties"]["stage"]["enum"][-1] == "churned"
    assert schemas["opportunity.create"]["properties"]["stage"]["enum"][0] == "research"
    assert "stage" not in schemas["customer.update"]["properties"]
    assert schemas["contact"]["properties"]["birthday"]["format"] == "date"
    sort = next(p for p in _document(sqlite_world)["paths"]["/customer"]["get"]["parameters"]
                if p.get("name") == "sort")
    assert "licence_no" in sort["schema"]["enum"] and "-grade" in sort["schema"]["enum"]
    assert "notes" not in sort["schema"]["enum"]  # not indexed: not sortable


def test_real_bodies_validate_against_their_components(world: World) -> None:
    doc = _document(world)
    rep1 = world.users["rep1"]
    bodies: dict[str, dict[str, Any]] = {
        "customer": {"name": "Schema Co", "licence_no": "91310000MA1FL0002B", "industry": "saas",
                     "grade": "B", "address": {"city": "Hangzhou", "zip": 310000},
                     "location": {"lat": 30.27, "lng": 120.15}, "website": "https://s.example.com",
                     "annual_revenue": {"amount": 99.5}, "employees": 12, "rating": 4,
                     "tags": ["vip"], "notes": "long\ntext", "owner_id": rep1},
    }
    customer = world.create("admin", "customer", bodies["customer"])
    bodies["contact"] = {"customer": customer["id"], "name": "Li Lei", "email": "li@s.example.com",
                         "phone": "+86 138 0000 0001", "is_primary": True,
                         "birthday": "1990-02-28", "owner_id": rep1}
    bodies["opportunity"] = {"name": "Big deal", "customer": customer["id"],
                             "amount": {"amount": "150000", "currency": "CNY"},
                             "expected_close": "2026-12-31", "probability": 40, "owner_id": rep1}
    photo = world.upload("admin", "/follow_up/files/attachment", b"\xff\xd8" + b"0" * 1022,
                         name="photo.jpg", content_type="image/jpeg")
    assert photo.status_code == 201, photo.text
    bodies["follow_up"] = {"kind": "visit", "content": "on site", "customer": customer["id"],
                           "happened_at": "2026-03-01T10:00:00Z", "check_in": [30.2, 120.1],
                           "attachment": {"upload_id": photo.json()["upload_id"]},
                           "owner_id": rep1}
    for entity, body in bodies.items():
        if entity != "customer":
            created = world.create("admin", entity, body)
        else:
            created = customer
        if entity != "follow_up":  # [lat, lng] is accepted but not the documented shape
            _check(doc, f"{entity}.create", body)
        for login in ("admin", "rep1"):  # rep1's view lacks hidden fields: still valid
            got = world.get(login, f"/{entity}/{created['id']}")
            assert got.status_code == 200, got.text
            _check(doc, entity, got.json())
            _check(doc, f"{entity}.page", world.get(login, f"/{entity}").json())
        update = {"version": created["version"], "notes": "more"} if "notes" in body else \
            {"version": created["version"]}
        _check(doc, f"{entity}.update", update)
    assert "annual_revenue" not in world.get("rep1", f"/customer/{customer['id']}").json()
    deleted = world.delete("admin", f"/customer/{customer['id']}")
    assert deleted.status_code == 204
    restored = world.post("admin", f"/customer/{customer['id']}/restore").json()
    _check(doc, "customer", restored)
    _check(doc, "ActivityPage", world.get("admin", f"/customer/{customer['id']}/activity").json())
    for response in (world.post("admin", "/customer", {"name": None}),
                     world.get("admin", "/customer/999999"),
                     world.get("admin", "/customer", params={"sort": "x"}),
                     world.client.get(f"{API}/customer")):
        _check(doc, "Problem", response.json())
    # The schemas are not vacuous: wrong shapes fail them.
    for wrong in ({**customer, "employees": "many"}, {**customer, "surprise": 1},
                  {k: v for k, v in customer.items() if k != "id"},
                  {**customer, "industry": "mining"},
                  {**customer, "annual_revenue": {"amount": 5, "currency": "CNY"}}):
        assert list(_validator(doc, "customer").iter_errors(wrong)), wrong
    assert list(_validator(doc, "customer.create").iter_errors({"grade": "A"}))  # no name


CHANGE_SCRIPT = r"""
import json, shutil, sys
from pathlib import Path

from engine.metadata.loader import load_packages
from engine.permissions.policy_store import sync_roles
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import apply_migration

source, target, url = sys.argv[1:]
shutil.copytree(source, target)
app = Path(target)

def edit(path, change):
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

edit(app / "entities" / "customer.json", lambda d: d["fields"].append(
    {"name": "vip_note", "type": "text", "label": {"en": "VIP note", "zh-CN": "VIP 备注"}}))
(app / "entities" / "visit.json").write_text(json.dumps({
    "name": "visit", "label": {"en": "Visit", "zh-CN": "拜访"},
    "plural_label": {"en": "Visits", "zh-CN": "拜访"}, "title_field": "place",
    "features": ["owned", "activity"],
    "fields": [{"name": "place", "type": "text", "label": {"en": "Place", "zh-CN": "地点"},
                "required": True},
               {"name": "minutes", "type": "integer", "label": {"en": "Minutes", "zh-CN": "分钟"},
                "min": 0}]}), encoding="utf-8")
edit(app / "app.json", lambda d: d["contributes"]["entities"].append("visit"))
edit(app / "roles" / "rep.json", lambda d: d["grants"].append(
    {"entity": "visit", "actions": ["read", "create", "update"], "scope": "own"}))
registry = load_packages([app])
engine = make_engine(url)
apply_migration(engine, target=registry, actor="admin")
with write_transaction(engine) as conn:
    sync_roles(conn, registry)
engine.dispose()
print("applied")
"""


def test_a_metadata_change_from_another_process_shows_up_without_restart(
        world: World, tmp_path: Path) -> None:
    record = world.create("rep1", "customer", {"name": "Before"})
    assert world.get("rep1", "/visit").status_code == 404
    assert "/visit" not in _document(world)["paths"]
    reloads = world.live.reloads

    done = subprocess.run([sys.executable, "-c", CHANGE_SCRIPT, str(CRM), str(tmp_path / "crm"),
                           world.url], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, check=False, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin"})
    assert done.returncode == 0 and "applied" in done.stdout, done.stderr

    # The same app object, no restart: the new entity and field are served at once.
    made = world.post("rep1", "/visit", {"place": "Shop 12", "minutes": 30})
    assert made.status_code == 201, made.text
    assert made.json()["owner_id"] == world.users["rep1"]
    assert world.get("rep2", f"/visit/{made.json()['id']}").status_code == 404
    bad = world.post("rep1", "/visit", {"minutes": -1})
    assert set(bad.json()["errors"]) == {"place", "minutes"}
    got = world.get("rep1", f"/customer/{record['id']}").json()
    assert got["vip_note"] is None
    patched = world.patch("rep1", f"/customer/{record['id']}",
                          {"version": got["version"], "vip_note": "likes tea"})
    assert patched.status_code == 200 and patched.json()["vip_note"] == "likes tea"
    assert world.live.reloads == reloads + 1

    doc = _document(world)
    validate(doc)
    assert {"/visit", "/visit/{record_id}", "/visit/{record_id}/activity"} <= set(doc["paths"])
    assert "/visit/{record_id}/restore" not in doc["paths"]  # no recycle bin
    assert doc["components"]["schemas"]["visit.create"]["required"] == ["place"]
    assert "vip_note" in doc["components"]["schemas"]["customer"]["properties"]
    _check(doc, "customer", patched.json())
    _check(doc, "visit", made.json())
