"""Comments, assignment and exports through the records service, with real permissions."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from engine.actor import Actor
from engine.demo import prepare_demo
from engine.errors import ForbiddenError, NotFoundError, ValidationError
from engine.permissions.identity import find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.query import Filter, ListQuery
from engine.runtime import Runtime, open_runtime
from tests.conftest import REPO_ROOT


@pytest.fixture
def runtime(db_url: str) -> Iterator[Runtime]:
    prepare_demo(db_url, apps=[REPO_ROOT / "apps" / "crm"], out=io.StringIO(), rows=8)
    rt = open_runtime(db_url, policy_factory=CasbinAccessPolicy)
    yield rt
    rt.engine.dispose()


def _actor(rt: Runtime, login: str) -> Actor:
    with rt.engine.connect() as conn:
        user = find_user(conn, login)
    assert user is not None
    return rt.policy.actor_for(user.id, login=login)  # type: ignore[attr-defined]


def _owned_by(rt: Runtime, actor: Actor) -> int:
    page = rt.records.list(Actor.system(), "customer",
                           ListQuery(filters=(Filter("owner_id", "eq", actor.user_id),)))
    return page.rows[0].id


def test_comment_lands_in_the_feed_of_a_readable_record(runtime: Runtime) -> None:
    rep = _actor(runtime, "rep_east1")
    record_id = _owned_by(runtime, rep)
    runtime.records.comment(rep, "customer", record_id, "  called, <b>no</b> answer  ")
    entry = runtime.records.activity(rep, "customer", record_id)[0]
    assert (entry.kind, entry.body, entry.actor_id) == ("comment", "called, <b>no</b> answer",
                                                        rep.user_id)


def test_comment_refusals(runtime: Runtime) -> None:
    rep, other = _actor(runtime, "rep_east1"), _actor(runtime, "rep_west1")
    theirs = _owned_by(runtime, other)
    with pytest.raises(NotFoundError):
        runtime.records.comment(rep, "customer", theirs, "hello")
    with pytest.raises(ValidationError) as exc:
        runtime.records.comment(rep, "customer", _owned_by(runtime, rep), "   ")
    assert exc.value.field_errors == {"body": "is required"}
    with pytest.raises(ValidationError):
        runtime.records.comment(rep, "customer", _owned_by(runtime, rep), "x" * 10_001)


def test_assign_moves_the_owner_and_logs_it(runtime: Runtime) -> None:
    sup = _actor(runtime, "sup_east")
    rep1, rep2 = _actor(runtime, "rep_east1"), _actor(runtime, "rep_east2")
    record_id = _owned_by(runtime, rep1)
    before = runtime.records.get(sup, "customer", record_id)
    after = runtime.records.assign(sup, "customer", record_id, rep2.user_id,
                                   version=before.version)
    assert after["owner_id"] == rep2.user_id and after.version == before.version + 1
    change = runtime.records.activity(sup, "customer", record_id)[0]
    assert change.kind == "assign"
    assert (change.changes[0].field, change.changes[0].old, change.changes[0].new) == (
        "owner_id", rep1.user_id, rep2.user_id)
    with pytest.raises(NotFoundError):  # rep1 no longer sees it
        runtime.records.get(rep1, "customer", record_id)


def test_assign_refusals(runtime: Runtime) -> None:
    rep, sup = _actor(runtime, "rep_east1"), _actor(runtime, "sup_east")
    mine = _owned_by(runtime, rep)
    with pytest.raises(ForbiddenError):  # reps hold no assign grant
        runtime.records.assign(rep, "customer", mine, _actor(runtime, "rep_east2").user_id)
    west = _owned_by(runtime, _actor(runtime, "rep_west1"))
    with pytest.raises(NotFoundError):  # outside the supervisor's department
        runtime.records.assign(sup, "customer", west, rep.user_id)
    with pytest.raises(ValidationError) as exc:
        runtime.records.assign(sup, "customer", mine, 999_999)
    assert "owner_id" in exc.value.field_errors


def test_export_lists_only_what_the_grant_allows(runtime: Runtime) -> None:
    rep, sup = _actor(runtime, "rep_east1"), _actor(runtime, "sup_east")
    with pytest.raises(ForbiddenError):
        runtime.records.list(rep, "customer", action="export")
    east = {_actor(runtime, n).user_id for n in ("rep_east1", "rep_east2", "sup_east")}
    rows = runtime.records.list(sup, "customer", ListQuery(limit=200), action="export").rows
    assert rows and {r["owner_id"] for r in rows} <= east
