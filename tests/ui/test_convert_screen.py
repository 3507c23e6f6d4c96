"""The convert screen: a Convert button on a lead, the review page (mapped values editable,
optional target tickable, existing matches offered), CSRF, zh-CN, refusals redrawn."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]


def _lead(db: DemoDB, phone: str, **values: object) -> int:
    return make_record(db, "lead", {"company_name": "Garden Cafe", "contact_name": "Ms Zhou",
                                    "phone": phone, "channel": "street", "status": "qualified",
                                    **values}, owner="rep_east1")


def _row(db: DemoDB, entity: str, record_id: int) -> dict[str, object]:
    runtime = db.live.current()
    table = runtime.schema.table(entity)
    with runtime.engine.connect() as conn:
        return dict(conn.execute(select(table).where(table.c.id == record_id)).one()._mapping)


def test_convert_button_review_and_run(client_for: Client, demo_db: DemoDB) -> None:
    lead = _lead(demo_db, "13700001001", grade="B")
    rep = client_for("rep_east1", lang="zh-CN")
    page = rep.get(f"/e/lead/{lead}")
    url = f"/e/lead/{lead}/convert/lead_to_customer"
    assert f'href="{url}"' in page.text and "转化为客户" in page.text
    review = rep.get(url)
    assert review.status_code == 200
    assert 'name="customer--name" type="text" value="Garden Cafe"' in review.text
    assert 'name="contact--name" type="text" value="Ms Zhou"' in review.text
    assert 'name="include.opportunity" value="1">' in review.text   # optional, unticked
    assert "customer--source_lead" not in review.text                # the engine fills links
    assert "也创建此记录" in review.text and "不会带入" in review.text  # grade: read-only
    # Without the CSRF token nothing happens.
    assert rep.post(url, data={"customer--name": "X"}).status_code == 403
    done = rep.post(url, data={"csrf_token": csrf(rep), "customer--name": "Garden Cafe Ltd",
                               "customer--phone": "13700001001", "contact--name": "Zhou Li",
                               "include.opportunity": "1", "opportunity--name": "First order"},
                    follow_redirects=False)
    assert done.status_code == 303, done.text[:2000]
    customer = int(re.fullmatch(r"/e/customer/(\d+)", done.headers["location"]).group(1))  # type: ignore[union-attr]
    row = _row(demo_db, "customer", customer)
    assert (row["name"], row["source_lead"]) == ("Garden Cafe Ltd", lead)
    assert _row(demo_db, "lead", lead)["status"] == "converted"
    landed = rep.get(f"/e/customer/{customer}")
    assert "Garden Cafe Ltd" in landed.text and "转化" in landed.text   # feed: by conversion
    # The lead has no Convert button any more, and a second run is refused in Chinese.
    assert f'href="{url}"' not in rep.get(f"/e/lead/{lead}").text
    again = rep.post(url, data={"csrf_token": csrf(rep)})
    assert again.status_code == 409 and "已经转化过" in again.text


def test_required_value_missing_redraws_with_the_input(client_for: Client,
                                                      demo_db: DemoDB) -> None:
    lead = _lead(demo_db, "13700001002")
    rep = client_for("rep_east1")
    url = f"/e/lead/{lead}/convert/lead_to_customer"
    bad = rep.post(url, data={"csrf_token": csrf(rep), "customer--name": "Kept Name",
                              "contact--name": ""})
    assert bad.status_code == 422
    assert 'id="w-contact--name-error" class="field-error">is required' in bad.text
    assert 'value="Kept Name"' in bad.text
    assert _row(demo_db, "lead", lead)["status"] == "qualified"


def test_existing_customer_offered_and_attached(client_for: Client, demo_db: DemoDB) -> None:
    held = make_record(demo_db, "customer", {"name": "Old Garden", "phone": "137 0000 1003"},
                       owner="rep_east1")
    lead = _lead(demo_db, "+86 137-0000-1003")
    rep = client_for("rep_east1")
    url = f"/e/lead/{lead}/convert/lead_to_customer"
    review = rep.get(url)
    assert f'name="attach.customer" value="{held}"' in review.text and "Old Garden" in review.text
    twin = rep.post(url, data={"csrf_token": csrf(rep), "customer--name": "Garden Cafe",
                               "customer--phone": "+86 137-0000-1003", "contact--name": "Zhou",
                               "attach.customer": ""})
    assert twin.status_code == 422 and f"#{held}" in twin.text       # names the holder
    done = rep.post(url, data={"csrf_token": csrf(rep), "customer--name": "Garden Cafe",
                               "customer--phone": "+86 137-0000-1003", "contact--name": "Zhou",
                               "attach.customer": str(held)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/e/customer/{held}"
    assert _row(demo_db, "customer", held)["source_lead"] == lead


def test_forbidden_and_unknown(client_for: Client, demo_db: DemoDB) -> None:
    lead = _lead(demo_db, "13700001004")
    other = client_for("rep_west1")
    assert other.get(f"/e/lead/{lead}/convert/lead_to_customer").status_code == 404
    rep = client_for("rep_east1")
    assert rep.get(f"/e/lead/{lead}/convert/nope").status_code == 404
    customer = make_record(demo_db, "customer", {"name": "Not a lead"}, owner="rep_east1")
    assert rep.get(f"/e/customer/{customer}/convert/lead_to_customer").status_code == 404
