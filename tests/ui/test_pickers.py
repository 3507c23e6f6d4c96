"""User and reference pickers: search by name instead of typing ids, in list filters
and forms; lookups list only what the user may read."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, make_record

Client = Callable[..., TestClient]


def test_reference_filter_is_a_picker_showing_the_chosen_title(client_for: Client,
                                                               demo_db: DemoDB) -> None:
    customer = make_record(demo_db, "customer", {"name": "Picker Tea House"}, owner="rep_east1")
    rep = client_for("rep_east1")
    page = rep.get(f"/e/follow_up?f.customer.eq={customer}").text
    assert 'id="filter-customer" name="f.customer.eq"' in page
    assert f'<option value="{customer}" selected>Picker Tea House</option>' in page
    assert 'hx-get="/e/customer/lookup?for=filter-customer"' in page
    found = rep.get("/e/customer/lookup?for=filter-customer&find.filter-customer=Picker+Tea")
    assert f'value="{customer}"' in found.text
    hidden = client_for("rep_west1").get(
        "/e/customer/lookup?for=filter-customer&find.filter-customer=Picker+Tea")
    assert f'value="{customer}"' not in hidden.text  # not theirs to see


def test_people_lookup_and_the_user_widget(client_for: Client, demo_db: DemoDB) -> None:
    rep = client_for("rep_east1")
    found = rep.get("/people/lookup?for=owner&find.owner=rep_west")
    assert found.status_code == 200
    assert f'value="{demo_db.user_id("rep_west1")}"' in found.text
    assert f'value="{demo_db.user_id("admin")}"' not in found.text
    assert '<option value="">—</option>' in found.text
    assert client_for(None).get("/people/lookup?for=x", follow_redirects=False).status_code in (
        302, 303)
    long = rep.get("/people/lookup?for=x&find.x=" + "a" * 5000)
    assert long.status_code == 200
