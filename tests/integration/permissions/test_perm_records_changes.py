"""Changes that move scopes, seen through the records service at once or at the next stamp.

Moving a user or a department, deactivating a user (no login, no session, no
token, no rows), a role given in one process and seen by another policy
instance once it reads the version stamp, and an administrator viewing as a
user: the same rows, nothing written, the look recorded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from engine.actor import Actor
from engine.errors import AuthenticationError, ForbiddenError, NotFoundError, ValidationError
from engine.permissions.identity import (
    authenticate,
    deactivate_user,
    get_user,
    reactivate_user,
    session_is_valid,
    set_password,
)
from engine.permissions.org import move_department, move_user
from engine.permissions.policy_store import bind_role, unbind_role
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.tokens import create_token, verify_token
from engine.permissions.view_as import view_as, view_as_log
from engine.records import ListQuery, RecordService
from engine.storage.database import write_transaction
from tests.integration.permissions._crm_org import NOW, CrmOrg, seed_crm

PASSWORD = "rep-one-password"


@pytest.fixture
def crm(db_engine: Engine) -> Iterator[CrmOrg]:
    # check_interval=0: every call reads the stamps, as a process right after a change.
    yield seed_crm(db_engine, check_interval=0)


def _keys(crm: CrmOrg, login: str, entity: str = "lead",
          records: RecordService | None = None) -> set[str]:
    records = records or crm.records
    page = records.list(crm.actor(login), entity, ListQuery(limit=200))
    return crm.keys(entity, (r.id for r in page.rows))


def test_moving_a_user_moves_their_records_between_scopes_at_once(crm: CrmOrg) -> None:
    slow = CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW, check_interval=3600)
    slow_records = RecordService(engine=crm.engine, schema=crm.schema, policy=slow)
    assert "r1" in _keys(crm, "sn", "customer") and "r1" not in _keys(crm, "ss", "customer")
    assert "r1" in _keys(crm, "sn", "customer", records=slow_records)
    with write_transaction(crm.engine) as conn:
        move_user(conn, crm.users["r1"], department_id=crm.departments["south"])
    assert "r1" not in _keys(crm, "sn", "customer") and "r1" in _keys(crm, "ss", "customer")
    # Out at once even where the org snapshot is an hour old: membership is read in SQL.
    assert "r1" not in _keys(crm, "sn", "customer", records=slow_records)
    assert "r1" in _keys(crm, "ms", "customer")          # the south manager's subtree grew
    rid = crm.id("customer", "r1")
    with pytest.raises(NotFoundError):
        crm.records.get(crm.actor("sn"), "customer", rid)


def test_moving_a_department_moves_its_subtree_between_scopes(crm: CrmOrg) -> None:
    # A second "process" that only reads the stamps every hour.
    slow = CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW, check_interval=3600)
    slow_records = RecordService(engine=crm.engine, schema=crm.schema, policy=slow)
    assert "r5" not in _keys(crm, "ms", records=slow_records)
    with write_transaction(crm.engine) as conn:
        move_department(conn, crm.departments["north_key"],
                        new_parent_id=crm.departments["south"])
    # This process reloads the org at once. The slow one lists the subtree's owners
    # from its older snapshot, checked against who sits there now: it shows less,
    # never more, until it reads the new stamp.
    assert "r5" in _keys(crm, "ms") and "r5" in _keys(crm, "m")
    assert _keys(crm, "ms", records=slow_records) <= _keys(crm, "ms")
    slow.cache.refresh()
    assert "r5" in _keys(crm, "ms", records=slow_records)
    # Moving the anchor itself (south under north) changes its path: this process
    # reloads the org at once; the slow one keeps the old path, which now matches no
    # department, so it shows less (never more) until it reads the new stamp.
    with write_transaction(crm.engine) as conn:
        move_department(conn, crm.departments["south"], new_parent_id=crm.departments["north"])
    assert {"r3", "r4", "ss", "r5"} <= _keys(crm, "ms")
    stale = _keys(crm, "ms", records=slow_records)
    assert not {"r3", "r4", "ss"} & stale and stale <= _keys(crm, "ms")
    slow.cache.refresh()
    assert _keys(crm, "ms", records=slow_records) == _keys(crm, "ms")
    assert "r3" not in _keys(crm, "sn")   # a department scope does not take sub-departments


def test_a_deactivated_user_cannot_sign_in_and_their_sessions_and_tokens_stop(
        crm: CrmOrg) -> None:
    uid = crm.users["r1"]
    with write_transaction(crm.engine) as conn:
        user = set_password(conn, uid, PASSWORD)
        _, token = create_token(conn, uid, name="phone")
    assert authenticate(crm.engine, "r1", PASSWORD).id == uid
    epoch = user.session_epoch
    with crm.engine.connect() as conn:
        assert session_is_valid(conn, uid, epoch)
    with write_transaction(crm.engine) as conn:
        assert verify_token(conn, token).id == uid
    assert "r1" in _keys(crm, "r1")
    with write_transaction(crm.engine) as conn:
        deactivate_user(conn, uid)
    with pytest.raises(AuthenticationError) as refused:
        authenticate(crm.engine, "r1", PASSWORD)
    assert refused.value.reason == "inactive"
    with crm.engine.connect() as conn:
        assert not session_is_valid(conn, uid, epoch)
        assert not session_is_valid(conn, uid, get_user(conn, uid).session_epoch)
    with pytest.raises(AuthenticationError) as refused, write_transaction(crm.engine) as conn:
        verify_token(conn, token)
    assert refused.value.reason == "inactive"
    # An Actor built before the deactivation (a request in flight) gets nothing either.
    actor = Actor(user_id=uid, login="r1")
    for call in (lambda: crm.records.list(actor, "lead"),
                 lambda: crm.records.get(actor, "lead", crm.id("lead", "r1"))):
        with pytest.raises(ForbiddenError):
            call()
    with write_transaction(crm.engine) as conn:
        reactivate_user(conn, uid)
    with crm.engine.connect() as conn:
        assert not session_is_valid(conn, uid, epoch)   # old sessions stay ended
    assert "r1" in _keys(crm, "r1")


def test_a_role_given_in_one_process_reaches_another_at_its_next_stamp_check(
        crm: CrmOrg) -> None:
    other = CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW, check_interval=3600)
    other_records = RecordService(engine=crm.engine, schema=crm.schema, policy=other)
    assert _keys(crm, "r1", records=other_records) == _keys(crm, "r1")
    reloads = other.cache.reloads
    with write_transaction(crm.engine) as conn:
        bind_role(conn, user_id=crm.users["r1"], role="supervisor", domain="org",
                  registry=crm.registry)
    widened = _keys(crm, "r1")
    assert {"r2", "sn", "n"} <= widened                      # this process: at once
    assert not {"r2", "sn"} & _keys(crm, "r1", records=other_records)   # not checked yet
    other.cache.refresh()
    assert other.cache.reloads == reloads + 1
    assert _keys(crm, "r1", records=other_records) == widened
    with write_transaction(crm.engine) as conn:
        unbind_role(conn, user_id=crm.users["r1"], role="supervisor", domain="org")
    other.cache.refresh()
    assert not {"r2", "sn"} & _keys(crm, "r1", records=other_records)


def test_an_admin_views_as_a_user_read_only_and_the_look_is_logged(crm: CrmOrg) -> None:
    admin = crm.actor("a")
    with write_transaction(crm.engine) as conn:
        as_r1 = view_as(conn, admin=admin, user_id=crm.users["r1"])
    assert as_r1.user_id == crm.users["r1"] and as_r1.login == "r1"
    assert as_r1.impersonator_id == crm.users["a"] and as_r1.is_impersonated
    assert as_r1.roles == ("rep",)
    records = crm.records
    for entity in ("lead", "customer", "follow_up"):
        seen = {r.id for r in records.list(as_r1, entity, ListQuery(limit=200)).rows}
        own = {r.id for r in records.list(crm.actor("r1"), entity, ListQuery(limit=200)).rows}
        assert seen == own, entity
    customer = records.get(as_r1, "customer", crm.id("customer", "r1"))
    assert "annual_revenue" not in customer            # r1's field permissions too
    with pytest.raises(ForbiddenError) as refused:
        records.update(as_r1, "customer", customer.id, {"name": "X"}, version=customer.version)
    assert "viewing as r1" in str(refused.value)
    with pytest.raises(ForbiddenError):
        records.create(as_r1, "lead", {"company_name": "X", "phone": "13900000000",
                                       "channel": "sem", "status": "new"})
    assert records.get(Actor.system(), "customer", customer.id)["name"] == customer["name"]
    with crm.engine.connect() as conn:
        (entry,) = view_as_log(conn, user_id=crm.users["r1"])
    assert entry.admin_id == crm.users["a"] and entry.body == "a viewed as r1"


@pytest.mark.parametrize(("who", "target", "error"), [
    ("sn", "r1", ForbiddenError),     # a supervisor is not an administrator
    ("r1", "r2", ForbiddenError),
    ("a", "a", ValidationError),      # oneself
    ("a", "d", ValidationError),      # deactivated: sees nothing
    ("a", "nobody", NotFoundError),
])
def test_view_as_is_refused_to_non_admins_and_for_pointless_targets(
        crm: CrmOrg, who: str, target: str, error: type[Exception]) -> None:
    user_id = crm.users.get(target, 10**9)
    with pytest.raises(error), write_transaction(crm.engine) as conn:
        view_as(conn, admin=crm.actor(who), user_id=user_id)
    with crm.engine.connect() as conn:
        assert view_as_log(conn) == []


def test_view_as_cannot_be_chained_or_started_by_the_system(crm: CrmOrg) -> None:
    with write_transaction(crm.engine) as conn:
        as_m = view_as(conn, admin=crm.actor("a"), user_id=crm.users["m"])
    for actor in (as_m, Actor.system()):
        with pytest.raises(ForbiddenError), write_transaction(crm.engine) as conn:
            view_as(conn, admin=actor, user_id=crm.users["r1"])
    with crm.engine.connect() as conn:
        assert len(view_as_log(conn)) == 1
