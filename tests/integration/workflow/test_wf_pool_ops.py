"""Pool operations through the real permissions: claim, return, assign, recycle, move, lock,
each one feed entry with its reason and one ledger row; the refusals."""

from __future__ import annotations

import pytest

from engine.errors import ForbiddenError, NotFoundError, PoolLimitError, ValidationError
from engine.metadata.model import PoolLimits
from tests.integration.workflow.conftest import World, WorldFactory


def test_claim_takes_the_record_out_of_the_pool(world: World) -> None:
    rep = world.actor("rep_east1")
    record_id = world.pooled("customer")[0]
    record = world.pools.claim(rep, "customer", record_id, reason="knows them")
    assert (record["owner_id"], record["pool_id"]) == (rep.user_id, None)
    row = world.row("customer", record_id)
    assert (row["owner_id"], row["pool_id"]) == (rep.user_id, None)
    entry = world.records.activity(rep, "customer", record_id)[0]
    assert (entry.kind, entry.body, entry.actor_id) == ("claim", "knows them", rep.user_id)
    assert {(c.field, c.old, c.new) for c in entry.changes} == {
        ("owner_id", None, rep.user_id), ("pool_id", "customer_pool", None)}
    [event] = world.ledger("customer", record_id)
    assert (event["kind"], event["pool"], event["from_owner"], event["to_owner"],
            event["actor_id"], event["reason"]) == (
        "claim", "customer_pool", None, rep.user_id, rep.user_id, "knows them")


def test_a_taken_record_cannot_be_claimed_again(world: World) -> None:
    record_id = world.pooled("customer")[0]
    world.pools.claim(world.actor("rep_east1"), "customer", record_id)
    # rep_east2 can no longer see it (it left the pool): the same answer as "no such record".
    with pytest.raises(NotFoundError):
        world.pools.claim(world.actor("rep_east2"), "customer", record_id)
    # a supervisor who can read it (same team) is told it is taken.
    with pytest.raises(PoolLimitError) as exc:
        world.pools.claim(world.actor("sup_east"), "customer", record_id)
    assert exc.value.limit == "taken"
    assert len(world.ledger("customer", record_id)) == 1


def test_return_needs_a_reason_and_puts_it_back(world: World) -> None:
    rep = world.actor("rep_east1")
    record_id = world.held_by("customer", "rep_east1")[0]
    for reason in ("", "   ", None):
        with pytest.raises(ValidationError) as exc:
            world.pools.return_to_pool(rep, "customer", record_id, reason=reason)  # type: ignore[arg-type]
        assert exc.value.field_errors == {"reason": "is required"}
    with pytest.raises(ValidationError):
        world.pools.return_to_pool(rep, "customer", record_id, reason="x" * 501)
    record = world.pools.return_to_pool(rep, "customer", record_id, reason="wrong number")
    assert (record["owner_id"], record["pool_id"]) == (None, "customer_pool")
    entry = world.records.activity(world.actor("admin"), "customer", record_id)[0]
    assert (entry.kind, entry.body) == ("return", "wrong number")
    assert world.ledger("customer", record_id)[-1]["kind"] == "return"
    with pytest.raises(ValidationError):
        world.pools.return_to_pool(rep, "customer", world.held_by("customer", "rep_east1")[0],
                                   reason="x", pool="lead_pool")


def test_a_rep_cannot_return_or_claim_what_is_not_theirs(world: World) -> None:
    rep = world.actor("rep_east1")
    theirs = world.held_by("customer", "rep_west1")[0]
    with pytest.raises(NotFoundError):
        world.pools.return_to_pool(rep, "customer", theirs, reason="not mine")
    with pytest.raises(NotFoundError):
        world.pools.claim(rep, "customer", theirs)
    assert world.row("customer", theirs)["owner_id"] == world.uid("rep_west1")


def test_a_rep_may_not_recycle_or_assign(world: World) -> None:
    rep = world.actor("rep_east1")
    mine = world.held_by("customer", "rep_east1")[0]
    with pytest.raises(ForbiddenError):
        world.pools.recycle(rep, "customer", mine, reason="tidy up")
    with pytest.raises(ForbiddenError):
        world.pools.assign(rep, "customer", world.pooled("customer")[0],
                           owner_id=world.uid("rep_west1"))
    with pytest.raises(ForbiddenError):
        world.pools.assign(rep, "customer", mine, owner_id=world.uid("rep_east2"))


def test_a_non_member_cannot_claim(make_world: WorldFactory) -> None:
    world = make_world()
    # the admin role is no pool member, but holds claim on "all": members are the roles named
    # in the pool; a user whose roles grant no claim at all is refused by the grant.
    with world.engine.begin() as conn:
        from engine.permissions.identity import create_user

        create_user(conn, login="outsider", display_name="Outsider", email=None,
                    locale="en", password="x" * 12, department_id=None)
    outsider = world.actor("outsider")
    with pytest.raises((ForbiddenError, NotFoundError)):
        world.pools.claim(outsider, "customer", world.pooled("customer")[0])


