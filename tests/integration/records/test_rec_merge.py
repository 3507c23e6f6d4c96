"""Merge and its undo (issue 10, deliverable 4) on the seeded CRM org, SQLite and PostgreSQL.

A merge then its undo leaves every table as it was (a dump of each entity and
system table compared before and after; only versions move forward and the
ledger and its two feed entries stay); references are re-pointed while the
merge stands; forbidden and malformed merges write nothing; an undo that would
overwrite a later edit is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from engine.errors import (
    ForbiddenError,
    MergeConflictError,
    MergedRecordError,
    NotFoundError,
    ValidationError,
)
from engine.permissions.shares import share_record
from engine.records.merge import MERGE, UNMERGE, choose_values
from engine.storage.database import make_engine, write_transaction
from engine.storage.merge_tables import MERGE_TABLE, MERGED_TABLE
from engine.storage.stage_tables import STAGE_HISTORY_TABLE
from engine.workflow import install
from engine.workflow.pools import PoolService
from tests.integration.permissions._crm_org import NOW, CrmOrg, seed_crm
from tests.integration.permissions.conftest import module_db_url  # noqa: F401 - fixture
from tests.integration.records.test_rec_concurrency import race

SKIP_TABLES = {MERGE_TABLE, MERGED_TABLE, "tp_policy_version"}


@pytest.fixture(scope="module")
def crm(module_db_url: str) -> Iterator[CrmOrg]:  # noqa: F811 - the imported fixture
    engine = make_engine(module_db_url)
    try:
        org = seed_crm(engine)
        install(org.records)   # the pool ledger and the other workflow hooks
        yield org
    finally:
        engine.dispose()


def dump(crm: CrmOrg) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every entity and system table (versions and the merge ledger aside)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    tables = {**crm.schema.tables, **crm.schema.system}
    with crm.engine.connect() as conn:
        for name, table in sorted(tables.items()):
            if name in SKIP_TABLES:
                continue
            columns = [c for c in table.columns if c.name != "version"]
            stmt = select(*columns).order_by(*table.primary_key.columns)
            if name == "tp_activity":  # the merge's and the undo's own entries stay
                stmt = stmt.where(table.c.kind.not_in((MERGE, UNMERGE)))
            out[name] = [tuple(r) for r in conn.execute(stmt)]
    return out


def _pointing(crm: CrmOrg, table: str, entity: str, record_id: int) -> int:
    t = crm.schema.system[table]
    with crm.engine.connect() as conn:
        return len(conn.execute(select(t.c.record_id).where(
            t.c.entity == entity, t.c.record_id == record_id)).all())


def test_merge_repoints_everything_and_undo_restores_the_database(crm: CrmOrg) -> None:
    a = crm.actor("a")
    records = crm.records
    keep = records.create(a, "customer", {"name": "Acme", "owner_id": crm.users["r1"]})
    twin = records.create(a, "customer", {"name": "ACME Ltd", "phone": "13000000003",
                                          "licence_no": "91310000MA1FL0009X",
                                          "owner_id": crm.users["r1"]})
    pooled = crm.id("customer", "pool1")
    PoolService(records).claim(crm.actor("r1"), "customer", pooled)   # a pool-ledger row
    contact = records.create(a, "contact", {"name": "Chen", "customer": twin.id})
    deal = records.create(a, "opportunity", {"name": "Big deal", "customer": pooled})
    records.comment(a, "customer", twin.id, "met at the fair")
    with write_transaction(crm.engine) as conn:
        share_record(conn, crm.schema.table("customer"), twin.id, access="read",
                     user_id=crm.users["r3"])
    before = dump(crm)
    survivor_version = records.get(a, "customer", keep.id).version

    seen: list[Any] = []
    records.hooks.in_transaction(lambda tx, events: seen.extend(events))
    done = records.merge(a, "customer", keep.id, [twin.id, pooled],
                         values={"name": twin.id})
    moved = [e for e in seen if e.entity == "contact" and e.record_id == contact.id]
    assert [(e.before["customer"], e.after["customer"]) for e in moved] == \
        [(twin.id, keep.id)]                              # rollups see the move
    survivor = records.get(a, "customer", keep.id)
    assert survivor["name"] == "ACME Ltd"                 # chosen
    assert survivor["phone"] == "13000000003"             # the newest non-empty one
    assert survivor["licence_no"] == "91310000MA1FL0009X"  # taken from a tombstone
    assert records.get(a, "contact", contact.id)["customer"] == keep.id
    assert records.get(a, "opportunity", deal.id)["customer"] == keep.id
    assert _pointing(crm, "tp_share", "customer", twin.id) == 0
    assert _pointing(crm, "tp_share", "customer", keep.id) == 1
    assert _pointing(crm, "tp_pool_event", "customer", pooled) == 0
    assert _pointing(crm, "tp_pool_event", "customer", keep.id) >= 1
    feed = records.activity(a, "customer", keep.id)
    assert feed[0].kind == MERGE and feed[0].body == f"#{twin.id}, #{pooled}"
    assert any(e.body == "met at the fair" for e in feed)  # the twin's feed came along
    for gone in (twin.id, pooled):
        with pytest.raises(MergedRecordError) as caught:
            records.get(a, "customer", gone)
        assert caught.value.survivor_id == keep.id
    with pytest.raises(ForbiddenError):                    # a tombstone leaves by undo only
        records.restore(a, "customer", twin.id)

    undone = records.undo_merge(a, "customer", done.id)
    assert undone.undone_at is not None
    assert dump(crm) == before
    assert records.get(a, "customer", keep.id).version > survivor_version
    assert records.activity(a, "customer", keep.id)[0].kind == UNMERGE
    with pytest.raises(MergeConflictError):
        records.undo_merge(a, "customer", done.id)


def test_stage_history_moves_with_the_merge(crm: CrmOrg) -> None:
    a = crm.actor("a")
    anchor = crm.id("customer", "anchor")
    one = crm.records.create(a, "opportunity", {"name": "One", "customer": anchor})
    two = crm.records.create(a, "opportunity", {"name": "Two", "customer": anchor})
    before = dump(crm)
    done = crm.records.merge(a, "opportunity", one.id, [two.id])
    assert _pointing(crm, STAGE_HISTORY_TABLE, "opportunity", two.id) == 0
    assert _pointing(crm, STAGE_HISTORY_TABLE, "opportunity", one.id) == 2
    crm.records.undo_merge(a, "opportunity", done.id)
    assert dump(crm) == before


@pytest.mark.parametrize("login, merged, error", [
    ("r1", "r2", ForbiddenError),            # a rep holds no merge grant
    ("sn", "r3", NotFoundError),             # a south lead is outside north's scope
    ("ss", "r1", ForbiddenError),            # shared for writing, never for deleting
])
def test_forbidden_merges_write_nothing(crm: CrmOrg, login: str, merged: str,
                                        error: type[Exception]) -> None:
    before = dump(crm)
    actor = crm.actor(login)
    survivor = crm.id("lead", "ss" if login == "ss" else login)
    with pytest.raises(error):
        crm.records.merge(actor, "lead", survivor, [crm.id("lead", merged)])
    assert dump(crm) == before


@pytest.mark.parametrize("survivor, merged, field", [
    ("r1", ["r1"], "merged_ids"),            # the survivor in its own merge
    ("r1", [], "merged_ids"),                # one record: nothing to merge
    ("r1", ["r2", "r2"], "merged_ids"),
    ("r1", ["0"], "merged_ids"),
])
def test_malformed_merges_are_refused(crm: CrmOrg, survivor: str, merged: list[str],
                                      field: str) -> None:
    ids = [0 if m == "0" else crm.id("lead", m) for m in merged]
    with pytest.raises(ValidationError) as caught:
        crm.records.merge(crm.actor("a"), "lead", crm.id("lead", survivor), ids)
    assert field in caught.value.field_errors


def test_unknown_ids_and_other_entities_are_not_found(crm: CrmOrg) -> None:
    a = crm.actor("a")
    before = dump(crm)
    with pytest.raises(NotFoundError):
        crm.records.merge(a, "lead", crm.id("lead", "r1"), [10**9])
    with pytest.raises(NotFoundError):          # a customer's id is no lead
        crm.records.merge(a, "lead", crm.id("lead", "r1"), [crm.id("customer", "anchor")
                                                           + 10**6])
    with pytest.raises(NotFoundError):          # deleted records are not merged
        crm.records.merge(a, "lead", crm.id("lead", "r1"), [crm.id("lead", "del_r1")])
    with pytest.raises(ValidationError) as caught:
        crm.records.merge(a, "lead", crm.id("lead", "r1"), [crm.id("lead", "r2")],
                          values={"nope": 1, "company_name": 10**9,
                                  "phone": {"value": "not a phone"}})
    assert set(caught.value.field_errors) == {"nope", "company_name", "phone"}
    with pytest.raises(ForbiddenError):        # no recycle bin: no tombstones
        crm.records.merge(a, "follow_up", crm.id("follow_up", "r1"),
                          [crm.id("follow_up", "r2")])
    rows = {1: {"updated_at": NOW, "attachment": None}, 2: {"updated_at": NOW,
                                                           "attachment": None}}
    with pytest.raises(ValidationError) as caught:   # a typed-in file could name any file
        choose_values(crm.records.plan("follow_up"), rows, survivor_id=1,
                      chosen={"attachment": {"value": {"storage_key": "x", "name": "a",
                                                       "size": 1, "content_type": "a/b"}}},
                      writable=frozenset({"attachment"}))
    assert "attachment" in caught.value.field_errors
    with pytest.raises(NotFoundError):
        crm.records.undo_merge(a, "lead", 10**9)
    assert dump(crm) == before


def test_undo_refuses_to_overwrite_a_later_edit(crm: CrmOrg) -> None:
    a = crm.actor("a")
    records = crm.records
    keep = records.create(a, "lead", {"company_name": "Keep", "channel": "sem",
                                      "status": "new", "phone": "13100000006"})
    twin = records.create(a, "lead", {"company_name": "Twin", "channel": "sem",
                                      "status": "new", "phone": "13100000007"})
    won = records.create(a, "customer", {"name": "Won from the twin", "source_lead": twin.id})
    done = records.merge(a, "lead", keep.id, [twin.id], values={"company_name": twin.id})
    assert records.get(a, "customer", won.id)["source_lead"] == keep.id
    other = crm.id("lead", "r2")
    records.update(a, "customer", won.id, {"source_lead": other},
                   version=records.get(a, "customer", won.id).version)
    current = records.get(a, "lead", keep.id)
    records.update(a, "lead", keep.id, {"company_name": "Renamed"}, version=current.version)
    with pytest.raises(MergeConflictError) as caught:
        records.undo_merge(a, "lead", done.id)
    assert str(keep.id) in str(caught.value)
    current = records.get(a, "lead", keep.id)
    records.update(a, "lead", keep.id, {"company_name": "Twin", "notes": "kept"},
                   version=current.version)
    records.undo_merge(a, "lead", done.id)      # other fields' edits stay
    back = records.get(a, "lead", keep.id)
    assert (back["company_name"], back["phone"], back["notes"]) == \
        ("Keep", "13100000006", "kept")
    assert records.get(a, "lead", twin.id)["phone"] == "13100000007"
    assert records.get(a, "customer", won.id)["source_lead"] == other   # a later move stays



def test_two_merges_of_one_record_at_once_one_wins(crm: CrmOrg) -> None:
    a = crm.actor("a")
    records = crm.records
    left, right, twin = (records.create(a, "customer", {"name": f"Race {n}"}).id
                         for n in ("left", "right", "twin"))
    results = race(lambda: records.merge(a, "customer", left, [twin]),
                   lambda: records.merge(a, "customer", right, [twin]))
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], (NotFoundError, MergeConflictError)), lost[0]
    with pytest.raises(MergedRecordError) as caught:
        records.get(a, "customer", twin)
    assert caught.value.survivor_id == won[0].survivor_id
    with crm.engine.connect() as conn:
        ledger = crm.schema.system[MERGE_TABLE]
        assert conn.execute(select(ledger.c.id).where(
            ledger.c.merged_ids.isnot(None), ledger.c.survivor_id.in_((left, right)))
        ).all() == [(won[0].id,)]
