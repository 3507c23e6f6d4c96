"""File storage keys are the server's alone (issue 8, deliverable 3): service, API, screens.

An upload answers an opaque ``upload_id`` good once, for its entity and field,
and only for who uploaded it; a write naming anything else -- a forged or
remembered storage key, someone else's upload, a spent one -- is a 422 on the
field. Readers see name, size, type and the record's download URL, never the
key, and the URL answers only to readers of the record. On SQLite and
PostgreSQL (service and API) and through the screens (the demo, SQLite).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from engine.actor import Actor
from engine.errors import ValidationError
from engine.records.uploads import KEY_REFUSED, NOT_ISSUED
from engine.storage.database import make_engine
from engine.storage.upload_tables import UPLOAD_TABLE
from tests.integration.permissions._crm_org import CrmOrg, seed_crm
from tests.integration.permissions.conftest import module_db_url  # noqa: F401 - fixture
from tests.ui.api.conftest import API, World, world  # noqa: F401 - fixture (both databases)

FOLLOW_UP = {"kind": "call", "content": "Visited", "happened_at": "2026-05-01T09:00:00+00:00"}
PDF = b"%PDF-1.4 site report"


@pytest.fixture(scope="module")
def crm(module_db_url: str) -> Iterator[CrmOrg]:  # noqa: F811 - the imported fixture
    engine = make_engine(module_db_url)
    try:
        yield seed_crm(engine)
    finally:
        engine.dispose()


def _upload(crm: CrmOrg, login: str, key: str) -> str:
    return crm.records.register_upload(crm.actor(login), "follow_up", "attachment",
                                       storage_key=key, name="report.pdf", size=len(PDF),
                                       content_type="application/pdf")


def _refused(call: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.field_errors


# --- service ---------------------------------------------------------------------------------

def test_an_upload_is_good_once_for_its_uploader(crm: CrmOrg) -> None:
    r1, r2 = crm.actor("r1"), crm.actor("r2")
    token = _upload(crm, "r1", "follow_up/k-once")
    made = crm.records.create(r1, "follow_up", {**FOLLOW_UP, "attachment": {"upload_id": token}})
    assert made["attachment"] == {"name": "report.pdf", "size": len(PDF),
                                  "content_type": "application/pdf", "key": "follow_up/k-once"}
    # Spent: not on another record, not even the same one again.
    assert _refused(lambda: crm.records.create(
        r1, "follow_up", {**FOLLOW_UP, "attachment": {"upload_id": token}})) == \
        {"attachment": NOT_ISSUED}
    assert _refused(lambda: crm.records.update(
        r1, "follow_up", made.id, {"attachment": {"upload_id": token}},
        version=made.version)) == {"attachment": NOT_ISSUED}
    # Someone else's upload, or one never issued, reads the same.
    theirs = _upload(crm, "r1", "follow_up/k-theirs")
    for bad in (theirs, "forged-token", "x" * 5000):
        assert _refused(lambda bad=bad: crm.records.create(
            r2, "follow_up", {**FOLLOW_UP, "attachment": {"upload_id": bad}})) == \
            {"attachment": NOT_ISSUED}


def test_a_client_value_with_a_storage_key_is_refused(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    own = crm.records.create(r1, "follow_up", dict(FOLLOW_UP))
    for value in ({"name": "x.pdf", "key": "follow_up/k-once"},
                  {"name": "x.pdf", "size": 3, "content_type": "application/pdf"},
                  {"upload_id": _upload(crm, "r1", "follow_up/k-mixed"), "key": "a/b"}):
        assert _refused(lambda value=value: crm.records.update(
            r1, "follow_up", own.id, {"attachment": value}, version=own.version)) == \
            {"attachment": KEY_REFUSED}
    system = crm.records.update(Actor.system(), "follow_up", own.id,   # the engine's own write
                                {"attachment": {"name": "x.pdf", "key": "follow_up/k-sys",
                                                "content_type": "application/pdf"}},
                                version=own.version)
    assert system["attachment"]["key"] == "follow_up/k-sys"


def test_a_refused_write_leaves_the_upload_unspent(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    token = _upload(crm, "r1", "follow_up/k-retry")
    assert "kind" in _refused(lambda: crm.records.create(
        r1, "follow_up", {**FOLLOW_UP, "kind": "nonsense", "attachment": {"upload_id": token}}))
    made = crm.records.create(r1, "follow_up", {**FOLLOW_UP, "attachment": {"upload_id": token}})
    assert made["attachment"]["key"] == "follow_up/k-retry"
    table = crm.schema.system[UPLOAD_TABLE]
    with crm.engine.connect() as conn:
        bound = conn.execute(select(table.c.record_id, table.c.field)
                             .where(table.c.token == token)).one()
    assert tuple(bound) == (made.id, "attachment")


def test_bulk_rows_cannot_share_an_upload(crm: CrmOrg) -> None:
    token = _upload(crm, "r1", "follow_up/k-bulk")
    rows = [{**FOLLOW_UP, "attachment": {"upload_id": token}}] * 2
    assert _refused(lambda: crm.records.bulk_create(crm.actor("r1"), "follow_up", rows)) == \
        {"1.attachment": NOT_ISSUED}


def test_two_writers_racing_for_one_upload_one_wins(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    token = _upload(crm, "r1", "follow_up/k-race")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def write() -> None:
        start.wait()
        try:
            crm.records.create(r1, "follow_up", {**FOLLOW_UP, "attachment": {"upload_id": token}})
            outcomes.append("done")
        except ValidationError as exc:
            outcomes.append(exc.field_errors.get("attachment", str(exc)))

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == sorted(["done", NOT_ISSUED])


def test_only_who_may_write_the_field_may_upload_to_it(crm: CrmOrg) -> None:
    from engine.errors import ForbiddenError

    with pytest.raises(ForbiddenError):   # n holds no role
        _upload(crm, "n", "follow_up/k-n")
    with pytest.raises(ValidationError):
        crm.records.register_upload(crm.actor("r1"), "follow_up", "content",
                                    storage_key="follow_up/k-c", name="x", size=1,
                                    content_type="text/plain")


# --- API (both databases) ----------------------------------------------------------------------

def _stored_key(world: World, record_id: int) -> str:  # noqa: F811
    record = world.live.current().records.get(Actor.system(), "follow_up", record_id)
    return str(record["attachment"]["key"])


def test_api_upload_download_and_no_key_anywhere(world: World) -> None:  # noqa: F811
    up = world.upload("rep1", "/follow_up/files/attachment", PDF, name="../../report.pdf",
                      content_type="application/pdf")
    assert up.status_code == 201, up.text
    assert set(up.json()) == {"upload_id", "name", "size", "content_type"}
    assert up.json()["name"] == "report.pdf"
    made = world.create("rep1", "follow_up", {**FOLLOW_UP,
                                              "attachment": {"upload_id": up.json()["upload_id"]}})
    url = f"{API}/follow_up/{made['id']}/files/attachment"
    assert made["attachment"] == {"name": "report.pdf", "size": len(PDF),
                                  "content_type": "application/pdf", "url": url}
    key = _stored_key(world, made["id"])
    for text in (world.get("rep1", f"/follow_up/{made['id']}").text,
                 world.get("rep1", "/follow_up").text,
                 world.get("rep1", f"/follow_up/{made['id']}/activity").text):
        assert key not in text and '"key"' not in text
    got = world.client.get(url, headers=world.auth("rep1"))
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment")
    assert world.client.get(url, headers=world.auth("rep3")).status_code == 404
    assert world.client.get(url).status_code == 401


def test_api_forged_and_remembered_keys_are_refused(world: World) -> None:  # noqa: F811
    up = world.upload("rep1", "/follow_up/files/attachment", PDF, name="secret.pdf",
                      content_type="application/pdf")
    token = up.json()["upload_id"]
    secret = world.create("rep1", "follow_up", {**FOLLOW_UP, "attachment": {"upload_id": token}})
    key = _stored_key(world, secret["id"])
    url = f"{API}/follow_up/{secret['id']}/files/attachment"
    # rep2 forges the key (or reuses rep1's upload id) on their own record: refused.
    mine = world.create("rep2", "follow_up", dict(FOLLOW_UP))
    for value in ({"name": "x.pdf", "key": key}, {"upload_id": token}):
        refused = world.patch("rep2", f"/follow_up/{mine['id']}",
                              {"version": mine["version"], "attachment": value})
        assert refused.status_code == 422, refused.text
        assert set(refused.json()["errors"]) == {"attachment"}
    # rep1 loses the record: the URL, the key and the upload id they remember all stop working.
    moved = world.post("admin", f"/follow_up/{secret['id']}/assign",
                       {"owner_id": world.users["rep3"]})
    assert moved.status_code == 200, moved.text
    assert world.client.get(url, headers=world.auth("rep1")).status_code == 404
    other = world.create("rep1", "follow_up", dict(FOLLOW_UP))
    for value in ({"name": "x.pdf", "key": key}, {"upload_id": token}):
        refused = world.patch("rep1", f"/follow_up/{other['id']}",
                              {"version": other["version"], "attachment": value})
        assert refused.status_code == 422
    assert world.get("rep1", f"/follow_up/{other['id']}").json()["attachment"] is None


def test_api_upload_limits(world: World) -> None:  # noqa: F811
    wrong = world.upload("rep1", "/follow_up/files/attachment", b"MZ", name="x.exe",
                         content_type="application/x-msdownload")
    assert wrong.status_code == 422 and "attachment" in wrong.json()["errors"]
    big = world.upload("rep1", "/follow_up/files/attachment", b"0" * 70_000, name="big.pdf",
                       content_type="application/pdf")
    assert big.status_code == 413
    assert world.upload("rep1", "/follow_up/files/content", PDF, name="x.pdf",
                        content_type="application/pdf").status_code == 404
    assert world.upload("idle", "/follow_up/files/attachment", PDF, name="x.pdf",
                        content_type="application/pdf").status_code == 403
    assert world.upload("rep1", "/nothing/files/attachment", PDF, name="x.pdf",
                        content_type="application/pdf").status_code == 404


def test_openapi_shows_uploads_not_keys(world: World) -> None:  # noqa: F811
    doc = world.get("rep1", "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    write = schemas["follow_up.create"]["properties"]["attachment"]
    shapes = write.get("anyOf", [write])
    assert any(s.get("required") == ["upload_id"] for s in shapes)
    read = schemas["follow_up"]["properties"]["attachment"]
    assert "key" not in str(read) and "url" in str(read)
    assert "/follow_up/files/attachment" in doc["paths"]
    assert "/follow_up/{record_id}/files/attachment" in doc["paths"]


# --- screens (the demo, SQLite) -----------------------------------------------------------------

def test_screens_never_show_or_take_a_storage_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    from starlette.testclient import TestClient

    from tests.ui.conftest import SECRET, csrf, make_demo, sign_in
    from ui.app import create_app

    db = make_demo(tmp_path_factory.mktemp("files"), rows=2)
    try:
        app = create_app(db.live, secret_key=SECRET, upload_dir=db.upload_dir)
        with TestClient(app, base_url="http://testserver") as rep:
            sign_in(rep, "rep_east1")
            kind = db.live.current().registry.entity("follow_up").field("kind").options[0].value
            form = {"csrf_token": csrf(rep), "kind": kind, "content": "Visited",
                    "happened_at": "2026-11-23T10:00"}
            ok = rep.post("/e/follow_up/new", data=form, follow_redirects=False,
                          files={"attachment": ("report.pdf", PDF, "application/pdf")})
            assert ok.status_code == 303, ok.text[:2000]
            record_id = int(ok.headers["location"].rsplit("/", 1)[1])
            record = db.live.current().records.get(Actor.system(), "follow_up", record_id)
            key = record["attachment"]["key"]
            for page in (rep.get(f"/e/follow_up/{record_id}").text,
                         rep.get(f"/e/follow_up/{record_id}/edit").text,
                         rep.get("/e/follow_up").text):
                assert key not in page and key.split("/")[-1] not in page
            assert re.search(rf'href="/e/follow_up/{record_id}/files/attachment"',
                             rep.get(f"/e/follow_up/{record_id}").text)
            # A text value posted where the file goes is not a file: nothing is attached.
            forged = rep.post("/e/follow_up/new", data={
                **form, "attachment": '{"name": "x.pdf", "key": "' + key + '"}'},
                follow_redirects=False)
            assert forged.status_code == 303
            new_id = int(forged.headers["location"].rsplit("/", 1)[1])
            assert db.live.current().records.get(Actor.system(), "follow_up",
                                                 new_id)["attachment"] is None
    finally:
        db.live.dispose()
