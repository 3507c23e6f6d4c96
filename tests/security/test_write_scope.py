"""Every write stays inside the writer's scope (issue 8, deliverable 2): service, API, screens.

Service level on the seeded CRM org of the permission tests (``_crm_org``: reps
r1/r2 in north, r3 in south, supervisor sn of north, admin a), on SQLite and
PostgreSQL. Route level through the JSON API (both databases) and the screens
(the demo, SQLite). The exhaustive user x entity x owner grid is in
tests/integration/permissions/test_perm_writes_matrix.py; these are the cases
the issue names, each one a forbidden write that used to succeed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.actor import Actor
from engine.errors import HIDDEN_HOLDER, DuplicateError, NotFoundError, ValidationError
from engine.records import RecordService
from engine.records._scope_checks import NEEDS_ASSIGN, NO_OWNER, OUTSIDE_ASSIGN
from engine.records.transaction import UnitOfWorkError
from engine.runtime import install_hooks
from engine.storage.database import make_engine
from tests.integration.permissions._crm_org import CrmOrg, seed_crm
from tests.integration.permissions.conftest import module_db_url  # noqa: F401 - fixture
from tests.ui.api.conftest import World, world  # noqa: F401 - fixture (both databases)

LICENCE_R3 = "91310000MA1FL0003C"
LICENCE_R1 = "91310000MA1FL0001A"


@pytest.fixture(scope="module")
def crm(module_db_url: str) -> Iterator[CrmOrg]:  # noqa: F811 - the imported fixture
    engine = make_engine(module_db_url)
    try:
        org = seed_crm(engine)
        system = Actor.system()
        org.records.update(system, "customer", org.id("customer", "r3"),
                           {"licence_no": LICENCE_R3},
                           version=org.records.get(system, "customer",
                                                   org.id("customer", "r3")).version)
        org.records.update(system, "customer", org.id("customer", "r1"),
                           {"licence_no": LICENCE_R1},
                           version=org.records.get(system, "customer",
                                                   org.id("customer", "r1")).version)
        yield org
    finally:
        engine.dispose()


def _count(crm: CrmOrg, entity: str) -> int:
    with crm.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(crm.schema.table(entity)))
                   .scalar_one())


def _refused(call: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.field_errors


# --- the owner on create -------------------------------------------------------------------

def test_rep_creates_only_records_they_own(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    before = _count(crm, "customer")
    for owner in (crm.users["r2"], crm.users["r3"], crm.users["a"], None):
        errors = _refused(lambda owner=owner: crm.records.create(
            r1, "customer", {"name": "Stolen", "owner_id": owner}))
        assert errors == {"owner_id": NEEDS_ASSIGN}, owner
    assert _count(crm, "customer") == before   # nothing written, not even partly
    mine = crm.records.create(r1, "customer", {"name": "Mine", "owner_id": crm.users["r1"]})
    assert mine["owner_id"] == crm.users["r1"]
    default = crm.records.create(r1, "customer", {"name": "Mine too"})
    assert default["owner_id"] == crm.users["r1"]


def test_supervisor_gives_records_only_inside_their_assign_scope(crm: CrmOrg) -> None:
    sn = crm.actor("sn")   # supervisor of north: assign on department north + the pools
    ok = crm.records.create(sn, "customer", {"name": "Team", "owner_id": crm.users["r1"]})
    assert ok["owner_id"] == crm.users["r1"]
    for owner, message in ((crm.users["r3"], OUTSIDE_ASSIGN), (crm.users["a"], OUTSIDE_ASSIGN),
                           (crm.users["r5"], OUTSIDE_ASSIGN),   # north_key: below, not in
                           (None, NO_OWNER)):
        errors = _refused(lambda owner=owner: crm.records.create(
            sn, "customer", {"name": "Elsewhere", "owner_id": owner}))
        assert errors == {"owner_id": message}, owner
    with pytest.raises(ValidationError) as caught:   # an inactive user is no owner at all
        crm.records.create(sn, "customer", {"name": "Gone", "owner_id": crm.users["d"]})
    assert "owner_id" in caught.value.field_errors


def test_admin_may_create_unowned_records(crm: CrmOrg) -> None:
    made = crm.records.create(crm.actor("a"), "customer", {"name": "Nobody's", "owner_id": None})
    assert made["owner_id"] is None


def test_bulk_create_refuses_exactly_the_rows_given_away(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    before = _count(crm, "contact")
    customer = crm.id("customer", "r1")
    rows = [{"name": "ok", "customer": customer},
            {"name": "theirs", "customer": customer, "owner_id": crm.users["r2"]},
            {"name": "mine", "customer": customer, "owner_id": crm.users["r1"]},
            {"name": "nobody", "customer": customer, "owner_id": None}]
    errors = _refused(lambda: crm.records.bulk_create(r1, "contact", rows))
    assert errors == {"1.owner_id": NEEDS_ASSIGN, "3.owner_id": NEEDS_ASSIGN}
    assert _count(crm, "contact") == before
    sn = crm.actor("sn")
    errors = _refused(lambda: crm.records.bulk_create(sn, "contact", [
        {"name": "team", "customer": customer, "owner_id": crm.users["r2"]},
        {"name": "south", "customer": customer, "owner_id": crm.users["r3"]}]))
    assert errors == {"1.owner_id": OUTSIDE_ASSIGN}
    assert _count(crm, "contact") == before


def test_rows_given_away_are_refused_before_the_hooks_and_the_insert(crm: CrmOrg) -> None:
    """A rep may not assign, so rows given away are refused from the prepared rows alone:
    before the before_insert hooks (a pool's distribution) work on them, and before any
    row is written in the unit. A unit that passes the check reaches the hooks."""
    records = install_hooks(RecordService(engine=crm.engine, schema=crm.schema,
                                          policy=crm.policy))
    reached: list[int] = []

    def spy(tx: Any, entity: str, rows: Any, at: Any) -> None:
        reached.append(len(rows))

    records.hooks.before_insert(spy)
    r1, table = crm.actor("r1"), crm.schema.table("customer")
    names = ["Hook Mine Co", "Hook Nobody Co"]
    with pytest.raises(UnitOfWorkError), records.transaction(r1) as tx:
        errors = _refused(lambda: tx.bulk_create("customer", [
            {"name": names[0]}, {"name": names[1], "owner_id": None}]))
        assert errors == {"1.owner_id": NEEDS_ASSIGN}
        written = tx.conn.execute(select(func.count()).select_from(table)
                                  .where(table.c.name.in_(names))).scalar_one()
        assert written == 0   # inside the unit: no row was inserted, even for a moment
    assert reached == []
    with pytest.raises(ValidationError), records.transaction(r1) as tx:
        tx.bulk_create("customer", [{"name": names[0]}])
        assert reached == [1]
        raise ValidationError("customer", {"name": "rolled back by the test"})


# --- assign ----------------------------------------------------------------------------------

def test_assign_checks_the_target(crm: CrmOrg) -> None:
    sn = crm.actor("sn")
    rid = crm.records.create(Actor.system(), "customer",
                             {"name": "To give", "owner_id": crm.users["r1"]}).id
    for owner, message in ((crm.users["r3"], OUTSIDE_ASSIGN), (None, NO_OWNER)):
        errors = _refused(lambda owner=owner: crm.records.assign(sn, "customer", rid, owner))
        assert errors == {"owner_id": message}
        after = crm.records.get(Actor.system(), "customer", rid)
        assert after["owner_id"] == crm.users["r1"] and after.version == 1   # rolled back
    given = crm.records.assign(sn, "customer", rid, crm.users["r2"])
    assert given["owner_id"] == crm.users["r2"]


# --- references ------------------------------------------------------------------------------

def _unseen_and_absent(crm: CrmOrg) -> tuple[int, int]:
    # r4 (south) shares nothing with r1 (north); r3's customer is shared with r1.
    return crm.id("customer", "r4"), max(crm.all_ids("customer")) + 10_000


def test_reference_to_an_invisible_record_reads_like_an_absent_one(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    hidden, absent = _unseen_and_absent(crm)
    seen = {}
    for rid in (hidden, absent):
        errors = _refused(lambda rid=rid: crm.records.create(
            r1, "contact", {"name": "Probe", "customer": rid}))
        seen[rid] = errors["customer"].replace(str(rid), "N")
    assert seen[hidden] == seen[absent] == "no customer with id N"
    ok = crm.records.create(r1, "contact", {"name": "Fine", "customer": crm.id("customer", "r1")})
    # The same on update, on a bulk row and on a stage move's values.
    for rid in (hidden, absent):
        errors = _refused(lambda rid=rid: crm.records.update(
            r1, "contact", ok.id, {"customer": rid}, version=ok.version))
        assert errors == {"customer": f"no customer with id {rid}"}
        errors = _refused(lambda rid=rid: crm.records.bulk_create(
            r1, "follow_up", [{"content": "x", "kind": "call",
                               "happened_at": "2026-05-01T09:00:00+00:00", "customer": rid}]))
        assert errors == {"0.customer": f"no customer with id {rid}"}
    deal = crm.records.create(r1, "opportunity", {"name": "Deal",
                                                  "customer": crm.id("customer", "r1")})
    rules = crm.records.stage_rules("opportunity")
    assert rules is not None
    nxt = rules.next_stages(deal["stage"])[0]
    errors = _refused(lambda: crm.records.move_stage(
        r1, "opportunity", deal.id, to=nxt, version=deal.version,
        values={"customer": hidden, "expected_close": "2026-12-31",
                "amount": {"amount": "100", "currency": "CNY"}}))
    assert errors == {"customer": f"no customer with id {hidden}"}
    assert crm.records.get(r1, "opportunity", deal.id)["stage"] == deal["stage"]


def test_a_shared_record_may_be_referenced(crm: CrmOrg) -> None:
    # r3's customer is shared with r1 for reading: r1 sees it, so may point at it.
    shared = crm.id("customer", "r3")
    made = crm.records.create(crm.actor("r1"), "contact", {"name": "Via share",
                                                            "customer": shared})
    assert made["customer"] == shared


# --- duplicates ------------------------------------------------------------------------------

def test_duplicate_names_the_holder_only_to_who_may_read_it(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    with pytest.raises(DuplicateError) as own:
        crm.records.create(r1, "customer", {"name": "Again", "licence_no": LICENCE_R1})
    assert own.value.existing_id == crm.id("customer", "r1")
    with pytest.raises(DuplicateError) as hidden:
        crm.records.create(crm.actor("r2"), "customer", {"name": "Again",
                                                         "licence_no": LICENCE_R3})
    assert hidden.value.existing_id is None
    assert HIDDEN_HOLDER in str(hidden.value)
    assert str(crm.id("customer", "r3")) not in str(hidden.value)
    errors = _refused(lambda: crm.records.bulk_create(crm.actor("r2"), "customer", [
        {"name": "Again", "licence_no": LICENCE_R3}]))
    assert errors == {"0.licence_no": f"licence_no={LICENCE_R3!r} already exists "
                                      f"({HIDDEN_HOLDER})"}
    with pytest.raises(DuplicateError) as seen_by_admin:
        crm.records.create(crm.actor("a"), "customer", {"name": "Again",
                                                        "licence_no": LICENCE_R3})
    assert seen_by_admin.value.existing_id == crm.id("customer", "r3")


# --- comments, restore -----------------------------------------------------------------------

def test_comment_and_restore_stay_inside_scope(crm: CrmOrg) -> None:
    r1 = crm.actor("r1")
    with pytest.raises(NotFoundError):
        crm.records.comment(r1, "customer", crm.id("customer", "r2"), "hello")
    crm.records.comment(r1, "customer", crm.id("customer", "r1"), "hello")
    with pytest.raises(NotFoundError):   # r3's deleted customer: not r1's to bring back
        crm.records.restore(crm.actor("sn"), "customer", crm.id("customer", "del_r3"))


# --- routes: API (both databases) ------------------------------------------------------------

def _problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json"), \
        response.text
    return response.json()  # type: ignore[no-any-return]


def test_api_refuses_owners_outside_scope(world: World) -> None:  # noqa: F811
    rep2 = world.users["rep2"]
    refused = world.post("rep1", "/customer", {"name": "Stolen", "owner_id": rep2})
    assert refused.status_code == 422
    assert _problem(refused)["errors"] == {"owner_id": NEEDS_ASSIGN}
    refused = world.post("rep1", "/customer", {"name": "Stolen", "owner_id": None})
    assert refused.status_code == 422
    made = world.create("sup_east", "customer", {"name": "Team", "owner_id": rep2})
    assert made["owner_id"] == rep2
    refused = world.post("sup_east", "/customer", {"name": "West",
                                                   "owner_id": world.users["rep3"]})
    assert refused.status_code == 422
    assert _problem(refused)["errors"] == {"owner_id": OUTSIDE_ASSIGN}
    moved = world.post("sup_east", f"/customer/{made['id']}/assign",
                       {"owner_id": world.users["rep3"]})
    assert moved.status_code == 422 and _problem(moved)["errors"] == {"owner_id": OUTSIDE_ASSIGN}
    assert world.get("admin", f"/customer/{made['id']}").json()["owner_id"] == rep2


def test_api_reference_probe_and_duplicate_leak_nothing(world: World) -> None:  # noqa: F811
    hidden = world.create("rep3", "customer", {"name": "West Co",
                                               "licence_no": "91310000MA1FL0009X"})
    absent = hidden["id"] + 10_000
    answers = []
    for rid in (hidden["id"], absent):
        response = world.post("rep1", "/contact", {"name": "Probe", "customer": rid})
        assert response.status_code == 422
        answers.append(_problem(response)["errors"]["customer"].replace(str(rid), "N"))
    assert answers[0] == answers[1]
    dup = world.post("rep1", "/customer", {"name": "Copy", "licence_no": "91310000MA1FL0009X"})
    assert dup.status_code == 409
    body = _problem(dup)
    assert "existing_id" not in body and f"id {hidden['id']}" not in dup.text
    assert HIDDEN_HOLDER in body["errors"]["licence_no"]
    dup = world.post("admin", "/customer", {"name": "Copy", "licence_no": "91310000MA1FL0009X"})
    assert dup.status_code == 409 and dup.json()["existing_id"] == hidden["id"]


# --- routes: screens (the demo, SQLite) ------------------------------------------------------

@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.ui.conftest import SECRET, make_demo
    from ui.app import create_app

    db = make_demo(tmp_path_factory.mktemp("screens"), rows=2)
    app = create_app(db.live, secret_key=SECRET, upload_dir=db.upload_dir,
                     max_upload_bytes=256 * 1024)
    yield db, app
    db.live.dispose()


def _signed_in(app: Any, login: str) -> Any:
    from starlette.testclient import TestClient

    from tests.ui.conftest import sign_in
    client = TestClient(app, base_url="http://testserver")
    client.cookies.set("tp_lang", "en")
    return sign_in(client, login)


def test_screens_refuse_invisible_references_and_hide_duplicate_holders(screens: Any) -> None:
    from tests.ui.conftest import csrf, make_record

    db, app = screens
    west = make_record(db, "customer", {"name": "West secret", "licence_no": "91310000MA1FL0007W"},
                       owner="rep_west1")
    east = _signed_in(app, "rep_east1")
    token = csrf(east)
    texts = []
    for rid in (west, west + 10_000):
        page = east.post("/e/contact/new", data={"csrf_token": token, "name": "Probe",
                                                 "customer": str(rid)})
        assert page.status_code == 422
        found = re.search(r"no customer with id \d+", page.text)
        assert found, page.text[:3000]
        texts.append(found.group(0).replace(str(rid), "N"))
    assert texts[0] == texts[1]
    page = east.post("/e/customer/new", data={"csrf_token": token, "name": "Copy",
                                              "licence_no": "91310000MA1FL0007W"})
    assert page.status_code == 422
    assert "A record you cannot see holds it" in page.text and f"#{west}" not in page.text


def test_screens_bulk_assign_refuses_targets_outside_scope(screens: Any) -> None:
    from tests.ui.conftest import csrf, make_record

    db, app = screens
    mine = make_record(db, "customer", {"name": "East team"}, owner="rep_east1")
    sup = _signed_in(app, "sup_east")
    page = sup.post("/e/customer/bulk", data={"csrf_token": csrf(sup), "action": "assign",
                                              "ids": str(mine),
                                              "owner": str(db.user_id("rep_west1"))})
    assert page.status_code in (200, 422), page.text[:2000]
    assert "you may not give records to this owner" in page.text
    # The picker offers only owners the write accepts: the supervisor's own department.
    listed = sup.get("/e/customer").text
    picker = re.search(r'<select name="owner"[^>]*>(.*?)</select>', listed, re.DOTALL)
    assert picker is not None
    offered = set(re.findall(r'<option value="(\d+)"', picker.group(1)))
    assert str(db.user_id("rep_east1")) in offered and str(db.user_id("sup_east")) in offered
    assert str(db.user_id("rep_west1")) not in offered
    record = db.live.current().records.get(Actor.system(), "customer", mine)
    assert record["owner_id"] == db.user_id("rep_east1")
