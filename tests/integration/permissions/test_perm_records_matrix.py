"""No path of the records service returns or touches a row the user's scopes exclude.

The CRM app's metadata, a seeded org (``_crm_org``) and ``CasbinAccessPolicy``
on SQLite and PostgreSQL. For every user x entity, the ids each path yields
are compared with the oracle's exact sets (not counts):

- reads: list (every keyset page), count, search, recycle bin, group counts,
  get (live and deleted), activity;
- writes: update, delete and assign on every id answer ``NotFoundError`` for a
  record the user cannot see, ``ForbiddenError`` for one they see but may not
  touch (or when no role grants the action at all), and pass the permission
  check otherwise, shown by the stale-version ``ConflictError`` that comes
  after it, so nothing is written;
- restore on every recycled id, done for real when allowed and undone;
- guessed ids that do not exist, and non-integer ids, are not found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from engine.actor import Actor
from engine.errors import ConflictError, ForbiddenError, NotFoundError
from engine.permissions import _owners, scopes
from engine.records import ListQuery, RecordService
from tests.integration.permissions._crm_org import (
    ENTITIES,
    NOW,
    SOFT_DELETE,
    USERS,
    CrmOrg,
    Oracle,
    _title,
    every_page,
)


def _pages(crm: CrmOrg, actor: Actor, entity: str, **query: Any) -> list[int]:
    return every_page(crm.records, actor, entity, limit=4, **query)


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except NotFoundError:
        return "not found"
    except ForbiddenError:
        return "forbidden"
    except ConflictError:
        return "allowed"   # the permission check passed; the stale version stopped the write
    return "done"


USER_IDS = sorted(USERS)
CASES = [(u, e) for u in USER_IDS for e in ENTITIES]
IDS = [f"{u}-{e}" for u, e in CASES]


@pytest.mark.parametrize(("login", "entity"), CASES, ids=IDS)
def test_reads_return_exactly_the_rows_in_scope(crm: CrmOrg, login: str, entity: str) -> None:
    oracle = Oracle(crm)
    actor = crm.actor(login)
    records = crm.records
    if not oracle.holds(login, entity, "read"):
        for call in (lambda: records.list(actor, entity), lambda: records.count(actor, entity),
                     lambda: records.get(actor, entity, crm.all_ids(entity)[0])):
            with pytest.raises(ForbiddenError):
                call()
        return
    readable = oracle.allowed(login, entity, "read")
    live = oracle.live(entity, readable)

    listed = _pages(crm, actor, entity)
    assert len(listed) == len(set(listed)), "a row came twice across pages"
    assert crm.keys(entity, listed) == crm.keys(entity, live)
    assert records.count(actor, entity) == len(live)
    blue = {i for i in live if crm.facts[(entity, i)].values.get(_title(entity), "")
            .startswith("Blue")}
    assert set(_pages(crm, actor, entity, search="blue")) == blue
    if entity in SOFT_DELETE:
        assert set(_pages(crm, actor, entity, only_deleted=True)) == \
            oracle.deleted(entity, readable)
    groups = {g.key: g.count for g in records.group_counts(actor, entity, "owner_id")}
    owners = Counter(crm.users.get(crm.facts[(entity, i)].owner or "") for i in live)
    assert groups == dict(owners)

    for rid in crm.all_ids(entity):
        seen = _outcome(lambda rid=rid: records.get(actor, entity, rid))
        assert seen == ("done" if rid in live else "not found"), (rid, crm.facts[(entity, rid)])
        with_bin = _outcome(lambda rid=rid: records.get(actor, entity, rid,
                                                        include_deleted=True))
        assert with_bin == ("done" if rid in readable else "not found"), rid
        feed = _outcome(lambda rid=rid: records.activity(actor, entity, rid))
        assert feed == ("done" if rid in readable else "not found"), rid
    for guess in (max(crm.all_ids(entity)) + 1, 10**9, 0, -1, "1", 1.0, True):
        with pytest.raises(NotFoundError):
            records.get(actor, entity, guess)  # type: ignore[arg-type]
        with pytest.raises(NotFoundError):
            records.activity(actor, entity, guess)  # type: ignore[arg-type]


@pytest.mark.parametrize(("login", "entity"), CASES, ids=IDS)
def test_writes_answer_not_found_forbidden_or_pass_for_every_id(crm: CrmOrg, login: str,
                                                                 entity: str) -> None:
    oracle = Oracle(crm)
    actor = crm.actor(login)
    records = crm.records
    readable = oracle.live(entity, oracle.allowed(login, entity, "read"))
    target = crm.users["r1"]
    calls: dict[str, Callable[[int], object]] = {
        "update": lambda rid: records.update(actor, entity, rid, {}, version=0),
        "delete": lambda rid: records.delete(actor, entity, rid, version=0),
        "assign": lambda rid: records.assign(actor, entity, rid, target, version=0),
    }
    guesses = [max(crm.all_ids(entity)) + 1, 10**9]
    for action, call in calls.items():
        holds = oracle.holds(login, entity, action)
        allowed = oracle.allowed(login, entity, action)
        for rid in crm.all_ids(entity) + guesses:
            if not holds:
                expected = "forbidden"       # the same answer for every id: nothing leaks
            elif rid not in readable:
                expected = "not found"
            elif rid not in allowed:
                expected = "forbidden"
            else:
                expected = "allowed"
            got = _outcome(lambda rid=rid, call=call: call(rid))
            assert got == expected, (action, rid, crm.facts.get((entity, rid)))


@pytest.mark.parametrize(("login", "entity"),
                         [c for c in CASES if c[1] in SOFT_DELETE],
                         ids=[i for c, i in zip(CASES, IDS, strict=True) if c[1] in SOFT_DELETE])
def test_restore_needs_delete_on_a_recycled_row_in_scope(crm: CrmOrg, login: str,
                                                          entity: str) -> None:
    oracle = Oracle(crm)
    actor = crm.actor(login)
    readable = oracle.allowed(login, entity, "read")
    deletable = oracle.allowed(login, entity, "delete")
    holds = oracle.holds(login, entity, "delete")
    for rid in crm.all_ids(entity):
        fact = crm.facts[(entity, rid)]
        if not holds:
            expected = "forbidden"
        elif not fact.deleted or rid not in readable:
            expected = "not found"
        elif rid not in deletable:
            expected = "forbidden"
        else:
            expected = "done"
        got = _outcome(lambda rid=rid: crm.records.restore(actor, entity, rid))
        if got == "done":
            crm.records.delete(Actor.system(), entity, rid)   # leave the bin as found
        assert got == expected, (rid, fact)


@pytest.mark.parametrize("login", ["m", "ms", "sn", "ss", "r4"])
def test_large_departments_use_the_walking_clause_with_the_same_rows(
        crm: CrmOrg, login: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_OWNER_LIST (SQLite) or MAX_OWNER_ARMS (PostgreSQL) owners a department
    scope walks the recent index instead of seeking each owner (a planner choice); the
    rows must not change."""
    monkeypatch.setattr(_owners, "MAX_OWNER_LIST", 0)
    monkeypatch.setattr(_owners, "MAX_OWNER_ARMS", 0)
    policy = scopes.CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW)
    records = RecordService(engine=crm.engine, schema=crm.schema, policy=policy)
    oracle = Oracle(crm)
    actor = policy.actor_for(crm.users[login], login=login)
    for entity in ENTITIES:
        expected = oracle.live(entity, oracle.allowed(login, entity, "read"))
        listed = {r.id for r in records.list(actor, entity, ListQuery(limit=200)).rows}
        assert listed == expected, entity
        assert records.count(actor, entity) == len(expected)
