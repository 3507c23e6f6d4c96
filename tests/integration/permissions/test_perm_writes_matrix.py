"""The permission matrix for writes: no write produces a row outside the writer's scope.

The seeded CRM org of ``_crm_org`` on SQLite and PostgreSQL. For every user x
entity x owner (every user, active or not, and nobody), create, bulk create and
assign are allowed exactly when a plain-Python re-implementation of the rule
says so (``may_own`` below, from the registry's grants and the seeded facts,
not from the SQL the policy compiles), and a row that was written is one the
writer can read. For every user x customer id (and ids that do not exist), a
reference is accepted exactly when the user can read that customer, and the
refusal of an invisible id is word for word the refusal of an absent one.

The rule (docs/permissions.md, "Writes inside the writer's scope"): a record
the writer keeps must fall inside their ``create`` or ``assign`` scope; one
given to anyone else, or to nobody, needs the ``assign`` grant and must fall
inside its scope (``own`` / ``department`` / ``subtree`` by the new owner,
``pool`` for an unowned record in a pool they work, ``all``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.actor import Actor
from engine.errors import ForbiddenError, ValidationError
from tests.integration.permissions._crm_org import (
    ENTITIES,
    INACTIVE,
    USERS,
    CrmOrg,
    Fact,
    Oracle,
)

USER_IDS = sorted(USERS)
OWNERS: list[str | None] = [*USER_IDS, None]
CASES = [(u, e) for u in USER_IDS for e in ENTITIES]
IDS = [f"{u}-{e}" for u, e in CASES]


def may_own(oracle: Oracle, login: str, entity: str, owner: str | None, *,
            pool: str | None = None, creating: bool) -> bool:
    """Whether ``login`` may write a row of ``entity`` owned by ``owner`` (in ``pool``)."""
    if owner is not None and owner in INACTIVE:
        return False
    row = Fact(entity, "new", owner, pool, False)
    assign = oracle.grants(login, entity, "assign")
    if creating and owner == login:
        return oracle._granted(login, row, oracle.grants(login, entity, "create") + assign)
    return bool(assign) and oracle._granted(login, row, assign)


_serial = iter(range(10**6))


def _payload(crm: CrmOrg, oracle: Oracle, login: str, entity: str, n: int) -> dict[str, Any]:
    """A payload the user may write apart from its owner (no read-only field, a readable
    customer where one is required, a phone no other lead has)."""
    n = next(_serial)
    customers = sorted(oracle.live("customer", oracle.allowed(login, "customer", "read")))
    customer = customers[0] if customers else crm.id("customer", "anchor")
    return {
        "lead": {"company_name": f"W{n}", "phone": f"1390000{n:04d}", "channel": "sem",
                 "status": "new"},
        "customer": {"name": f"W{n}"},
        "contact": {"name": f"W{n}", "customer": customer},
        "opportunity": {"name": f"W{n}", "customer": customer},
        "follow_up": {"content": f"W{n}", "kind": "call",
                      "happened_at": "2026-05-01T09:00:00+00:00"},
    }[entity]


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "done", call()
    except ForbiddenError:
        return "forbidden", None
    except ValidationError as exc:
        return "refused", exc.field_errors


@pytest.mark.parametrize(("login", "entity"), CASES, ids=IDS)
def test_create_and_bulk_create_own_exactly_what_the_rules_allow(crm: CrmOrg, login: str,
                                                                 entity: str) -> None:
    oracle = Oracle(crm)
    actor = crm.actor(login)
    holds = oracle.holds(login, entity, "create")
    payloads = []
    for n, owner in enumerate(OWNERS):
        owner_id = crm.users[owner] if owner is not None else None
        payload = {**_payload(crm, oracle, login, entity, n), "owner_id": owner_id}
        payloads.append(payload)
        expected = "forbidden" if not holds else \
            "done" if may_own(oracle, login, entity, owner, creating=True) else "refused"
        got, value = _outcome(lambda p=payload: crm.records.create(actor, entity, p))
        assert got == expected, (owner, value)
        if got == "refused":
            assert set(value) == {"owner_id"}, value   # refused for its owner, nothing else
        if got == "done":
            assert value["owner_id"] == owner_id
            # The written row is inside the writer's scope: they can read it back.
            assert crm.records.get(actor, entity, value.id)["owner_id"] == owner_id
    # Bulk of the writer's own records only (nothing given away): the create scope decides.
    if holds and login not in INACTIVE:
        mine = [{**_payload(crm, oracle, login, entity, 0), "owner_id": crm.users[login]}
                for _ in range(2)]
        keeps = may_own(oracle, login, entity, login, creating=True)
        got, value = _outcome(lambda: crm.records.bulk_create(actor, entity, mine))
        assert got == ("done" if keeps else "refused"), value
        if not keeps:
            assert set(value) == {"0.owner_id", "1.owner_id"}, value
    # Bulk: one call, refused row by row for exactly the rows the rules refuse. (An
    # inactive owner is refused before anything is written, with the payload errors.)
    owners = [o for o in OWNERS if o not in INACTIVE]
    payloads = [{**_payload(crm, oracle, login, entity, 0),
                 "owner_id": crm.users[o] if o is not None else None} for o in owners]
    refused = {f"{i}.owner_id" for i, owner in enumerate(owners)
               if not may_own(oracle, login, entity, owner, creating=True)}
    got, value = _outcome(lambda: crm.records.bulk_create(actor, entity, payloads))
    if not holds:
        assert got == "forbidden"
        return
    assert got == ("refused" if refused else "done")
    if refused:
        assert set(value) == refused, value
        allowed = [p for i, p in enumerate(payloads) if f"{i}.owner_id" not in refused]
        if allowed:
            ids = crm.records.bulk_create(actor, entity, allowed)
            assert [crm.records.get(actor, entity, i)["owner_id"] for i in ids] == \
                [p["owner_id"] for p in allowed]


@pytest.mark.parametrize(("login", "entity"), CASES, ids=IDS)
def test_assign_gives_records_only_to_owners_inside_the_assign_scope(crm: CrmOrg, login: str,
                                                                    entity: str) -> None:
    oracle = Oracle(crm)
    actor = crm.actor(login)
    if not oracle.holds(login, entity, "assign"):
        with pytest.raises(ForbiddenError):
            crm.records.assign(actor, entity, crm.all_ids(entity)[0], crm.users[login])
        return
    assignable = sorted(oracle.live(entity, oracle.allowed(login, entity, "assign")))
    # One owned record and, where the user works a pool, one waiting in it.
    picks = [i for i in assignable if crm.facts[(entity, i)].owner is not None][:1] + \
        [i for i in assignable if crm.facts[(entity, i)].pool is not None][:1]
    assert picks
    system = Actor.system()
    for rid in picks:
        fact = crm.facts[(entity, rid)]
        for owner in OWNERS:
            owner_id = crm.users[owner] if owner is not None else None
            expected = may_own(oracle, login, entity, owner, pool=fact.pool, creating=False)
            got, value = _outcome(lambda owner_id=owner_id, rid=rid: crm.records.assign(
                actor, entity, rid, owner_id))
            after = crm.records.get(system, entity, rid)
            if expected:
                assert got == "done", (rid, owner, value)
                assert after["owner_id"] == owner_id
                crm.records.get(actor, entity, rid)   # still inside the writer's scope
                # Put it back as it was: assigning a pool record takes it out of its pool.
                back = crm.users[fact.owner] if fact.owner else None
                if fact.pool is None:
                    crm.records.assign(system, entity, rid, back)
                else:
                    with crm.records.transaction(system) as tx:
                        tx.reown(entity, [rid], owner_id=back, pool_id=fact.pool,
                                 kind="assign", action=None)
            else:
                assert got == "refused" and set(value) == {"owner_id"}, (rid, owner, value)
                assert after["owner_id"] == (crm.users[fact.owner] if fact.owner else None)


@pytest.mark.parametrize("login", USER_IDS)
def test_references_accept_exactly_the_records_the_writer_can_read(crm: CrmOrg,
                                                                   login: str) -> None:
    oracle = Oracle(crm)
    actor = crm.actor(login)
    if not oracle.holds(login, "contact", "create"):
        return
    readable = oracle.live("customer", oracle.allowed(login, "customer", "read"))
    # An owner the user may give contacts to: ms (manager of south, sitting in sales)
    # may not keep records of their own.
    owner = next(o for o in OWNERS if may_own(oracle, login, "contact", o, creating=True))
    owner_id = crm.users[owner] if owner is not None else None
    guesses = [max(crm.all_ids("customer")) + 10_000, 10**12]
    messages = set()
    for rid in crm.all_ids("customer") + guesses:
        got, value = _outcome(lambda rid=rid: crm.records.create(
            actor, "contact", {"name": "Ref", "customer": rid, "owner_id": owner_id}))
        if rid in readable:
            assert got == "done", (rid, value)
        else:
            assert got == "refused" and set(value) == {"customer"}, (rid, value)
            messages.add(value["customer"].replace(str(rid), "N"))
    # Deleted, invisible and absent ids all read the same: nothing to probe.
    assert messages == {"no customer with id N"}


@pytest.mark.parametrize(("login", "entity"), CASES, ids=IDS)
def test_the_owner_picker_offers_exactly_the_owners_the_write_accepts(crm: CrmOrg, login: str,
                                                                      entity: str) -> None:
    from engine.permissions.assignable import assignable_owners

    oracle = Oracle(crm)
    offered = assignable_owners(crm.policy, crm.actor(login), entity)
    accepted = {crm.users[u] for u in USER_IDS
                if may_own(oracle, login, entity, u, creating=False)}
    if offered is None:   # anyone: every active user is accepted
        assert accepted == {crm.users[u] for u in USER_IDS if u not in INACTIVE}
    else:
        assert {i for i in offered if i not in {crm.users[u] for u in INACTIVE}} == accepted
