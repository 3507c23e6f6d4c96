"""A scope of several branches runs either as UNION arms or as one walk of the sort
index with the branches OR-ed (issue 13, ``scopes.WALK_MIN_SHARE``): a planner
choice made from a sample of the newest rows. Both shapes must give exactly the
oracle's rows, on every path that reads through the scope.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import pytest
from sqlalchemy import event, or_, select, text

from engine.permissions import _owners, scopes
from engine.permissions.identity import deactivate_user, reactivate_user
from engine.permissions.index import PolicyState
from engine.permissions.org import move_user, users_in_subtree
from engine.records import ListQuery, RecordService, Sort
from engine.storage.database import write_transaction
from tests.integration.permissions._crm_org import (
    ENTITIES,
    NOW,
    USERS,
    CrmOrg,
    Oracle,
    every_page,
)


def _service(crm: CrmOrg) -> tuple[scopes.CasbinAccessPolicy, RecordService]:
    # A fresh policy: the shape is memoised per policy state, so the threshold set by
    # the test must meet an empty memo.
    policy = scopes.CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW)
    return policy, RecordService(engine=crm.engine, schema=crm.schema, policy=policy)


def _pages(records: RecordService, crm: CrmOrg, login: str, entity: str,
           **query: object) -> list[int]:
    return every_page(records, crm.actor(login), entity, limit=3, **query)


@pytest.mark.parametrize("share", [0.0, 2.0], ids=["always-walk", "never-walk"])
@pytest.mark.parametrize("login", sorted(USERS))
def test_both_shapes_read_exactly_the_rows_in_scope(
        crm: CrmOrg, login: str, share: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scopes, "WALK_MIN_SHARE", share)
    policy, records = _service(crm)
    oracle = Oracle(crm)
    actor = policy.actor_for(crm.users[login], login=login)
    for entity in ENTITIES:
        if not oracle.holds(login, entity, "read"):
            continue
        readable = oracle.allowed(login, entity, "read")
        live = oracle.live(entity, readable)
        listed = _pages(records, crm, login, entity)
        assert len(listed) == len(set(listed)), (entity, "a row came twice across pages")
        assert set(listed) == live, entity
        oldest_first = Sort("updated_at", descending=False)
        assert set(_pages(records, crm, login, entity, sort=oldest_first)) == live, entity
        assert records.count(actor, entity) == len(live), entity
        for action in ("export", "update", "delete"):
            if oracle.holds(login, entity, action):
                allowed = oracle.allowed(login, entity, action)
                scope = policy.row_scope(actor, crm.registry.entity(entity),
                                         crm.schema.table(entity), action)
                table = crm.schema.table(entity)
                with crm.engine.connect() as conn:
                    got = {r[0] for r in conn.execute(
                        select(table.c.id).where(or_(*scope.branches)))} \
                        if scope.branches else set()
                assert got == allowed, (entity, action)


def test_a_broad_scope_of_several_branches_is_one_walk_with_the_owner_index_hidden(
        crm: CrmOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    """m (manager: subtree + customer pool + A-grade rule) sees most customers."""
    monkeypatch.setattr(scopes, "WALK_MIN_SHARE", 0.0)
    policy, records = _service(crm)
    entity, table = crm.registry.entity("customer"), crm.schema.table("customer")
    scope = policy.row_scope(crm.actor("m"), entity, table, "read")
    assert len(scope.branches) == 1
    sql = str(scope.branches[0].compile(crm.engine))
    assert "pool_id" in sql and "grade" in sql
    # The owner test seeks no owner index: owner_id + 0 (or IS NOT NULL) on PostgreSQL,
    # a correlated EXISTS on the user's primary key on SQLite.
    owner_test = "owner_id + " if crm.engine.dialect.name == "postgresql" else "EXISTS"
    assert owner_test in sql, sql
    assert len(policy.branches(crm.users["m"], entity, table, "read")) >= 3
    if crm.engine.dialect.name == "sqlite":
        plan = _plan(crm, records, "m")
        assert "MULTI-INDEX OR" not in plan and "ix_customer_recent" in plan, plan


def test_a_narrow_scope_keeps_its_union_arms(crm: CrmOrg,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scopes, "WALK_MIN_SHARE", 2.0)   # no sample can reach it
    policy, _ = _service(crm)
    entity, table = crm.registry.entity("customer"), crm.schema.table("customer")
    scope = policy.row_scope(crm.actor("m"), entity, table, "read")
    branches = policy.branches(crm.users["m"], entity, table, "read")
    assert scope.branches == tuple(arm for b in branches for arm in b.runs_as)
    assert len(scope.branches) >= 3


def test_the_sample_measures_the_share_of_the_newest_rows(crm: CrmOrg) -> None:
    policy, _ = _service(crm)
    table = crm.schema.table("customer")
    everything = table.c.id > 0
    assert policy._visible_share(table, everything) == 1.0
    assert policy._visible_share(table, table.c.id < 0) == 0.0
    with crm.engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM customer")).scalar_one()
        owned = conn.execute(text("SELECT count(*) FROM customer "
                                  "WHERE owner_id IS NOT NULL")).scalar_one()
    assert policy._visible_share(table, table.c.owner_id.is_not(None)) == owned / total


def _plan(crm: CrmOrg, records: RecordService, login: str) -> str:
    seen: list[tuple[str, object]] = []

    def grab(conn: object, cursor: object, statement: str, parameters: object,
             context: object, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(crm.engine, "before_cursor_execute", grab)
    try:
        records.list(crm.actor(login), "customer", ListQuery(limit=5))
    finally:
        event.remove(crm.engine, "before_cursor_execute", grab)
    statement, parameters = next(s for s in reversed(seen) if "FROM customer" in s[0])
    with crm.engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                    parameters).fetchall()  # type: ignore[arg-type]
    return "\n".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize("login", ["m", "ms", "sn", "ss", "r4"])
def test_counts_of_a_large_department_seek_the_owners_with_the_same_rows(
        crm: CrmOrg, login: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_OWNER_ARMS a department's list walks with the owner index hidden; its
    counts (no order to keep) are written so PostgreSQL can seek the owners
    (``RowScope.counting``). Lists, counts and group counts keep the oracle's rows."""
    monkeypatch.setattr(_owners, "MAX_OWNER_LIST", 0)
    monkeypatch.setattr(_owners, "MAX_OWNER_ARMS", 0)
    monkeypatch.setattr(scopes, "WALK_MIN_SHARE", 2.0)
    policy, records = _service(crm)
    oracle = Oracle(crm)
    actor = policy.actor_for(crm.users[login], login=login)
    for entity in ENTITIES:
        live = oracle.live(entity, oracle.allowed(login, entity, "read"))
        assert {r.id for r in records.list(actor, entity, ListQuery(limit=200)).rows} == live
        assert records.count(actor, entity) == len(live), entity
        owners = Counter(crm.users.get(crm.facts[(entity, i)].owner or "") for i in live)
        groups = records.group_counts(actor, entity, "owner_id")
        assert {g.key: g.count for g in groups} == dict(owners), entity


