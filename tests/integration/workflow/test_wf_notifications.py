"""In-app notifications from pool operations, comments and rule warnings, on both databases.

Each kind is written after commit by the workflow layer's hook and read back
through the reader's permissions: a notification about a record the reader can
no longer see is neither shown nor counted.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from engine.actor import Actor
from engine.errors import NotFoundError, ValidationError
from engine.workflow.notifications import inbox, mark_read, mentioned_logins, unread_count
from engine.workflow.rule_runner import run_rules
from tests.integration.workflow._rules_world import DAY, T0
from tests.integration.workflow._rules_world import World as RulesWorld
from tests.integration.workflow.conftest import World
from tests.integration.workflow.test_wf_rules import UNTOUCHED, Make


def _kinds(world: World, login: str) -> list[tuple[str, int]]:
    return [(n.kind, n.record_id) for n in inbox(world.records, world.actor(login))]


def test_a_leaders_assignment_tells_the_new_owner_only(world: World) -> None:
    record_id = world.pooled("customer")[0]
    world.pools.assign(world.actor("sup_east"), "customer", record_id,
                       owner_id=world.uid("rep_east2"), reason="your territory")
    [note] = inbox(world.records, world.actor("rep_east2"))
    assert (note.kind, note.record_id, note.reason, note.read) == (
        "assigned", record_id, "your territory", False)
    assert note.actor_name and note.title
    assert unread_count(world.records, world.actor("rep_east2")) == 1
    assert inbox(world.records, world.actor("sup_east")) == []   # not told of one's own act
    # A rep claiming for themselves is told nothing either.
    world.pools.claim(world.actor("rep_east1"), "customer", world.pooled("customer")[0])
    assert inbox(world.records, world.actor("rep_east1")) == []


def test_a_bulk_create_tells_only_the_owners_it_names(world: World) -> None:
    """Creating one's own records tells no one (no notification, no unit after the
    commit); a record created for someone else tells them, once."""
    sup, rep = world.actor("sup_east"), world.actor("rep_east2")
    ids = world.records.bulk_create(sup, "customer", [
        {"name": "Mine One", "owner_id": world.uid("sup_east")},
        {"name": "Theirs", "owner_id": world.uid("rep_east2")},
        {"name": "Mine Two", "owner_id": world.uid("sup_east")}])
    assert _kinds(world, "rep_east2") == [("assigned", ids[1])]
    assert inbox(world.records, sup) == []
    world.records.bulk_create(rep, "customer", [{"name": "Own A"}, {"name": "Own B"}])
    assert _kinds(world, "rep_east2") == [("assigned", ids[1])]


def test_a_claim_tells_who_returned_it(world: World) -> None:
    rep1, rep2 = world.actor("rep_east1"), world.actor("rep_east2")
    record_id = world.held_by("customer", "rep_east1")[0]
    world.pools.return_to_pool(rep1, "customer", record_id, reason="no answer")
    world.pools.claim(rep2, "customer", record_id)
    [note] = inbox(world.records, rep1)
    assert (note.kind, note.record_id, note.read) == ("claimed", record_id, False)
    assert note.actor_name   # who claimed it
    # rep_east1 can no longer read the record: told who took it, not what it is.
    assert note.title is None
    assert _kinds(world, "rep_east2") == []


def test_a_recycle_tells_the_owner_who_loses_it(world: World) -> None:
    record_id = world.held_by("customer", "rep_east1")[0]
    world.pools.recycle(world.actor("sup_east"), "customer", record_id, reason="idle")
    [shown] = inbox(world.records, world.actor("rep_east1"))
    assert (shown.kind, shown.reason) == ("taken", "idle")
    assert unread_count(world.records, world.actor("rep_east1")) == 1
    table = world.records.schema.system["tp_notification"]
    with world.engine.connect() as conn:
        [row] = conn.execute(select(table).where(table.c.user_id == world.uid("rep_east1"))).all()
    assert (row.kind, row.record_id, row.reason) == ("taken", record_id, "idle")


def test_mentions_in_comments(world: World) -> None:
    assert mentioned_logins("hi @rep_east2, and @sup_east. mail a@b.com @rep_east2") == [
        "rep_east2", "sup_east"]
    rep1 = world.actor("rep_east1")
    record_id = world.held_by("customer", "rep_east1")[0]
    world.records.comment(rep1, "customer", record_id,
                          "@sup_east please call them; @nobody @rep_east1")
    [note] = inbox(world.records, world.actor("sup_east"))
    assert (note.kind, note.record_id) == ("mention", record_id)
    assert note.reason is not None and "please call them" in note.reason
    assert inbox(world.records, rep1) == []                   # mentioning oneself: nothing
    with pytest.raises(ValidationError):                      # a failed comment tells no one
        world.records.comment(rep1, "customer", record_id, "@sup_east " + "x" * 20000)
    assert len(inbox(world.records, world.actor("sup_east"))) == 1


def test_a_notification_never_reveals_a_record_the_reader_cannot_read(world: World) -> None:
    # rep_west1 is mentioned on an east record they cannot read: nothing shown, nothing counted.
    record_id = world.held_by("customer", "rep_east1")[0]
    with pytest.raises(NotFoundError):
        world.records.get(world.actor("rep_west1"), "customer", record_id)
    world.records.comment(world.actor("rep_east1"), "customer", record_id, "cc @rep_west1")
    table = world.records.schema.system["tp_notification"]
    with world.engine.connect() as conn:
        assert conn.execute(select(table.c.kind).where(
            table.c.user_id == world.uid("rep_west1"))).scalars().all() == ["mention"]
    west = world.actor("rep_west1")
    assert inbox(world.records, west) == [] and unread_count(world.records, west) == 0


def test_a_digest_is_shown_only_when_the_reader_can_read_its_record(world: World) -> None:
    # A digest of records assigned to rep_west1 whose first record they cannot read (an
    # east customer) is neither shown nor counted; one about a record they can read is.
    east = world.held_by("customer", "rep_east1")[0]
    west = world.held_by("customer", "rep_west1")[0]
    table = world.records.schema.system["tp_notification"]
    with world.engine.begin() as conn:
        for record_id in (east, west):
            conn.execute(insert(table).values(
                user_id=world.uid("rep_west1"), kind="assigned", entity="customer",
                record_id=record_id, record_count=3, pool="customer_pool", at=T0))
    reader = world.actor("rep_west1")
    shown = inbox(world.records, reader)
    assert [(n.record_id, n.count, n.title) for n in shown] == [(west, 3, None)]
    assert unread_count(world.records, reader) == 1


def test_mark_read_and_mark_all_read_touch_only_ones_own(world: World) -> None:
    sup = world.actor("sup_east")
    ids = world.pooled("customer")[:3]
    for record_id in ids:
        world.pools.assign(sup, "customer", record_id, owner_id=world.uid("rep_east2"))
    world.records.comment(world.actor("rep_east1"), "customer",
                          world.held_by("customer", "rep_east1")[0], "@sup_east look")
    rep2 = world.actor("rep_east2")
    notes = inbox(world.records, rep2)
    assert [n.record_id for n in notes] == list(reversed(ids))   # newest first
    # Someone else's ids are not marked: sup_east's mention stays unread.
    sup_note = inbox(world.records, sup)[0]
    assert mark_read(world.records, rep2, [notes[0].id, sup_note.id], at=world.clock()) == 1
    assert unread_count(world.records, rep2) == 2
    assert unread_count(world.records, sup) == 1
    assert mark_read(world.records, rep2, at=world.clock()) == 2
    assert unread_count(world.records, rep2) == 0
    assert all(n.read for n in inbox(world.records, rep2))


def test_a_rule_warning_and_drop_tell_the_owner_once(make_rules_world: Make) -> None:
    w: RulesWorld = make_rules_world(rules=[UNTOUCHED])
    item = w.item("a1")
    owner = Actor(user_id=w.users["a1"], login="a1")
    now = T0 + 6 * DAY + timedelta(hours=12)
    run_rules(w.records, now=now)
    run_rules(w.records, now=now + timedelta(hours=1))         # the warning is told once
    assert [n.kind for n in inbox(w.records, owner)].count("assigned") == 1  # created for a1
    [warning] = [n for n in inbox(w.records, owner) if n.kind == "warning"]
    assert (warning.kind, warning.record_id, warning.rule) == ("warning", item,
                                                                "item_pool.untouched")
    assert warning.due_at is not None and warning.due_at > now
    run_rules(w.records, now=T0 + 7 * DAY + timedelta(hours=1))
    table = w.schema.system["tp_notification"]
    with w.engine.connect() as conn:
        kinds = conn.execute(select(table.c.kind, table.c.rule).where(
            table.c.user_id == w.users["a1"]).order_by(table.c.id)).all()
    assert [tuple(k) for k in kinds] == [("assigned", None), ("warning", "item_pool.untouched"),
                                         ("taken", "item_pool.untouched")]


def test_a_rule_batch_tells_each_owner_once_with_the_count(make_rules_world: Make) -> None:
    w: RulesWorld = make_rules_world(rules=[UNTOUCHED])
    mine = [w.item("a1") for _ in range(3)]
    single = w.item("a2")
    report = run_rules(w.records, now=T0 + 8 * DAY)
    assert report.moved == 4
    a1, a2 = (Actor(user_id=w.users[u], login=u) for u in ("a1", "a2"))
    [digest] = [n for n in inbox(w.records, a1) if n.kind == "taken"]
    assert (digest.count, digest.pool, digest.rule, digest.record_id) == (
        3, "item_pool", "item_pool.untouched", min(mine))
    assert digest.title is None           # a digest names no record: the screen links a list
    # A lone record of another owner: one ordinary notice about that record.
    [note] = [n for n in inbox(w.records, a2) if n.kind == "taken"]
    assert (note.count, note.record_id, note.rule) == (1, single, "item_pool.untouched")
    table = w.schema.system["tp_notification"]
    with w.engine.connect() as conn:
        taken = conn.execute(select(table.c.user_id, table.c.record_count).where(
            table.c.kind == "taken").order_by(table.c.user_id)).all()
    assert sorted(tuple(r) for r in taken) == sorted([(w.users["a1"], 3),
                                                       (w.users["a2"], None)])


def test_a_batch_in_two_units_tells_twice_and_a_failed_batch_tells_no_one(
        make_rules_world: Make) -> None:
    w: RulesWorld = make_rules_world(rules=[UNTOUCHED])
    ids = [w.item("a1") for _ in range(5)]
    assert run_rules(w.records, now=T0 + 8 * DAY, batch=2).moved == 5
    a1 = Actor(user_id=w.users["a1"], login="a1")
    counts = sorted(n.count for n in inbox(w.records, a1) if n.kind == "taken")
    assert sum(counts) == 5 and len(counts) == 3   # one digest (or notice) per batch
    # A unit that rolls back tells no one.
    more = [w.item("a2") for _ in range(2)]
    table = w.schema.system["tp_notification"]
    with w.engine.connect() as conn:
        before = conn.execute(select(table.c.id)).all()
    with pytest.raises(RuntimeError), w.records.transaction(w.system) as tx:
        tx.reown("item", more, owner_id=None, pool_id="item_pool", kind="recycle",
                 action=None, reason="cleanup")
        raise RuntimeError("abandon the unit")
    with w.engine.connect() as conn:
        assert conn.execute(select(table.c.id)).all() == before
    assert [w.owner(i) for i in ids] == [None] * 5 and [w.owner(i) for i in more] == ["a2"] * 2
