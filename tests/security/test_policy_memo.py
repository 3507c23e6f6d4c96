"""The permission-branch memo never serves branches of another policy version.

Compiled row-scope branches are memoised per policy state. A thread that read
the old state and is still compiling when another thread loads the new one
must not store its (old) branches where readers of the new state look: a grant
revoked by the change would stay alive in the process until the next change.
On SQLite and PostgreSQL, with real threads and connections.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from engine.errors import ForbiddenError
from engine.permissions.policy_store import bind_role, unbind_role
from engine.records import ListQuery
from engine.storage.database import write_transaction
from tests.integration.permissions._crm_org import CrmOrg, seed_crm

ENTITY = "contact"


@pytest.fixture
def crm(db_engine: Engine) -> Iterator[CrmOrg]:
    org = seed_crm(db_engine, check_interval=0)   # every call reads the policy stamps
    with write_transaction(org.engine) as conn:  # r1 is a rep; as supervisor they see north too
        bind_role(conn, user_id=org.users["r1"], role="supervisor", registry=org.registry)
    yield org


def _visible(crm: CrmOrg) -> set[int]:
    try:
        page = crm.records.list(crm.actor("r1"), ENTITY, ListQuery(limit=200))
    except ForbiddenError:
        return set()
    return {r.id for r in page.rows}


def _revoke(crm: CrmOrg) -> None:
    with write_transaction(crm.engine) as conn:
        unbind_role(conn, user_id=crm.users["r1"], role="supervisor")


def _only_the_revoked_grant_allowed(crm: CrmOrg, before: set[int]) -> set[int]:
    fresh = _fresh_view(crm)
    return before - fresh


def _fresh_view(crm: CrmOrg) -> set[int]:
    """What r1 sees through a policy object built after the change (no memo at all)."""
    from engine.permissions.scopes import CasbinAccessPolicy
    from engine.records import RecordService

    policy = CasbinAccessPolicy(crm.engine, crm.registry, check_interval=0)
    service = RecordService(engine=crm.engine, schema=crm.schema, policy=policy)
    actor = policy.actor_for(crm.users["r1"], login="r1")
    return {r.id for r in service.list(actor, ENTITY, ListQuery(limit=200)).rows}


def test_a_list_racing_a_revocation_never_sees_the_revoked_grant_afterwards(
        crm: CrmOrg) -> None:
    before = _visible(crm)
    revoked = threading.Event()
    stop = threading.Event()
    after_lists: list[set[int]] = []
    before_lists = 0
    errors: list[BaseException] = []

    def lister() -> None:
        nonlocal before_lists
        try:
            while not stop.is_set():
                started_after = revoked.is_set()
                seen = _visible(crm)
                if started_after:
                    after_lists.append(seen)
                else:
                    before_lists += 1
        except BaseException as exc:  # noqa: BLE001  (re-raised by the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=lister) for _ in range(2)]
    for thread in threads:
        thread.start()
    while before_lists < 4 and not errors:
        threading.Event().wait(0.01)
    _revoke(crm)
    revoked.set()
    while len(after_lists) < 20 and not errors:
        threading.Event().wait(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    lost = _only_the_revoked_grant_allowed(crm, before)
    assert lost, "the supervisor grant must have shown r1 records their rep grant does not"
    assert all(not (seen & lost) for seen in after_lists)


def test_branches_built_from_the_old_policy_are_not_published_under_the_new(
        crm: CrmOrg) -> None:
    """The interleaving that used to leak, forced: thread A reads the old state and
    compiles; meanwhile the grant is revoked and thread B loads the new state; then
    A finishes. Whatever A built must not be what the new state's readers get."""
    policy = crm.policy
    real = policy._branches
    a_compiling = threading.Event()
    a_may_finish = threading.Event()
    paused: list[bool] = []

    def slow_branches(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "A" and not paused:
            paused.append(True)
            a_compiling.set()
            a_may_finish.wait(10)
        return real(*args, **kwargs)

    policy._branches = slow_branches  # type: ignore[method-assign]
    before = _visible(crm)
    policy._memo = None   # A must compile, not find the memo warm
    seen_by_a: list[set[int]] = []
    a = threading.Thread(target=lambda: seen_by_a.append(_visible(crm)), name="A")
    a.start()
    assert a_compiling.wait(10)
    _revoke(crm)
    seen_by_b = _visible(crm)          # this thread loads and publishes the new state
    a_may_finish.set()
    a.join()
    lost = _only_the_revoked_grant_allowed(crm, before)
    assert lost and seen_by_a == [before]   # A's list began before the change: old answer
    assert not seen_by_b & lost
    assert not _visible(crm) & lost         # ...and A's old branches were not kept for it
