"""``home_pools`` answers for a batch what ``home_pool`` answers record by record (the
pool a record last left, else the entity's only pool), in one statement, on both
databases: the capacity check of a batch assignment reads it."""

from __future__ import annotations

from engine.actor import Actor
from engine.workflow.pools import home_pool, home_pools
from tests.integration.workflow.conftest import World


def test_home_pools_of_a_batch_equal_home_pool_of_each_record(world: World) -> None:
    rep = world.actor("rep_east1")
    returned = world.held_by("customer", "rep_east1")[:3]
    for record_id in returned:
        world.pools.return_to_pool(rep, "customer", record_id, reason="no answer")
    never_pooled = world.held_by("customer", "rep_east2")[:2]  # no ledger row with a pool
    ids = [*returned, *never_pooled]
    with world.records.transaction(Actor.system("test")) as tx:
        plan = world.records.plan("customer")
        one_by_one = {i: home_pool(tx, plan, i).name for i in ids}
        batch = {i: pool.name for i, pool in home_pools(tx, plan, ids).items()}
    assert batch == one_by_one
    assert list(batch) == ids and set(batch.values()) == {"customer_pool"}
