"""Detail pages, forms and comments: related lists, the feed, 404/403, 422, 409, XSS,
file uploads and both languages."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from engine.actor import Actor
from tests.ui.conftest import DemoDB, csrf, fragment, make_record

Client = Callable[..., TestClient]


def _form(client: TestClient, **values: object) -> dict[str, object]:
    return {"csrf_token": csrf(client), **values}


def test_detail_sections_related_lists_and_feed(client_for: Client, demo_db: DemoDB) -> None:
    customer = make_record(demo_db, "customer", {"name": "Related Co", "industry": "retail"},
                           owner="rep_east1")
    mine = make_record(demo_db, "contact", {"name": "Mine Contact", "customer": customer},
                       owner="rep_east1")
    theirs = make_record(demo_db, "contact", {"name": "Their Contact", "customer": customer},
                         owner="rep_west1")
    page = client_for("rep_east1").get(f"/e/customer/{customer}")
    assert page.status_code == 200
    assert "Retail / convenience store" in page.text  # option label, not the code
    assert f'href="/e/contact/{mine}"' in page.text
    assert "Their Contact" not in page.text and f"/e/contact/{theirs}" not in page.text
    assert f'/e/contact?f.customer.eq={customer}' in page.text
    assert "created the record" in page.text
    manager = client_for("manager").get(f"/e/customer/{customer}").text
    assert "Their Contact" in manager and "Mine Contact" in manager


def test_invisible_records_are_404_and_forbidden_actions_403(client_for: Client,
                                                             demo_db: DemoDB) -> None:
    west = make_record(demo_db, "customer", {"name": "West Only"}, owner="rep_west1")
    rep = client_for("rep_east1")
    for path in (f"/e/customer/{west}", f"/e/customer/{west}/edit", "/e/nothing",
                 "/e/customer/999999", f"/e/customer/{west}/files/attachment",
                 "/e/customer/99999999999999999999"):
        assert rep.get(path).status_code == 404, path
    assert rep.post(f"/e/customer/{west}/comments", data=_form(rep, body="hi")).status_code == 404
    mine = make_record(demo_db, "customer", {"name": "East Mine"}, owner="rep_east1")
    assert rep.get(f"/e/customer/{mine}/delete").status_code == 403  # reps may not delete
    assert rep.post(f"/e/customer/{mine}/delete", data=_form(rep)).status_code == 403
    manager = client_for("manager")
    assert manager.get("/e/follow_up/new").status_code == 403  # read-only on follow-ups
    assert manager.post("/e/follow_up/new", data=_form(manager)).status_code == 403
    visit = make_record(demo_db, "follow_up", {"kind": "call", "content": "Called",
                                               "happened_at": "2026-11-02T09:00:00+00:00"},
                        owner="rep_east1")
    assert manager.get(f"/e/follow_up/{visit}").status_code == 200  # read, not update
    assert manager.get(f"/e/follow_up/{visit}/edit").status_code == 403
    assert manager.post(f"/e/follow_up/{visit}/edit",
                        data=_form(manager, content="Changed", version=1)).status_code == 403
    page = rep.get(f"/e/customer/{mine}").text
    assert f"/e/customer/{mine}/delete" not in page and f"/e/customer/{mine}/edit" in page


def test_create_with_errors_then_fix(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1")
    bad = rep.post("/e/customer/new", data=_form(
        rep, name="", phone="not a phone", website="ftp:nope", employees="many",
        **{"location.lat": "91", "location.lng": ""}))
    assert bad.status_code == 422
    errors = dict(re.findall(r'id="w-(\w+)-error" class="field-error">([^<]+)<', bad.text))
    assert {"name", "phone", "employees"} <= set(errors)
    assert errors["name"] == "is required"
    assert 'value="not a phone"' in bad.text  # what was typed stays
    htmx = rep.post("/e/customer/new", data=_form(rep, name=""), headers={"HX-Request": "true"})
    assert htmx.status_code == 422 and fragment(htmx.text) and 'id="record-form"' in htmx.text
    ok = rep.post("/e/customer/new", data=_form(
        rep, name="Fresh Co", phone="+86 21 5555 0000", industry="saas", tags=["vip"],
        **{"annual_revenue": "1,234.50", "annual_revenue.currency": "CNY",
           "location.lat": "31.2", "location.lng": "121.5"}), follow_redirects=False)
    assert ok.status_code == 303, ok.text[:2000]
    record_id = int(ok.headers["location"].rsplit("/", 1)[1])
    record = demo_db.live.current().records.get(Actor.system(), "customer", record_id)
    assert record["owner_id"] == demo_db.user_id("rep_east1")
    assert record["industry"] == "saas" and record["location"] == {"lat": 31.2, "lng": 121.5}
    assert "annual_revenue" in record and record["annual_revenue"] is None  # hidden for reps
    htmx_ok = rep.post("/e/contact/new", data=_form(rep, name="Pat", customer=str(record_id)),
                       headers={"HX-Request": "true"})
    assert htmx_ok.status_code == 204 and htmx_ok.headers["HX-Redirect"].startswith("/e/contact/")


def test_edit_shows_the_change_in_the_feed(client_for: Client, demo_db: DemoDB) -> None:
    record_id = make_record(demo_db, "customer", {"name": "Before Co", "industry": "retail"},
                            owner="rep_east1")
    rep = client_for("rep_east1")
    form = rep.get(f"/e/customer/{record_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', form).group(1)  # type: ignore[union-attr]
    assert 'name="grade"' in form and re.search(r'id="w-grade"[^>]*disabled', form)
    done = rep.post(f"/e/customer/{record_id}/edit", data=_form(
        rep, version=version, name="After Co", industry="catering", grade="A"),
        follow_redirects=False)
    assert done.status_code == 303
    page = rep.get(f"/e/customer/{record_id}").text
    assert re.search(r"Name</span>: <del>Before Co</del> → <ins>After Co</ins>", page)
    assert "<del>Retail / convenience store</del> → <ins>Catering</ins>" in page
    record = demo_db.live.current().records.get(Actor.system(), "customer", record_id)
    assert record["grade"] is None  # read-only for reps: the posted value is ignored


def test_stale_edit_is_a_clear_409(client_for: Client, demo_db: DemoDB) -> None:
    record_id = make_record(demo_db, "customer", {"name": "Race Co"}, owner="rep_east1")
    rep = client_for("rep_east1")
    form = rep.get(f"/e/customer/{record_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', form).group(1)  # type: ignore[union-attr]
    records = demo_db.live.current().records
    current = records.get(Actor.system(), "customer", record_id)
    records.update(Actor.system(), "customer", record_id, {"name": "Theirs"},
                   version=current.version)
    stale = rep.post(f"/e/customer/{record_id}/edit",
                     data=_form(rep, version=version, name="Mine"))
    assert stale.status_code == 409
    assert "Someone else changed this record" in stale.text
    assert 'value="Mine"' in stale.text and f'name="version" value="{version}"' in stale.text
    assert records.get(Actor.system(), "customer", record_id)["name"] == "Theirs"


def test_comments_and_escaping(client_for: Client, demo_db: DemoDB) -> None:
    evil = "<script>alert(1)</script>"
    record_id = make_record(demo_db, "customer", {"name": evil}, owner="rep_east1")
    rep = client_for("rep_east1")
    done = rep.post(f"/e/customer/{record_id}/comments",
                    data=_form(rep, body=f"note {evil}"), headers={"HX-Request": "true"})
    assert done.status_code == 200 and fragment(done.text) and 'id="feed"' in done.text
    for page in (done.text, rep.get(f"/e/customer/{record_id}").text,
                 rep.get("/e/customer", params={"q": "script"}).text):
        assert evil not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    empty = rep.post(f"/e/customer/{record_id}/comments", data=_form(rep, body="  "),
                     headers={"HX-Request": "true"})
    assert empty.status_code == 422 and "is required" in empty.text
    plain = rep.post(f"/e/customer/{record_id}/comments", data=_form(rep, body="plain"),
                     follow_redirects=False)
    assert plain.status_code == 303


def test_delete_with_confirmation(client_for: Client, demo_db: DemoDB) -> None:
    record_id = make_record(demo_db, "customer", {"name": "Doomed"}, owner="rep_east1")
    sup = client_for("sup_east")
    confirm = sup.get(f"/e/customer/{record_id}/delete")
    assert confirm.status_code == 200 and "Delete “Doomed”?" in confirm.text
    done = sup.post(f"/e/customer/{record_id}/delete", data=_form(sup), follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/e/customer"
    assert sup.get(f"/e/customer/{record_id}").status_code == 404
    other = make_record(demo_db, "customer", {"name": "Doomed 2"}, owner="rep_east1")
    gone = sup.delete(f"/e/customer/{other}", headers={"X-CSRF-Token": csrf(sup),
                                                       "HX-Request": "true"})
    assert gone.status_code == 204 and gone.headers["HX-Redirect"] == "/e/customer"


def test_file_upload_limits_and_download(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1")
    base = {"kind": "visit", "content": "Visited", "happened_at": "2026-11-23T10:00"}
    kinds = demo_db.live.current().registry.entity("follow_up").field("kind").options
    base["kind"] = kinds[0].value
    wrong = rep.post("/e/follow_up/new", data=_form(rep, **base),
                     files={"attachment": ("x.exe", b"MZ", "application/x-msdownload")})
    assert wrong.status_code == 422 and "file type must be one of" in wrong.text
    big = rep.post("/e/follow_up/new", data=_form(rep, **base),
                   files={"attachment": ("big.pdf", b"0" * (300 * 1024), "application/pdf")})
    assert big.status_code in (413, 422)
    ok = rep.post("/e/follow_up/new", data=_form(rep, **base),
                  files={"attachment": ("../../report.pdf", b"%PDF-1.4 hello",
                                        "application/pdf")}, follow_redirects=False)
    assert ok.status_code == 303, ok.text[:2000]
    url = ok.headers["location"]
    page = rep.get(url).text
    link = re.search(r'href="(/e/follow_up/\d+/files/attachment)"', page).group(1)  # type: ignore[union-attr]
    download = rep.get(link)
    assert download.content == b"%PDF-1.4 hello"
    assert download.headers["content-disposition"].startswith('attachment; filename="report.pdf"')
    assert client_for("rep_west1").get(link).status_code == 404
    stored = list((demo_db.upload_dir / "follow_up").iterdir())
    assert stored and all(".." not in p.name and p.parent.name == "follow_up" for p in stored)


def test_both_languages(client_for: Client, demo_db: DemoDB) -> None:
    record_id = make_record(demo_db, "customer", {"name": "Lang Co", "industry": "retail"},
                            owner="rep_east1")
    zh = client_for("rep_east1", lang="zh-CN")
    page = zh.get(f"/e/customer/{record_id}").text
    assert '<html lang="zh-CN">' in page
    assert "零售 / 便利店" in page and "客户名称" in page and "动态" in page
    assert "搜索" in zh.get("/e/customer").text
    en = client_for("rep_east1", lang="en")
    page = en.get(f"/e/customer/{record_id}").text
    assert "Retail / convenience store" in page and "Activity" in page
    switched = en.get("/e/customer?lang=zh-CN")
    assert "搜索" in switched.text and switched.cookies.get("tp_lang") == "zh-CN"
    stored = en.post("/language", data=_form(en, lang="zh-CN", next="/e/customer"),
                     follow_redirects=False)
    assert stored.headers["location"] == "/e/customer"
    from engine.permissions.identity import get_user

    with demo_db.live.engine.connect() as conn:
        assert get_user(conn, demo_db.user_id("rep_east1")).locale == "zh-CN"
