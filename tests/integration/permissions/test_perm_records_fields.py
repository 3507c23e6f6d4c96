"""Field permissions through the records service, with the CRM app's roles.

A rep never sees a customer's annual revenue (in lists, details, payloads,
feeds, filters, sorts or sums) and may not change a customer's grade or an
opportunity's probability; roles add up, so a rep who is also a supervisor
somewhere sees and edits both. Refused writes change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from engine.actor import Actor
from engine.errors import QueryError, ValidationError
from engine.records import Filter, ListQuery, Sort
from tests.integration.permissions._crm_org import CrmOrg, seed_crm

HIDDEN = "annual_revenue"


@pytest.fixture
def crm(db_engine: Engine) -> Iterator[CrmOrg]:
    yield seed_crm(db_engine)


def test_a_hidden_field_is_absent_from_every_payload(crm: CrmOrg) -> None:
    records = crm.records
    r1 = crm.actor("r1")
    own = crm.id("customer", "r1")
    page = records.list(r1, "customer")
    assert page.rows, "r1 lists their customers"
    for row in page.rows:
        assert HIDDEN not in row and HIDDEN not in row.to_dict()
        assert f"{HIDDEN}_currency" not in row.to_dict()
        assert "name" in row and "grade" in row
    detail = records.get(r1, "customer", own)
    assert HIDDEN not in detail.to_dict() and detail["grade"] == "B"
    # A supervisor, the admin and a rep who also supervises a team see it.
    for login, key in (("sn", "r1"), ("a", "r1"), ("r4", "r4")):
        seen = records.get(crm.actor(login), "customer", crm.id("customer", key))
        assert seen[HIDDEN]["amount"] == 1000, login


def test_a_hidden_field_cannot_be_filtered_sorted_searched_or_summed(crm: CrmOrg) -> None:
    records = crm.records
    r1 = crm.actor("r1")
    for query in (ListQuery(filters=(Filter(HIDDEN, "gt", 10),)),
                  ListQuery(sort=Sort(HIDDEN, True))):
        with pytest.raises(QueryError) as refused:
            records.list(r1, "customer", query)
        assert refused.value.field == HIDDEN
    with pytest.raises(QueryError):
        records.count(r1, "customer", [Filter(HIDDEN, "is_empty")])
    with pytest.raises(QueryError):
        records.group_counts(r1, "customer", "grade", sum_field=HIDDEN)
    # The same queries are fine for someone who sees the field.
    assert records.count(crm.actor("sn"), "customer", [Filter(HIDDEN, "gt", 10)]) >= 1


def test_the_feed_leaves_out_changes_to_hidden_fields(crm: CrmOrg) -> None:
    records = crm.records
    rid = crm.id("customer", "r1")
    current = records.get(Actor.system(), "customer", rid)
    records.update(Actor.system(), "customer", rid,
                   {HIDDEN: {"amount": "2000.00", "currency": "CNY"}, "name": "Renamed"},
                   version=current.version)
    def fields_in_feed(login: str) -> set[str]:
        entries = records.activity(crm.actor(login), "customer", rid)
        return {c.field for e in entries for c in e.changes}

    assert HIDDEN not in fields_in_feed("r1") and "name" in fields_in_feed("r1")
    assert HIDDEN in fields_in_feed("sn")


def test_read_only_fields_are_refused_on_update_and_create(crm: CrmOrg) -> None:
    records = crm.records
    r1 = crm.actor("r1")
    rid = crm.id("customer", "r1")
    before = records.get(Actor.system(), "customer", rid)
    for payload, name in (({"grade": "A"}, "grade"),
                          ({HIDDEN: {"amount": "1", "currency": "CNY"}}, HIDDEN)):
        with pytest.raises(ValidationError) as refused:
            records.update(r1, "customer", rid, {**payload, "name": "Changed"},
                           version=before.version)
        assert set(refused.value.field_errors) == {name}
        assert "read-only" in refused.value.field_errors[name]
    after = records.get(Actor.system(), "customer", rid)
    assert after.version == before.version and after["name"] == before["name"]
    opp = crm.id("opportunity", "r1")
    with pytest.raises(ValidationError) as refused:
        records.update(r1, "opportunity", opp, {"probability": "0.9"},
                       version=records.get(r1, "opportunity", opp).version)
    assert set(refused.value.field_errors) == {"probability"}
    count = records.count(Actor.system(), "customer")
    with pytest.raises(ValidationError) as refused:
        records.create(r1, "customer", {"name": "New shop", "grade": "A"})
    assert set(refused.value.field_errors) == {"grade"}
    assert records.count(Actor.system(), "customer") == count
    # What is not locked goes through.
    changed = records.update(r1, "customer", rid, {"name": "Changed"}, version=before.version)
    assert changed["name"] == "Changed" and HIDDEN not in changed


def test_field_permissions_add_up_across_roles(crm: CrmOrg) -> None:
    records = crm.records
    r4 = crm.actor("r4")   # rep, and supervisor of north_key: the supervisor locks nothing
    rid = crm.id("customer", "r4")
    current = records.get(r4, "customer", rid)
    updated = records.update(r4, "customer", rid, {"grade": "A"}, version=current.version)
    assert updated["grade"] == "A" and updated[HIDDEN]["amount"] == 1000
    admin = crm.actor("a")
    policy = crm.policy
    entity = crm.registry.entity("customer")
    assert policy.hidden_fields(admin, entity) == frozenset()
    assert policy.readonly_fields(admin, entity) == frozenset()
    assert policy.hidden_fields(crm.actor("n"), entity) == frozenset(
        f.name for f in entity.fields)   # no role: nothing to see
