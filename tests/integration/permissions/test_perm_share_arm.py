"""The "shared with me" arm is compiled only for users who may have a share of the entity
(issue 13): fewer UNION arms for everyone else, the same rows for everyone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from engine.permissions.shares import revoke_share, share_record
from engine.storage.database import write_transaction
from tests.integration.permissions._crm_org import NOW, CrmOrg, seed_crm


@pytest.fixture
def crm(db_engine: Engine) -> Iterator[CrmOrg]:
    yield seed_crm(db_engine)


def _keys(crm: CrmOrg, login: str, entity: str) -> set[tuple[object, ...]]:
    table = crm.schema.table(entity)
    return {b.key for b in crm.policy.branches(crm.users[login], crm.registry.entity(entity),
                                               table, "read")}


def _ids(crm: CrmOrg, login: str, entity: str) -> set[int]:
    return {r.id for r in crm.records.list(crm.actor(login), entity).rows}


def test_no_share_arm_without_a_share_and_one_as_soon_as_there_is(crm: CrmOrg) -> None:
    # r3 (south) has no customer shared with them or their departments.
    assert ("shared",) not in _keys(crm, "r3", "customer")
    assert ("shared",) in _keys(crm, "r1", "customer")  # r1 has one
    before = _ids(crm, "r3", "customer")
    theirs = crm.id("customer", "r1")
    assert theirs not in before
    with write_transaction(crm.engine) as conn:
        share = share_record(conn, crm.schema.table("customer"), theirs, access="read",
                             user_id=crm.users["r3"], now=NOW)
    # This process sees its own share at once; others at their next stamp read.
    assert ("shared",) in _keys(crm, "r3", "customer")
    assert _ids(crm, "r3", "customer") == before | {theirs}
    assert crm.records.get(crm.actor("r3"), "customer", theirs).id == theirs
    with write_transaction(crm.engine) as conn:
        revoke_share(conn, share.id)
    # A revoked share is gone from the next query (the arm's SQL reads the share table).
    assert _ids(crm, "r3", "customer") == before


def test_a_department_share_opens_the_arm_for_everyone_below(crm: CrmOrg) -> None:
    # north_key received an opportunity share: r5 (in north_key) gets the arm, r3 (south)
    # does not.
    assert ("shared",) in _keys(crm, "r5", "opportunity")
    assert ("shared",) not in _keys(crm, "r3", "opportunity")
    assert crm.id("opportunity", "sn") in _ids(crm, "r5", "opportunity")