def test_recycle_by_the_team_leader(world: World) -> None:
    sup = world.actor("sup_east")
    record_id = world.held_by("customer", "rep_east1")[0]
    record = world.pools.recycle(sup, "customer", record_id, reason="no follow-up")
    assert (record["owner_id"], record["pool_id"]) == (None, "customer_pool")
    event = world.ledger("customer", record_id)[-1]
    assert (event["kind"], event["from_owner"], event["actor_id"]) == (
        "recycle", world.uid("rep_east1"), sup.user_id)
    other_team = world.held_by("customer", "rep_west1")[0]
    with pytest.raises(NotFoundError):
        world.pools.recycle(sup, "customer", other_team, reason="not my team")


def test_assign_within_the_team_and_from_the_pool(world: World) -> None:
    sup = world.actor("sup_east")
    held = world.held_by("customer", "rep_east1")[0]
    record = world.pools.assign(sup, "customer", held, owner_id=world.uid("rep_east2"),
                                reason="rebalance")
    assert record["owner_id"] == world.uid("rep_east2")
    assert world.ledger("customer", held)[-1]["kind"] == "assign"
    # A held record may not go to another team's rep.
    with pytest.raises(ForbiddenError):
        world.pools.assign(sup, "customer", held, owner_id=world.uid("rep_west1"))
    assert world.row("customer", held)["owner_id"] == world.uid("rep_east2")
    # From the pool, a pool admin (assign through the pool scope) hands to a pool member.
    pooled = world.pooled("customer")[0]
    record = world.pools.assign(sup, "customer", pooled, owner_id=world.uid("rep_west1"))
    assert (record["owner_id"], record["pool_id"]) == (world.uid("rep_west1"), None)
    with pytest.raises(ValidationError):
        world.pools.assign(sup, "customer", world.pooled("customer")[0], owner_id=999_999)


def test_generic_assign_takes_a_pool_record_out_of_its_pool(world: World) -> None:
    admin = world.actor("admin")
    record_id = world.pooled("customer")[0]
    record = world.records.assign(admin, "customer", record_id, world.uid("rep_east1"))
    assert (record["owner_id"], record["pool_id"]) == (world.uid("rep_east1"), None)
    [event] = world.ledger("customer", record_id)
    assert (event["kind"], event["pool"], event["to_owner"]) == (
        "assign", "customer_pool", world.uid("rep_east1"))


def test_move_between_pools_of_the_same_entity(make_world: WorldFactory) -> None:
    world = make_world()
    admin = world.actor("admin")
    record_id = world.pooled("lead")[0]
    with pytest.raises(ValidationError):
        world.pools.move(admin, "lead", record_id, to_pool="customer_pool")
    with pytest.raises(PoolLimitError):
        world.pools.move(admin, "lead", world.held_by("lead", "rep_east1")[0],
                         to_pool="lead_pool")
    same = world.pools.move(admin, "lead", record_id, to_pool="lead_pool")
    assert same["pool_id"] == "lead_pool"
    with pytest.raises(ForbiddenError):
        world.pools.move(world.actor("rep_east1"), "lead", record_id, to_pool="lead_pool")


def test_lock_caps_and_unlock(make_world: WorldFactory) -> None:
    world = make_world(customer_pool=PoolLimits(max_locked=1))
    rep = world.actor("rep_east1")
    first, second = world.held_by("customer", "rep_east1")[:2]
    world.pools.lock(rep, "customer", first, reason="big deal coming")
    with pytest.raises(PoolLimitError) as exc:
        world.pools.lock(rep, "customer", first)
    assert exc.value.limit == "locked"
    with pytest.raises(PoolLimitError) as exc:
        world.pools.lock(rep, "customer", second)
    assert exc.value.limit == "max_locked"
    with pytest.raises((ForbiddenError, NotFoundError)):
        world.pools.lock(world.actor("rep_east2"), "customer", second)
    world.pools.unlock(rep, "customer", first)
    world.pools.lock(rep, "customer", second)
    kinds = [e["kind"] for e in world.ledger("customer", first)]
    assert kinds == ["lock", "unlock"]
    # Returning a locked record releases its lock.
    world.pools.return_to_pool(rep, "customer", second, reason="done")
    world.pools.lock(rep, "customer", first)


def test_locks_need_the_pool_to_allow_them(world: World) -> None:
    rep = world.actor("rep_east1")
    with pytest.raises(ForbiddenError):
        world.pools.lock(rep, "customer", world.held_by("customer", "rep_east1")[0])


def test_deactivating_a_user_returns_their_records_at_once(world: World) -> None:
    from engine.configure.people import People

    held = world.held_by("customer", "rep_west1")
    leads = world.held_by("lead", "rep_west1")
    assert held and leads
    People(world.engine, world.registry, world.records).set_active(world.uid("rep_west1"),
                                                                    False)
    assert world.held_by("customer", "rep_west1") == []
    assert world.held_by("lead", "rep_west1") == []
    for record_id in held:
        assert world.row("customer", record_id)["pool_id"] == "customer_pool"
        event = world.ledger("customer", record_id)[-1]
        assert (event["kind"], event["rule"], event["reason"]) == ("drop", None,
                                                                   "owner deactivated")
    entry = world.records.activity(world.actor("admin"), "customer", held[0])[0]
    assert (entry.kind, entry.via) == ("drop", "deactivation")
