"""The permission matrix on SQLite and PostgreSQL.

A seeded org (manager / supervisors / reps over three department levels), a
pooled owned entity and an unowned one, roles with every scope, shares with
and without expiry. For each user x entity x action the exact set of visible
ids is asserted by running the compiled branches against real tables, both
OR-ed and as a UNION (how the records service runs several branches).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, insert, or_, select, union

from engine.actor import Actor
from engine.errors import ForbiddenError
from engine.metadata.model import ACTIONS
from engine.permissions import _tables as t
from engine.permissions.identity import create_user, deactivate_user
from engine.permissions.org import create_department, move_user
from engine.permissions.policy_store import bind_role, sync_roles
from engine.permissions.scopes import CasbinAccessPolicy
from engine.storage.database import write_transaction
from engine.storage.tables import StorageSchema
from tests.integration.permissions.conftest import make_tables

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def _field(name: str, type_: str = "text") -> dict[str, Any]:
    return {"name": name, "type": type_, "label": {"en": name}}


DOCUMENT: dict[str, Any] = {
    "entities": {
        "thing": {"name": "thing", "label": {"en": "Thing"}, "title_field": "name",
                  "features": ["owned", "pooled"],
                  "fields": [_field("name"), _field("secret"), _field("price", "integer")]},
        "note": {"name": "note", "label": {"en": "Note"}, "title_field": "body",
                 "fields": [_field("body")]},
    },
    "pools": {
        "pool_a": {"name": "pool_a", "entity": "thing", "label": {"en": "A"},
                   "members": {"departments": ["west"], "users": ["r1"]}},
        "pool_b": {"name": "pool_b", "entity": "thing", "label": {"en": "B"},
                   "members": {"roles": ["closer"]}},
    },
    "roles": {
        "rep": {"name": "rep", "label": {"en": "Rep"}, "grants": [
            {"entity": "thing", "actions": ["read", "update"], "scope": "own",
             "hidden_fields": ["secret"], "readonly_fields": ["price"]},
            {"entity": "note", "actions": ["read"], "scope": "all"}]},
        "supervisor": {"name": "supervisor", "label": {"en": "Supervisor"}, "grants": [
            {"entity": "thing", "actions": ["read", "update"], "scope": "department",
             "readonly_fields": ["price"]},
            {"entity": "note", "actions": ["read"], "scope": "own"}]},
        "manager": {"name": "manager", "label": {"en": "Manager"}, "grants": [
            {"entity": "thing", "actions": ["read"], "scope": "subtree",
             "hidden_fields": ["secret"]}]},
        "pooler": {"name": "pooler", "label": {"en": "Pooler"}, "grants": [
            {"entity": "thing", "actions": ["read", "claim"], "scope": "pool"}]},
        "collaborator": {"name": "collaborator", "label": {"en": "Collaborator"}, "grants": [
            {"entity": "thing", "actions": ["read", "update"], "scope": "shared"},
            {"entity": "note", "actions": ["read"], "scope": "shared"}]},
        "admin": {"name": "admin", "label": {"en": "Admin"}, "grants": [
            {"entity": e, "actions": list(ACTIONS), "scope": "all"}
            for e in ("thing", "note")]},
    },
}

# user -> (department, level, [(role, domain)])  ("dept:<code>" is resolved to an id)
USERS: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "m": ("hq", "manager", [("manager", "org")]),
    "s_east": ("east", "supervisor", [("supervisor", "org")]),
    "s_west": ("west", "supervisor", [("supervisor", "org"), ("manager", "dept:east_1")]),
    "r1": ("east", "rep", [("rep", "org")]),
    "r2": ("east_1", "rep", [("rep", "org")]),
    "r3": ("east_1", "rep", [("pooler", "pool:pool_b")]),
    "r4": ("west", "rep", [("rep", "org"), ("pooler", "org")]),
    "c": ("east_1", "rep", [("collaborator", "org")]),
    "a": ("hq", "manager", [("admin", "org")]),
    "n": ("west", "rep", []),
    "d": ("west", "rep", [("admin", "org")]),   # deactivated below
}

# thing name -> (owner, pool)
THINGS: dict[str, tuple[str | None, str | None]] = {
    "t_m": ("m", None), "t_se": ("s_east", None), "t_sw": ("s_west", None),
    "t_r1": ("r1", None), "t_r2": ("r2", None), "t_r3": ("r3", None), "t_r4": ("r4", None),
    "t_r4p": ("r4", "pool_a"),            # owned, so not in the pool's unowned view
    "pa1": (None, "pool_a"), "pa2": (None, "pool_a"), "pb1": (None, "pool_b"),
}
NOTES = ("n1", "n2")
ALL_OWNED = {k for k, (owner, _) in THINGS.items() if owner}

# (grantee user or "dept:<code>", thing, access, expires)
SHARES: list[tuple[str, str, str, dt.datetime | None]] = [
    ("r2", "t_r4", "read", None),
    ("r2", "t_r3", "write", NOW + dt.timedelta(days=1)),
    ("r2", "t_m", "write", NOW - dt.timedelta(seconds=1)),   # expired
    ("dept:east_1", "t_sw", "read", None),
    ("c", "t_r1", "write", None),
]

EXPECTED: dict[tuple[str, str], set[str]] = {
    ("m", "read"): ALL_OWNED,
    ("s_east", "read"): {"t_se", "t_r1"},
    ("s_west", "read"): {"t_sw", "t_r4", "t_r4p", "t_r2", "t_r3"},
    ("r1", "read"): {"t_r1"},
    ("r2", "read"): {"t_r2", "t_r4", "t_r3", "t_sw"},
    ("r3", "read"): {"pb1", "t_sw"},
    ("r4", "read"): {"t_r4", "t_r4p", "pa1", "pa2"},
    ("c", "read"): {"t_sw", "t_r1"},
    ("a", "read"): set(THINGS),
    ("m", "update"): set(),
    ("s_east", "update"): {"t_se", "t_r1"},
    ("s_west", "update"): {"t_sw", "t_r4", "t_r4p"},
    ("r1", "update"): {"t_r1"},
    ("r2", "update"): {"t_r2", "t_r3"},
    ("r3", "update"): set(),
    ("r4", "update"): {"t_r4", "t_r4p"},
    ("c", "update"): {"t_r1"},
    ("a", "update"): set(THINGS),
    ("r3", "claim"): {"pb1"},
    ("r4", "claim"): {"pa1", "pa2"},
    ("a", "claim"): set(THINGS),
}
NOTE_EXPECTED = {"r1": set(NOTES), "c": {"n2"}, "s_east": set(), "a": set(NOTES)}


class Org:
    def __init__(self, schema: StorageSchema, users: dict[str, int], things: dict[str, int],
                 notes: dict[str, int]) -> None:
        self.schema = schema
        self.users = users
        self.things = things
        self.notes = notes
        self.names = {v: k for k, v in things.items()}


def seed(engine: Engine) -> Org:
    schema = make_tables(engine, DOCUMENT)
    registry = schema.registry
    with write_transaction(engine) as conn:
        depts = {}
        depts["hq"] = create_department(conn, code="hq", name="HQ").id
        depts["east"] = create_department(conn, code="east", name="E", parent_id=depts["hq"]).id
        depts["west"] = create_department(conn, code="west", name="W", parent_id=depts["hq"]).id
        depts["east_1"] = create_department(conn, code="east_1", name="E1",
                                            parent_id=depts["east"]).id
        users = {}
        for login, (dept, level, _) in USERS.items():
            users[login] = create_user(conn, login=login, display_name=login,
                                       department_id=depts[dept], level=level).id
        sync_roles(conn, registry)
        for login, (_, _, bindings) in USERS.items():
            for role, domain in bindings:
                if domain.startswith("dept:"):
                    domain = f"dept:{depts[domain[5:]]}"
                bind_role(conn, user_id=users[login], role=role, domain=domain,
                          registry=registry)
        deactivate_user(conn, users["d"])
        things = {}
        for name, (owner, pool) in THINGS.items():
            things[name] = _insert(conn, schema.table("thing"), name=name, secret="s",
                                   owner_id=users[owner] if owner else None, pool_id=pool)
        notes = {name: _insert(conn, schema.table("note"), body=name) for name in NOTES}
        for grantee, thing, access, expires in SHARES:
            grant = ({"department_id": depts[grantee[5:]]} if grantee.startswith("dept:")
                     else {"user_id": users[grantee]})
            conn.execute(insert(t.share).values(entity="thing", record_id=things[thing],
                                                access=access, expires_at=expires,
                                                created_at=NOW, **grant))
        conn.execute(insert(t.share).values(entity="note", record_id=notes["n2"],
                                            user_id=users["c"], access="read", created_at=NOW))
    return Org(schema, users, things, notes)


def _insert(conn: Connection, table: Table, **values: Any) -> int:
    return int(conn.execute(insert(table).values(created_at=NOW, updated_at=NOW, version=1,
                                                 **values).returning(table.c.id)).scalar_one())


def visible(engine: Engine, policy: CasbinAccessPolicy, org: Org, user: str, entity: str,
            action: str) -> set[str]:
    table = org.schema.table(entity)
    scope = policy.row_scope(Actor(user_id=org.users[user]), org.schema.registry.entity(entity),
                             table, action)
    names = org.names if entity == "thing" else {v: k for k, v in org.notes.items()}
    if scope.is_empty:
        return set()
    with engine.connect() as conn:
        ored = {names[i] for i in conn.execute(select(table.c.id)
                                               .where(or_(*scope.branches))).scalars()}
        unioned = {names[i] for i in conn.execute(
            union(*(select(table.c.id).where(b) for b in scope.branches))).scalars()} \
            if len(scope.branches) > 1 else ored
    assert ored == unioned, "OR of branches and UNION of branches disagree"
    return ored


@pytest.fixture
def org(db_engine: Engine) -> Org:
    return seed(db_engine)


@pytest.fixture
def policy(db_engine: Engine, org: Org) -> CasbinAccessPolicy:
    return CasbinAccessPolicy(db_engine, org.schema.registry, clock=lambda: NOW)


def test_visible_sets_per_user_and_action(db_engine: Engine, org: Org,
                                          policy: CasbinAccessPolicy) -> None:
    got = {(u, a): visible(db_engine, policy, org, u, "thing", a) for (u, a) in EXPECTED}
    assert got == EXPECTED
    for user in ("n", "d"):  # no role; a deactivated admin
        for action in ("read", "update", "claim", "delete"):
            assert visible(db_engine, policy, org, user, "thing", action) == set()


def test_unowned_entity_knows_only_all_and_shared(db_engine: Engine, org: Org,
                                                  policy: CasbinAccessPolicy) -> None:
    got = {u: visible(db_engine, policy, org, u, "note", "read") for u in NOTE_EXPECTED}
    assert got == NOTE_EXPECTED


def test_action_checks_follow_grants_and_agree_with_casbin(org: Org,
                                                           policy: CasbinAccessPolicy) -> None:
    registry = org.schema.registry
    thing = registry.entity("thing")
    policy.check_action(Actor(user_id=org.users["r1"]), thing, "update")
    for user, action in (("m", "update"), ("r1", "delete"), ("n", "read"), ("d", "read")):
        with pytest.raises(ForbiddenError):
            policy.check_action(Actor(user_id=org.users[user]), thing, action)
    with pytest.raises(ForbiddenError):
        policy.check_action(Actor(user_id=None), thing, "read")
    policy.check_action(Actor.system(), thing, "configure")
    # The index and Casbin's enforce give the same answer for every cell.
    state = policy.state()
    for login, (_, _, bindings) in USERS.items():
        if login == "d":
            continue
        uid = org.users[login]
        domains = {d if not d.startswith("dept:") else
                   f"dept:{state.org.by_code(d[5:]).id}" for _, d in bindings}  # type: ignore[union-attr]
        for entity in ("thing", "note"):
            for action in ACTIONS:
                by_index = bool(state.index.grants_for(uid, entity, action))
                by_casbin = any(state.enforce(uid, d, entity, action) for d in domains)
                assert by_index == by_casbin, (login, entity, action)


def test_single_record_check_matches_the_list(db_engine: Engine, org: Org,
                                              policy: CasbinAccessPolicy) -> None:
    """Guessing ids: every id outside the list is invisible by ``AND id = :id`` too."""
    table = org.schema.table("thing")
    entity = org.schema.registry.entity("thing")
    for user in ("r1", "r2", "s_east", "r4", "c"):
        scope = policy.row_scope(Actor(user_id=org.users[user]), entity, table, "read")
        listed = visible(db_engine, policy, org, user, "thing", "read")
        with db_engine.connect() as conn:
            for name, rid in org.things.items():
                hit = conn.execute(select(table.c.id).where(table.c.id == rid,
                                                            or_(*scope.branches))).first()
                assert (hit is not None) == (name in listed), (user, name)


def test_field_permissions_add_up(org: Org, policy: CasbinAccessPolicy) -> None:
    thing = org.schema.registry.entity("thing")
    every = {"name", "secret", "price"}

    def fields(user: str) -> tuple[set[str], set[str]]:
        actor = Actor(user_id=org.users[user])
        return set(policy.hidden_fields(actor, thing)), set(policy.readonly_fields(actor, thing))

    assert fields("r1") == ({"secret"}, {"secret", "price"})
    assert fields("s_west") == (set(), {"price"})   # manager hides secret, supervisor shows it
    assert fields("m") == ({"secret"}, every)        # may read, may not write
    assert fields("n") == (every, every)
    assert fields("a") == (set(), set())
    system = Actor.system()
    assert policy.hidden_fields(system, thing) == policy.readonly_fields(system, thing) == set()


def test_shares_expire(db_engine: Engine, org: Org) -> None:
    later = CasbinAccessPolicy(db_engine, org.schema.registry,
                               clock=lambda: NOW + dt.timedelta(days=2))
    assert visible(db_engine, later, org, "r2", "thing", "read") == {"t_r2", "t_r4", "t_sw"}
    earlier = CasbinAccessPolicy(db_engine, org.schema.registry,
                                 clock=lambda: NOW - dt.timedelta(days=1))
    assert visible(db_engine, earlier, org, "r2", "thing", "update") == {"t_r2", "t_r3", "t_m"}


def test_why_names_the_grant_or_the_reason(db_engine: Engine, org: Org,
                                           policy: CasbinAccessPolicy) -> None:
    table = org.schema.table("thing")
    entity = org.schema.registry.entity("thing")

    def why(user: str, thing: str, action: str = "read"):  # type: ignore[no-untyped-def]
        with db_engine.connect() as conn:
            return policy.why(conn, user_id=org.users[user], entity=entity, table=table,
                              record_id=org.things[thing], action=action)

    got = why("s_east", "t_r1")
    assert got.allowed and "department east" in got.reason and "supervisor" in got.reason
    got = why("r2", "t_r4")
    assert got.allowed and "shared" in got.reason
    got = why("r1", "t_r2")
    assert not got.allowed and "own" in got.reason and f"user {org.users['r2']}" in got.reason
    got = why("r2", "t_r4", "update")
    assert not got.allowed and "not shared with you for writing" in got.reason
    got = why("m", "t_r1", "update")
    assert not got.allowed and "none of your roles grants update" in got.reason
    got = why("r4", "pa1", "claim")
    assert got.allowed and "pool pool_a" in got.reason
    with db_engine.connect() as conn:
        missing = policy.why(conn, user_id=org.users["a"], entity=entity, table=table,
                             record_id=987654, action="read")
    assert not missing.allowed and "there is no thing 987654" in missing.reason


def test_a_second_process_sees_changes_after_the_stamp_moves(db_engine: Engine,
                                                             org: Org) -> None:
    registry = org.schema.registry
    first = CasbinAccessPolicy(db_engine, registry, clock=lambda: NOW, check_interval=0)
    second = CasbinAccessPolicy(db_engine, registry, clock=lambda: NOW, check_interval=3600)
    assert visible(db_engine, first, org, "r1", "thing", "read") == {"t_r1"}
    assert visible(db_engine, second, org, "r1", "thing", "read") == {"t_r1"}
    reloads = first.cache.reloads
    assert visible(db_engine, first, org, "r1", "thing", "read") == {"t_r1"}
    assert first.cache.reloads == reloads  # nothing changed: no reload
    with write_transaction(db_engine) as conn:
        bind_role(conn, user_id=org.users["r1"], role="supervisor", domain="org")
    assert visible(db_engine, first, org, "r1", "thing", "read") == {"t_se", "t_r1"}
    # The second checks only every hour: stale until it checks.
    assert visible(db_engine, second, org, "r1", "thing", "read") == {"t_r1"}
    second.cache.refresh()
    assert visible(db_engine, second, org, "r1", "thing", "read") == {"t_se", "t_r1"}
    # An org move is a stamp too: s_east's department now holds r2.
    with write_transaction(db_engine) as conn:
        east = first.state().org.by_code("east")
        assert east is not None
        move_user(conn, org.users["r2"], department_id=east.id)
    assert visible(db_engine, first, org, "s_east", "thing", "read") == {
        "t_se", "t_r1", "t_r2"}
