"""Pool limits counted inside the claiming UPDATE: capacity (push and pull), daily claims,
previous-owner cooldown, new-record protection; and under real concurrency."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from engine.errors import NotFoundError, PoolLimitError, TidepoolError
from engine.metadata.model import Condition, PoolLimits
from tests.integration.workflow.conftest import World, WorldFactory
from tests.support.statements import statements_sent


def _limit_of(call: Callable[[], object]) -> str:
    with pytest.raises(PoolLimitError) as exc:
        call()
    return exc.value.limit


def test_capacity_counts_what_the_rep_holds(make_world: WorldFactory) -> None:
    probe = make_world()
    held = len(probe.held_by("customer", "rep_east1"))
    world = make_world(customer_pool=PoolLimits(max_held=held + 1))
    rep = world.actor("rep_east1")
    first, second = world.pooled("customer")[:2]
    world.pools.claim(rep, "customer", first)
    assert _limit_of(lambda: world.pools.claim(rep, "customer", second)) == "max_held"
    # Push draws on the same capacity: a leader cannot assign past it either.
    sup = world.actor("sup_east")
    assert _limit_of(lambda: world.pools.assign(sup, "customer", second,
                                                owner_id=rep.user_id or 0)) == "max_held"
    assert world.row("customer", second)["owner_id"] is None
    # Giving one back frees a slot.
    world.pools.return_to_pool(rep, "customer", first, reason="not interested")
    world.pools.claim(rep, "customer", second)


def test_records_matching_held_excludes_do_not_count(make_world: WorldFactory) -> None:
    probe = make_world()
    mine = probe.held_by("customer", "rep_east1")
    limits = PoolLimits(max_held=len(mine), held_excludes=(Condition("grade", "eq", "A"),))
    world = make_world(customer_pool=limits)
    rep = world.actor("rep_east1")
    table = world.records.schema.table("customer")
    with world.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id.in_(mine)).values(grade="B"))
    target = world.pooled("customer")[0]
    assert _limit_of(lambda: world.pools.claim(rep, "customer", target)) == "max_held"
    with world.engine.begin() as conn:  # one held record is won business now: it stops counting
        conn.execute(update(table).where(table.c.id == mine[0]).values(grade="A"))
    assert world.pools.claim(rep, "customer", target)["owner_id"] == rep.user_id


# 11:30 in Shanghai, and 01:30 the next day there (the UTC date still the day before):
# on SQLite the day's start was compared as its wall time in UTC, so claims made
# between midnight and 08:00 in Shanghai were not counted.
@pytest.mark.parametrize("utc_hour", [3, 17])
def test_daily_claims_restart_at_midnight_in_the_pool_time_zone(
        make_world: WorldFactory, utc_hour: int) -> None:
    world = make_world(customer_pool=PoolLimits(daily_claims=2, time_zone="Asia/Shanghai"))
    day = world.clock.now.date() + timedelta(days=1)
    world.clock.now = datetime(day.year, day.month, day.day, utc_hour, 30, tzinfo=UTC)
    rep = world.actor("rep_east1")
    a, b, c = world.pooled("customer")[:3]
    world.pools.claim(rep, "customer", a)
    world.pools.claim(rep, "customer", b)
    assert _limit_of(lambda: world.pools.claim(rep, "customer", c)) == "daily_claims"
    # Another rep has their own count.
    world.pools.claim(world.actor("rep_east2"), "customer", c)
    world.pools.return_to_pool(world.actor("rep_east2"), "customer", c, reason="swap")
    world.clock.advance(days=1)
    assert world.pools.claim(rep, "customer", c)["owner_id"] == rep.user_id


def test_previous_owner_waits_out_the_cooldown(make_world: WorldFactory) -> None:
    world = make_world(customer_pool=PoolLimits(reclaim_cooldown_days=3))
    rep, other = world.actor("rep_east1"), world.actor("rep_east2")
    record_id = world.pooled("customer")[0]
    world.pools.claim(rep, "customer", record_id)
    world.pools.return_to_pool(rep, "customer", record_id, reason="no budget")
    assert _limit_of(lambda: world.pools.claim(rep, "customer", record_id)) == \
        "reclaim_cooldown_days"
    world.clock.advance(days=2)
    assert _limit_of(lambda: world.pools.claim(rep, "customer", record_id)) == \
        "reclaim_cooldown_days"
    world.clock.advance(days=1, hours=1)
    world.pools.claim(rep, "customer", record_id)
    # Losing it to a recycle counts as a loss too.
    world.pools.recycle(world.actor("sup_east"), "customer", record_id, reason="idle")
    assert _limit_of(lambda: world.pools.claim(rep, "customer", record_id)) == \
        "reclaim_cooldown_days"
    world.pools.claim(other, "customer", record_id)


def test_new_records_are_protected_for_some_hours(make_world: WorldFactory) -> None:
    world = make_world(customer_pool=PoolLimits(new_record_hours=4))
    rep = world.actor("rep_east1")
    record_id = world.pooled("customer")[0]  # created just now by the demo
    assert _limit_of(lambda: world.pools.claim(rep, "customer", record_id)) == \
        "new_record_hours"
    world.clock.advance(hours=5)
    world.pools.claim(rep, "customer", record_id)
    world.pools.return_to_pool(rep, "customer", record_id, reason="wrong region")
    # Back in the pool: protected again from the moment it re-entered.
    other = world.actor("rep_east2")
    assert _limit_of(lambda: world.pools.claim(other, "customer", record_id)) == \
        "new_record_hours"
    # A leader may still assign it.
    world.pools.assign(world.actor("sup_east"), "customer", record_id,
                       owner_id=other.user_id or 0)


def _race(count: int, work: Callable[[int], object]) -> tuple[list[object], list[Exception]]:
    """Run ``work(i)`` in ``count`` threads released together; results and refusals."""
    gate = threading.Barrier(count)
    done: list[object] = []
    refused: list[Exception] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        gate.wait()
        try:
            result = work(i)
        except TidepoolError as exc:
            with lock:
                refused.append(exc)
        else:
            with lock:
                done.append(result)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, refused


def test_fifty_concurrent_claims_of_one_record_leave_one_owner(world: World) -> None:
    record_id = world.pooled("customer")[0]
    people = [world.actor(login) for login in
              ("rep_east1", "rep_east2", "rep_west1", "sup_east", "sup_west", "manager")]
    done, refused = _race(50, lambda i: world.pools.claim(people[i % len(people)],
                                                          "customer", record_id))
    assert len(done) == 1, refused
    assert len(refused) == 49
    assert all(isinstance(e, (PoolLimitError, NotFoundError)) for e in refused)
    owner = world.row("customer", record_id)["owner_id"]
    assert owner == done[0]["owner_id"]  # type: ignore[index]
    claims = [e for e in world.ledger("customer", record_id) if e["kind"] == "claim"]
    assert [e["to_owner"] for e in claims] == [owner]
    feed = world.records.activity(world.actor("admin"), "customer", record_id)
    assert sum(1 for e in feed if e.kind == "claim") == 1


def test_one_below_capacity_twenty_concurrent_claims_one_succeeds(
        make_world: WorldFactory) -> None:
    probe = make_world()
    mine = set(probe.held_by("customer", "rep_east1"))
    others = [i for i in probe.held_by("customer", "rep_west1") +
              probe.held_by("customer", "rep_east2") if i not in mine]
    probe.put_in_pool("customer", *others)
    targets = probe.pooled("customer")[:20]
    assert len(targets) == 20
    world = make_world(customer_pool=PoolLimits(max_held=len(mine) + 1))
    rep = world.actor("rep_east1")
    done, refused = _race(20, lambda i: world.pools.claim(rep, "customer", targets[i]))
    assert len(done) == 1
    assert sorted({e.limit for e in refused if isinstance(e, PoolLimitError)}) == ["max_held"]
    assert len(refused) == 19
    assert len(world.held_by("customer", "rep_east1")) == len(mine) + 1


def test_a_plain_assignment_respects_capacity_too(make_world: WorldFactory) -> None:
    probe = make_world()
    held = len(probe.held_by("customer", "rep_east2"))
    world = make_world(customer_pool=PoolLimits(max_held=held))
    record_id = world.held_by("customer", "rep_east1")[0]
    assert _limit_of(lambda: world.records.assign(world.actor("sup_east"), "customer",
                                                  record_id, world.uid("rep_east2"))) \
        == "max_held"
    assert world.row("customer", record_id)["owner_id"] == world.uid("rep_east1")


def test_concurrent_locks_at_the_cap_leave_one(make_world: WorldFactory) -> None:
    world = make_world(customer_pool=PoolLimits(max_locked=1))
    rep = world.actor("rep_east1")
    mine = world.held_by("customer", "rep_east1")[:6]
    done, refused = _race(len(mine), lambda i: world.pools.lock(rep, "customer", mine[i]))
    assert len(done) == 1
    assert {e.limit for e in refused if isinstance(e, PoolLimitError)} == {"max_locked"}
    table = world.records.schema.system["tp_pool_lock"]
    with world.engine.connect() as conn:
        from sqlalchemy import func, select

        assert conn.execute(select(func.count()).select_from(table)).scalar() == 1


def test_the_capacity_count_stops_one_past_the_cap(make_world: WorldFactory) -> None:
    """The guard's count walks at most max_held + 1 held records: enough for ``held <
    max_held`` (a claim) and ``held > max_held`` (an assignment past the cap), where a full
    count read every record of a rep holding tens of thousands. The refusals are the same."""
    from sqlalchemy import select

    from engine.workflow.limits import held_count

    probe = make_world()
    held = len(probe.held_by("customer", "rep_east1"))
    assert held >= 4
    world = make_world(customer_pool=PoolLimits(max_held=2))
    rep = world.actor("rep_east1")
    pool = world.records.schema.registry.pools["customer_pool"]
    plan = world.records.plan("customer")
    entity = world.records.schema.registry.entity("customer")
    with statements_sent(world.engine) as seen, world.engine.connect() as conn:
        counted = conn.execute(select(held_count(plan, entity, pool, world.uid("rep_east1"))))
        assert counted.scalar() == 3
    # The owner is written in: PostgreSQL plans the count for this owner, not once for
    # every owner (where a LIMIT could make that plan a whole-table scan).
    assert re.search(rf"owner_id = {world.uid('rep_east1')}\b", seen[-1][0]), seen[-1]
    target = world.pooled("customer")[0]
    assert _limit_of(lambda: world.pools.claim(rep, "customer", target)) == "max_held"
    assert _limit_of(lambda: world.pools.assign(world.actor("sup_east"), "customer", target,
                                                owner_id=rep.user_id or 0)) == "max_held"
    record_id = world.held_by("customer", "rep_east2")[0]
    assert _limit_of(lambda: world.records.assign(world.actor("sup_east"), "customer",
                                                  record_id, world.uid("rep_east1"))) \
        == "max_held"