def test_a_lone_large_department_counts_through_the_owner_index_on_postgresql(
        crm: CrmOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_owners, "MAX_OWNER_ARMS", 0)
    policy, _ = _service(crm)
    entity, table = crm.registry.entity("opportunity"), crm.schema.table("opportunity")
    scope = policy.row_scope(crm.actor("m"), entity, table, "read")   # subtree only
    listed = [str(b.compile(crm.engine)) for b in scope.branches]
    if crm.engine.dialect.name == "postgresql":
        assert scope.counting is not None and len(scope.counting) == 1
        counted = str(scope.counting[0].compile(crm.engine))
        assert "owner_id IN (SELECT" in counted and "owner_id + " not in counted
        assert all("owner_id + " in sql for sql in listed)
    else:
        assert scope.counting is None


def test_only_lists_sample_the_table(crm: CrmOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes check one row at a time: their scope keeps its arms and costs no sample."""
    monkeypatch.setattr(scopes, "WALK_MIN_SHARE", 0.0)
    policy, _ = _service(crm)
    entity, table = crm.registry.entity("customer"), crm.schema.table("customer")
    sampled: list[str] = []
    monkeypatch.setattr(policy, "_visible_share",
                        lambda *a: sampled.append("x") or 1.0)  # type: ignore[func-returns-value]
    update = policy.row_scope(crm.actor("r1"), entity, table, "update")  # own + shared
    branches = policy.branches(crm.users["r1"], entity, table, "update")
    assert len(branches) >= 2 and not sampled
    assert update.branches == tuple(arm for b in branches for arm in b.runs_as)
    assert len(policy.row_scope(crm.actor("m"), entity, table, "read").branches) == 1
    assert sampled == ["x"]


# (user, department or None) moves made one after the other, each followed by a read
MOVES = [("r3", "north"), ("r1", "south"), ("r4", None)]


@pytest.mark.parametrize("viewer", ["m", "ms"])
def test_a_walk_compiled_before_an_org_change_reads_the_org_as_it_is_now(
        crm: CrmOrg, viewer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a subtree's walk tests the members read at one org stamp while the
    stamp holds (``_owners.owner_walk``; m's subtree holds every user, so it tests
    ``owner_id IS NOT NULL``). A policy whose state has not reloaded since (an hour's
    check interval) keeps that walk: each move, out of the subtree, into it and out of
    every department, and an owner's deactivation, must show at once. (A scope of one
    branch keeps its arms, which list the owners of the older snapshot: a user moved in
    shows once the state reloads, one moved out is gone at once.)"""
    monkeypatch.setattr(scopes, "WALK_MIN_SHARE", 0.0)
    policy = scopes.CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW,
                                       check_interval=3600.0)
    records = RecordService(engine=crm.engine, schema=crm.schema, policy=policy)
    oracle = Oracle(crm)
    actor = policy.actor_for(crm.users[viewer], login=viewer)
    home = dict(oracle.dept_of)

    def read_as_the_oracle_says() -> None:
        live = oracle.live("customer", oracle.allowed(viewer, "customer", "read"))
        assert set(every_page(records, actor, "customer", limit=4)) == live
        assert records.count(actor, "customer") == len(live)
        arms = oracle.live("opportunity", oracle.allowed(viewer, "opportunity", "read"))
        assert set(every_page(records, actor, "opportunity", limit=4)) <= arms

    read_as_the_oracle_says()
    entity, table = crm.registry.entity("customer"), crm.schema.table("customer")
    walk = str(policy.row_scope(actor, entity, table, "read").branches[0].compile(crm.engine))
    if crm.engine.dialect.name == "postgresql":
        assert "tp_policy_version" in walk and ("owner_id IS NOT NULL" in walk) == (
            viewer == "m"), walk
    try:
        for login, dept in MOVES:
            with write_transaction(crm.engine) as conn:
                move_user(conn, crm.users[login],
                          department_id=crm.departments[dept] if dept else None)
            oracle.dept_of[login] = dept  # type: ignore[assignment]
            read_as_the_oracle_says()
        with write_transaction(crm.engine) as conn:
            deactivate_user(conn, crm.users["r3"])   # still owns its rows, still in north
        read_as_the_oracle_says()
    finally:
        with write_transaction(crm.engine) as conn:
            reactivate_user(conn, crm.users["r3"])
            for login, _ in MOVES:
                move_user(conn, crm.users[login], department_id=crm.departments[home[login]])
    assert policy.cache.reloads == 1   # every read above ran on the walk compiled first
