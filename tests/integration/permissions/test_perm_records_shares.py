"""Shares and sharing rules through the records service, with the CRM app's roles.

Shares: with a user or a department (and everything below it), read or write,
expiring, revoked; a share opens read/export/update and never delete. Sharing
rules: the CRM's A-grade customers for every manager, and rules written for the
test (write access, narrowed to departments), evaluated on every query.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.errors import ForbiddenError, NotFoundError, ValidationError
from engine.metadata.parse import registry_from_document
from engine.permissions import _tables as t
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.shares import revoke_share, share_record, shares_of
from engine.records import ListQuery, RecordService
from engine.storage.database import write_transaction
from tests.integration.permissions._crm_org import NOW, CrmOrg, crm_registry, seed_crm


@pytest.fixture
def crm(db_engine: Engine) -> Iterator[CrmOrg]:
    yield seed_crm(db_engine)


def _ids(crm: CrmOrg, login: str, entity: str) -> set[int]:
    page = crm.records.list(crm.actor(login), entity, ListQuery(limit=200))
    return {r.id for r in page.rows}


def _outcome(call: Any) -> str:
    try:
        call()
    except NotFoundError:
        return "not found"
    except ForbiddenError:
        return "forbidden"
    return "done"


def test_a_user_share_opens_read_then_write_but_never_delete(crm: CrmOrg) -> None:
    records, ss = crm.records, crm.actor("ss")     # supervisor south: deletes in south only
    rid = crm.id("contact", "r1")                  # a north contact
    assert rid not in _ids(crm, "ss", "contact")
    with write_transaction(crm.engine) as conn:
        share = share_record(conn, crm.schema.table("contact"), rid, access="read",
                             user_id=crm.users["ss"], created_by=crm.users["r1"])
    assert rid in _ids(crm, "ss", "contact")
    assert records.get(ss, "contact", rid).id == rid
    version = records.get(ss, "contact", rid).version
    assert _outcome(lambda: records.update(ss, "contact", rid, {"title": "CEO"},
                                           version=version)) == "forbidden"
    with write_transaction(crm.engine) as conn:   # sharing again replaces the access
        again = share_record(conn, crm.schema.table("contact"), rid, access="write",
                             user_id=crm.users["ss"])
        assert again.id == share.id and len(shares_of(conn, "contact", rid)) == 1
    assert records.update(ss, "contact", rid, {"title": "CEO"}, version=version)["title"] == "CEO"
    assert _outcome(lambda: records.delete(ss, "contact", rid)) == "forbidden"
    with write_transaction(crm.engine) as conn:
        revoke_share(conn, share.id)
    assert _outcome(lambda: records.get(ss, "contact", rid)) == "not found"


def test_a_department_share_reaches_the_department_and_below_only(crm: CrmOrg) -> None:
    rid = crm.id("lead", "r3")                    # a south lead
    with write_transaction(crm.engine) as conn:
        share_record(conn, crm.schema.table("lead"), rid, access="read",
                     department_id=crm.departments["north"])
    for login, sees in (("r1", True), ("sn", True), ("r5", True),   # north and north_key
                        ("m", True), ("ms", True), ("ss", True),    # their own scopes
                        ("r4", False), ("r2", True), ("n", False)):  # n holds no role
        if login == "n":
            assert _outcome(lambda: crm.records.get(crm.actor("n"), "lead", rid)) == \
                "forbidden"
            continue
        assert (rid in _ids(crm, login, "lead")) is sees, login


def test_a_share_lapses_at_its_expiry(crm: CrmOrg) -> None:
    rid = crm.id("customer", "r4")
    with write_transaction(crm.engine) as conn:
        share_record(conn, crm.schema.table("customer"), rid, access="read",
                     user_id=crm.users["r1"], expires_at=NOW + dt.timedelta(hours=1),
                     now=NOW)
    clock = {"now": NOW}
    policy = CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: clock["now"])
    records = RecordService(engine=crm.engine, schema=crm.schema, policy=policy)
    r1 = policy.actor_for(crm.users["r1"], login="r1")
    assert records.get(r1, "customer", rid).id == rid
    clock["now"] = NOW + dt.timedelta(hours=1)     # the same memoised clause, a later "now"
    assert _outcome(lambda: records.get(r1, "customer", rid)) == "not found"
    assert rid not in {r.id for r in records.list(r1, "customer").rows}


@pytest.mark.parametrize(("change", "field"), [
    ({"user_id": None}, "grantee"),
    ({"department_id": 1}, "grantee"),
    ({"access": "delete"}, "access"),
    ({"expires_at": NOW - dt.timedelta(seconds=1)}, "expires_at"),
    ({"expires_at": dt.datetime(2031, 1, 1)}, "expires_at"),
    ({"record_id": 10**9}, "record_id"),
    ({"user_id": 10**9}, "user_id"),
])
def test_bad_shares_are_refused_and_nothing_is_written(crm: CrmOrg, change: dict[str, Any],
                                                        field: str) -> None:
    args: dict[str, Any] = {"record_id": crm.id("lead", "r2"), "access": "read",
                            "user_id": crm.users["r1"], "now": NOW, **change}
    with write_transaction(crm.engine) as conn:
        before = conn.execute(select(t.share.c.id)).all()
    with pytest.raises(ValidationError) as refused, write_transaction(crm.engine) as conn:
        share_record(conn, crm.schema.table("lead"), args.pop("record_id"), **args)
    assert field in refused.value.field_errors
    with crm.engine.connect() as conn:
        assert conn.execute(select(t.share.c.id)).all() == before


def test_a_grade_customers_are_shared_with_every_manager_while_they_match(
        crm: CrmOrg) -> None:
    records = crm.records
    key = crm.id("customer", "r2")                # north, grade A
    other = crm.id("customer", "r1")
    ms = crm.actor("ms")                           # manager of the south subtree only
    assert key in _ids(crm, "ms", "customer") and other not in _ids(crm, "ms", "customer")
    assert key not in _ids(crm, "r1", "customer")  # reps do not get the rule
    version = records.get(ms, "customer", key).version
    assert _outcome(lambda: records.update(ms, "customer", key, {"name": "X"},
                                           version=version)) == "forbidden"
    with crm.engine.connect() as conn:
        why = crm.policy.why(conn, user_id=crm.users["ms"], entity=crm.registry.entity(
            "customer"), table=crm.schema.table("customer"), record_id=key, action="read")
    assert why.allowed and "sharing rule a_grade_customers of role manager" in why.reason
    # A record that comes to match is shared at once; one that stops matching, no more.
    system = Actor.system()
    current = records.get(system, "customer", other)
    records.update(system, "customer", other, {"grade": "A"}, version=current.version)
    assert other in _ids(crm, "ms", "customer")
    current = records.get(system, "customer", key)
    records.update(system, "customer", key, {"grade": "C"}, version=current.version)
    assert key not in _ids(crm, "ms", "customer")


def _with_rule(rule: dict[str, Any], role: str = "supervisor") -> Any:
    document = copy.deepcopy(dict(crm_registry().document))
    document["roles"][role].setdefault("sharing_rules", []).append(rule)
    return registry_from_document(document)


def test_a_write_rule_for_some_departments(db_engine: Engine) -> None:
    registry = _with_rule({"name": "fairs", "entity": "lead", "access": "write",
                           "departments": ["south"],
                           "where": [{"field": "channel", "op": "eq", "value": "trade_fair"}]})
    crm = seed_crm(db_engine, registry)
    system = Actor.system()
    fair = {crm.id("lead", k) for k in ("r1", "r5")}
    for rid in fair:
        current = crm.records.get(system, "lead", rid)
        crm.records.update(system, "lead", rid, {"channel": "trade_fair"},
                           version=current.version)
    ss = crm.actor("ss")
    assert fair <= _ids(crm, "ss", "lead")
    for rid in fair:
        version = crm.records.get(ss, "lead", rid).version
        assert crm.records.update(ss, "lead", rid, {"status": "contacting"},
                                  version=version)["status"] == "contacting"
        assert _outcome(lambda rid=rid: crm.records.delete(ss, "lead", rid)) == "forbidden"
    # r4 holds supervisor (for north_key) and sits in south: the rule reaches them too.
    assert fair <= _ids(crm, "r4", "lead")
    # sn is a supervisor outside south: r5's lead stays out of reach.
    assert _outcome(lambda: crm.records.get(crm.actor("sn"), "lead", crm.id("lead", "r5"))) \
        == "not found"
    # A lead that stops matching stops being shared.
    rid = crm.id("lead", "r5")
    current = crm.records.get(system, "lead", rid)
    crm.records.update(system, "lead", rid, {"channel": "sem"}, version=current.version)
    assert rid not in _ids(crm, "ss", "lead")
