"""Screen URLs and forms are parsed with the same limits as the API: a 400 for a malformed
URL parameter, a 422 naming the form field, a 404 for an id no record can have."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.security.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]
HUGE = "1e999999999"


def _ids(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'<tr id="row-(\d+)"', html)}


def test_in_filter_on_ids_means_each_id(client_for: Client, demo_db: DemoDB) -> None:
    first = make_record(demo_db, "customer", {"name": "In One"}, owner="rep_east1")
    second = make_record(demo_db, "customer", {"name": "In Two"}, owner="rep_east1")
    admin = client_for("admin")
    page = admin.get(f"/e/customer?f.id.in={first},{second}")
    assert page.status_code == 200
    assert _ids(page.text) == {first, second}
    repeated = admin.get(f"/e/customer?f.id.in={first}&f.id.in={second}")
    assert _ids(repeated.text) == {first, second}


def test_url_filters_out_of_range_are_400(client_for: Client) -> None:
    admin = client_for("admin")
    for query in (f"f.employees.eq={HUGE}", "f.employees.gt=9223372036854775808",
                  "f.id.in=1,9223372036854775808", f"f.annual_revenue.gte={HUGE}",
                  "f.source_lead.eq=99999999999999999999", "n=²", "n=99999999999",
                  "after=" + "A" * 20_000, "q=" + "x" * 5000):
        response = admin.get(f"/e/customer?{query}")
        assert response.status_code == 400, (query[:50], response.status_code)
        assert "Traceback" not in response.text


def test_path_ids_beyond_64_bits_are_404(client_for: Client) -> None:
    admin = client_for("admin")
    for path in ("/e/customer/9223372036854775808", "/e/customer/" + "9" * 5000,
                 "/e/customer/99999999999999999999/edit", "/e/customer/views/18446744073709551616",
                 "/e/opportunity/9223372036854775808/stage"):
        assert admin.get(path).status_code == 404, path[:60]


def test_form_numbers_out_of_range_name_the_field(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1")
    for field, value in (("employees", HUGE), ("employees", "9223372036854775808"),
                         ("rating", HUGE), ("source_lead", "99999999999999999999")):
        response = rep.post("/e/customer/new", data={"csrf_token": csrf(rep), "name": "Form",
                                                     field: value})
        assert response.status_code == 422, (field, value)
        # The message sits beside its own field in the re-rendered form.
        assert re.search(rf'name="{field}".*?out of range', response.text, re.DOTALL), (field, value)


def test_form_versions_that_are_not_numbers_are_refused(client_for: Client,
                                                        demo_db: DemoDB) -> None:
    record_id = make_record(demo_db, "customer", {"name": "Versions"}, owner="rep_east1")
    rep = client_for("rep_east1")
    for version in ("²", "99999999999999999999", "-1"):
        response = rep.post(f"/e/customer/{record_id}/edit",
                            data={"csrf_token": csrf(rep), "name": "V2", "version": version})
        assert response.status_code == 409, version  # stale, as any version not the record's
    deal = make_record(demo_db, "opportunity", {"name": "Deal", "customer": record_id},
                       owner="rep_east1")
    moved = rep.post(f"/e/opportunity/kanban/{deal}/move", data={
        "csrf_token": csrf(rep), "to": "won", "version": "²"})
    assert moved.status_code == 400, moved.status_code  # '²'.isdigit() is True; int() fails
    bulk = rep.post("/e/customer/bulk", data={"csrf_token": csrf(rep), "action": "assign",
                                              "ids": ["²", "99999999999999999999"],
                                              "owner": "²"})
    assert bulk.status_code in (200, 403, 422)


def test_admin_forms_read_numbers_and_ids_with_limits(client_for: Client) -> None:
    admin = client_for("admin")
    token = csrf(admin)
    for extra in ({"min": HUGE}, {"max": "1e999"}, {"max_length": "9" * 5000},
                  {"min": "nan"}, {"precision": "²"}):
        response = admin.post("/admin/entities/customer/fields/new", data={
            "csrf_token": token, "name": "shelves", "type": "integer", "label_en": "Shelves",
            **extra})
        assert response.status_code == 422, (extra, response.status_code)
        assert "a number" in response.text
    stale = admin.post("/admin/entities/customer/fields/new", data={
        "csrf_token": token, "name": "shelves", "type": "integer", "label_en": "Shelves",
        "confirm": "1", "version": "²"})
    assert stale.status_code in (200, 409, 422), stale.status_code
    for department in ("²", "99999999999999999999"):
        response = admin.post("/admin/users", data={
            "csrf_token": token, "login": "newbie2", "display_name": "New",
            "password": "a-long-enough-password", "locale": "en", "department_id": department})
        assert response.status_code == 422, (department, response.status_code)