def _stages(crm: CrmOrg, ids: set[int]) -> Counter[str]:
    """The stage of each of ``ids``, read straight from the table (the oracle's rows)."""
    table = crm.schema.table("opportunity")
    with crm.engine.connect() as conn:
        return Counter(str(r.stage) for r in conn.execute(
            select(table.c.stage).where(table.c.id.in_(ids))))


@pytest.mark.parametrize("login", ["m", "ms", "sn"])
def test_capped_heads_of_a_large_department_join_the_members_with_the_oracles_rows(
        crm: CrmOrg, login: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kanban heads of a department past MAX_OWNER_ARMS count through the counting
    form (on PostgreSQL a semi-join on the members, issue 13): per stage, exact under
    the cap and "cap+" above it, the same rows as the oracle's."""
    monkeypatch.setattr(_owners, "MAX_OWNER_ARMS", 0)
    policy, records = _service(crm)
    oracle = Oracle(crm)
    actor = policy.actor_for(crm.users[login], login=login)
    expected = _stages(crm, oracle.live("opportunity", oracle.allowed(login, "opportunity",
                                                                      "read")))
    keys = [*sorted(expected), "no_such_stage"]
    for cap in (1, 1000):
        groups = {g.key: g for g in records.capped_group_counts(
            actor, "opportunity", "stage", keys, cap=cap, sum_field="amount")}
        assert {k: g.count for k, g in groups.items()} == {
            k: min(expected.get(k, 0), cap) for k in keys}, cap
        assert {k for k, g in groups.items() if g.capped} == {
            k for k in keys if expected.get(k, 0) > cap}, cap


def test_a_count_of_a_large_subtree_reads_the_members_as_it_runs(
        crm: CrmOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    """The counting form joins the users table as the query runs: a rep moved out of
    the manager's subtree leaves the manager's counts at once, although the policy's
    org snapshot (checked hourly here) still lists them as an owner."""
    monkeypatch.setattr(_owners, "MAX_OWNER_ARMS", 0)
    policy = scopes.CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW,
                                       check_interval=3600)
    records = RecordService(engine=crm.engine, schema=crm.schema, policy=policy)
    entity, table = crm.registry.entity("opportunity"), crm.schema.table("opportunity")
    scope = policy.row_scope(crm.actor("m"), entity, table, "read")
    if crm.engine.dialect.name == "postgresql":
        assert scope.counting is not None
        counted = str(scope.counting[0].compile(crm.engine))
        assert "owner_id IN (SELECT" in counted and "ANY" not in counted, counted
    oracle = Oracle(crm)
    live = oracle.live("opportunity", oracle.allowed("m", "opportunity", "read"))
    moved = {i for i in live if crm.facts[("opportunity", i)].owner == "r1"}
    assert moved and records.count(crm.actor("m"), "opportunity") == len(live)
    north = crm.departments["north"]
    with write_transaction(crm.engine) as conn:
        move_user(conn, crm.users["r1"], department_id=None)
    try:
        assert crm.users["r1"] in policy.state().org.users_under(
            policy.state().org.by_code("sales").id)  # type: ignore[union-attr]
        assert records.count(crm.actor("m"), "opportunity") == len(live - moved)
        heads = records.capped_group_counts(crm.actor("m"), "opportunity", "stage",
                                            sorted(_stages(crm, live)), cap=1000)
        assert sum(g.count for g in heads) == len(live - moved)
    finally:
        with write_transaction(crm.engine) as conn:
            move_user(conn, crm.users["r1"], department_id=north)


def _members(state: PolicyState, department_id: int) -> _owners.KnownMembers:
    """What a subtree scope anchored at the department caches for PostgreSQL's walk."""
    known = _owners.known_members(state.org, state.org.departments[department_id].path,
                                  state.org.users_under(department_id))
    assert known is not None
    return known


def _bound(params: Mapping[str, object], name: str) -> list[object]:
    """The values bound for parameter ``name`` (made unique as ``name_1``, ...)."""
    return [v for k, v in params.items() if k.rpartition("_")[0] == name]


def test_a_scope_compiles_without_reading_and_follows_the_org_stamp(crm: CrmOrg) -> None:
    """A subtree's members for PostgreSQL's walk come from the policy state's org
    snapshot as the scope compiles: once the state is loaded, compiling a row scope runs
    no statement, on either database. A move bumps the org stamp; the state loaded after it carries the
    new members, and the walk reads the moved rep's records."""
    policy = scopes.CasbinAccessPolicy(crm.engine, crm.registry, clock=lambda: NOW,
                                       check_interval=3600.0)
    # ms manages south's subtree; delete takes no share check and no sample.
    actor = policy.actor_for(crm.users["ms"], login="ms")
    entity, table = crm.registry.entity("customer"), crm.schema.table("customer")
    south = policy.state().org.departments[crm.departments["south"]].path
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    def walked() -> set[int]:
        statements.clear()
        policy.row_scope(actor, entity, table, "delete")
        assert statements == []  # the state was loaded before: nothing read here
        (branch,) = policy.branches(actor.user_id or 0, entity, table, "delete")
        assert branch.key == ("subtree", south) and branch.walk is not None
        state = policy.state()
        if crm.engine.dialect.name == "postgresql":
            walk = branch.walk.compile(crm.engine)
            assert "tp_policy_version" in str(walk)
            # The walk binds the members the snapshot lists, guarded by its stamp.
            assert _bound(walk.params, "owners") == [_members(state, crm.departments["south"]).ids]
            assert state.org.version in _bound(walk.params, "version")
        with crm.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(table.c.id).where(branch.walk))}

    def owned_by(*logins: str) -> set[int]:
        owners = [crm.users[login] for login in logins]
        with crm.engine.connect() as conn:
            return {r[0] for r in conn.execute(
                select(table.c.id).where(table.c.owner_id.in_(owners)))}

    state = policy.state()
    with crm.engine.connect() as conn:  # the members are what the SQL selects
        for dept in state.org.departments.values():
            ids = sorted(conn.execute(users_in_subtree(dept.path)).scalars())
            known = _owners.known_members(state.org, dept.path,
                                          state.org.users_under(dept.id))
            assert known is not None and known.stamp == state.org.version
            assert known.ids == "{" + ",".join(map(str, ids)) + "}"
            assert known.everyone is (dept.parent_id is None)
    event.listen(crm.engine, "before_cursor_execute", seen)
    try:
        policy.state()
        assert walked() == owned_by("ss", "r3", "r4", "d")
        with write_transaction(crm.engine) as conn:
            move_user(conn, crm.users["r1"], department_id=crm.departments["south"])
        policy.cache.refresh()  # the stamp moved: the state (and its members) reload
        assert walked() == owned_by("ss", "r3", "r4", "d", "r1")
        assert str(crm.users["r1"]) in _members(policy.state(), crm.departments["south"]).ids
    finally:
        event.remove(crm.engine, "before_cursor_execute", seen)
        with write_transaction(crm.engine) as conn:
            move_user(conn, crm.users["r1"], department_id=crm.departments["north"])
    assert policy.cache.reloads == 2
