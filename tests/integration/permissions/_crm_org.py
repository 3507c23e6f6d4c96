"""A seeded CRM org for the records-service permission tests, and an oracle for it.

The CRM app's own metadata (apps/crm: roles rep / supervisor / manager / admin,
lead and customer pools, the managers' A-grade sharing rule) over an org
of three levels::

    sales (m, ms, a)                  manager level
    ├── north (sn, r1, r2, n)          supervisor sn
    │   └── north_key (r5)
    └── south (ss, r3, r4, d)          supervisor ss

Every user owns one record of each entity; the pooled entities have records
waiting in their pool and one unowned outside any pool; soft-deleting
entities have two records in the recycle bin; shares cover users and
departments, read and write, live and expired.

``Oracle`` answers "which records may this user <action>" in plain Python from
the registry's grants and the seeded facts, independently of the SQL the
policy compiles, so the tests compare two implementations of the same rules.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update

from engine.actor import Actor
from engine.metadata.loader import load_packages
from engine.metadata.model import Condition, Registry
from engine.permissions.identity import create_user, deactivate_user
from engine.permissions.org import create_department
from engine.permissions.policy_store import bind_role, sync_roles
from engine.permissions.scopes import CasbinAccessPolicy
from engine.permissions.shares import share_record
from engine.records import ListQuery, RecordService
from engine.storage.database import write_transaction
from engine.storage.tables import StorageSchema, build_schema
from tests.conftest import REPO_ROOT

CRM = REPO_ROOT / "apps" / "crm"
NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)   # the policy's clock (share expiry)
ENTITIES = ("lead", "customer", "contact", "opportunity", "follow_up")
POOLED = ("lead", "customer")
SOFT_DELETE = ("lead", "customer", "contact", "opportunity")

DEPARTMENTS = {"sales": None, "north": "sales", "south": "sales", "north_key": "north"}

# login -> (department, level, roles as role[@domain]); "dept:<code>" domains by code
USERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "m": ("sales", "manager", ("manager",)),
    "ms": ("sales", "manager", ("manager@dept:south",)),
    "a": ("sales", "manager", ("admin",)),
    "sn": ("north", "supervisor", ("supervisor",)),
    "r1": ("north", "rep", ("rep",)),
    "r2": ("north", "rep", ("rep",)),
    "n": ("north", "rep", ()),
    "r5": ("north_key", "rep", ("rep",)),
    "ss": ("south", "supervisor", ("supervisor",)),
    "r3": ("south", "rep", ("rep",)),
    "r4": ("south", "rep", ("rep", "supervisor@dept:north_key")),
    "d": ("south", "rep", ("rep",)),           # deactivated once seeded
}
INACTIVE = frozenset({"d"})

# (entity, owner record key, grantee user or "dept:<code>", access, expires)
SHARES: list[tuple[str, str, str, str, dt.datetime | None]] = [
    ("customer", "r3", "r1", "read", None),
    ("customer", "ss", "r2", "write", NOW + dt.timedelta(days=3)),
    ("lead", "r4", "r1", "write", None),
    ("opportunity", "sn", "dept:north_key", "read", None),
    ("contact", "r2", "r3", "write", NOW - dt.timedelta(days=1)),    # expired
    ("follow_up", "m", "dept:north", "read", None),
    # Holders of delete with a narrower scope: a share opens update at most, never delete.
    ("lead", "r1", "ss", "write", None),
    ("customer", "r5", "sn", "read", None),
]
A_GRADE = ("customer", "r2")   # grade A: shared with every manager by their sharing rule


@dataclass(frozen=True)
class Fact:
    """What the oracle knows about one seeded record."""

    entity: str
    key: str
    owner: str | None
    pool: str | None
    deleted: bool
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class CrmOrg:
    engine: Engine
    registry: Registry
    schema: StorageSchema
    users: dict[str, int]
    departments: dict[str, int]
    ids: dict[tuple[str, str], int]            # (entity, key) -> id
    facts: dict[tuple[str, int], Fact]         # (entity, id) -> fact
    policy: CasbinAccessPolicy
    records: RecordService

    def actor(self, login: str) -> Actor:
        return self.policy.actor_for(self.users[login], login=login)

    def id(self, entity: str, key: str) -> int:
        return self.ids[(entity, key)]

    def keys(self, entity: str, ids: Iterable[int]) -> set[str]:
        return {self.facts[(entity, i)].key for i in ids}

    def all_ids(self, entity: str) -> list[int]:
        return sorted(i for (e, i) in self.facts if e == entity)


@functools.cache
def crm_registry() -> Registry:
    """The CRM app's registry (immutable, so loaded once per test run)."""
    return load_packages([CRM])


def _title(entity: str) -> str:
    return {"lead": "company_name", "customer": "name", "contact": "name",
            "opportunity": "name", "follow_up": "content"}[entity]


def _payload(entity: str, key: str, n: int, customer_id: int) -> dict[str, Any]:
    # Every third record carries "Blue" in its title: the search tests look for it.
    title = f"{'Blue ' if n % 3 == 0 else ''}{entity} {key}"
    if entity == "lead":
        return {"company_name": title, "phone": f"1380000{n:04d}", "channel": "sem",
                "status": "new"}
    if entity == "customer":
        grade = "A" if (entity, key) == A_GRADE else "B"
        return {"name": title, "grade": grade, "tags": ["chain"],
                "annual_revenue": {"amount": "1000.00", "currency": "CNY"}}
    if entity == "contact":
        return {"name": title, "customer": customer_id}
    if entity == "opportunity":
        return {"name": title, "customer": customer_id, "probability": "0.5"}
    return {"content": title, "kind": "call", "happened_at": "2026-05-01T09:00:00+00:00"}


def seed_crm(engine: Engine, registry: Registry | None = None, *,
             check_interval: float = 3600.0) -> CrmOrg:
    """Create the CRM tables and the org, records and shares described above."""
    registry = registry or crm_registry()
    schema = build_schema(registry)
    schema.metadata.create_all(engine)
    system = RecordService(engine=engine, schema=schema)
    root = Actor.system()
    with write_transaction(engine) as conn:
        depts: dict[str, int] = {}
        for code, parent in DEPARTMENTS.items():
            depts[code] = create_department(conn, code=code, name=code.title(),
                                            parent_id=depts[parent] if parent else None).id
        users = {login: create_user(conn, login=login, display_name=login.upper(),
                                    department_id=depts[dept], level=level).id
                 for login, (dept, level, _) in USERS.items()}
        sync_roles(conn, registry)
        for login, (_, _, roles) in USERS.items():
            for spec in roles:
                role, _, domain = spec.partition("@")
                domain = domain or "org"
                if domain.startswith("dept:"):
                    domain = f"dept:{depts[domain[5:]]}"
                bind_role(conn, user_id=users[login], role=role, domain=domain,
                          registry=registry)
    ids: dict[tuple[str, str], int] = {}
    facts: dict[tuple[str, int], Fact] = {}
    anchor = system.create(root, "customer", {"name": "Anchor Ltd", "owner_id": users["a"]})
    ids[("customer", "anchor")] = anchor.id
    facts[("customer", anchor.id)] = Fact("customer", "anchor", "a", None, False)
    n = 0
    for entity in ENTITIES:
        specs: list[tuple[str, str | None, str | None, bool]] = \
            [(login, login, None, False) for login in USERS]
        if entity in POOLED:
            pool = f"{entity}_pool"
            specs += [("pool1", None, pool, False), ("pool2", None, pool, False),
                      ("orphan", None, None, False)]
        if entity in SOFT_DELETE:
            specs += [("del_r1", "r1", None, True), ("del_r3", "r3", None, True)]
        table = schema.table(entity)
        payloads = []
        for key, owner, _, _ in specs:
            n += 1
            payloads.append(_payload(entity, key, n, anchor.id))
        created = system.bulk_create(root, entity, [
            {**p, "owner_id": users[spec[1]] if spec[1] else None}
            for p, spec in zip(payloads, specs, strict=True)])
        with write_transaction(engine) as conn:
            for (key, owner, pool_name, deleted), payload, rid in zip(specs, payloads, created,
                                                                     strict=True):
                if pool_name:   # pool_id is the pool engine's to set, not a payload's
                    conn.execute(update(table).where(table.c.id == rid)
                                 .values(pool_id=pool_name))
                ids[(entity, key)] = rid
                facts[(entity, rid)] = Fact(entity, key, owner, pool_name, deleted, payload)
        for key, _, _, deleted in specs:
            if deleted:
                system.delete(root, entity, ids[(entity, key)])
    with write_transaction(engine) as conn:
        for entity, key, grantee, access, expires in SHARES:
            target = ({"department_id": depts[grantee[5:]]} if grantee.startswith("dept:")
                      else {"user_id": users[grantee]})
            share_record(conn, schema.table(entity), ids[(entity, key)], access=access,
                         expires_at=expires, now=NOW - dt.timedelta(days=30), **target)
        for login in INACTIVE:
            deactivate_user(conn, users[login])
    policy = CasbinAccessPolicy(engine, registry, clock=lambda: NOW,
                                check_interval=check_interval)
    return CrmOrg(engine=engine, registry=registry, schema=schema, users=users,
                  departments=depts, ids=ids, facts=facts, policy=policy,
                  records=RecordService(engine=engine, schema=schema, policy=policy))


# --- the oracle ---------------------------------------------------------------------

SHARE_ACTIONS = {"read": {"read", "export"}, "write": {"read", "export", "update"}}


class Oracle:
    """Who may do what, computed in Python from the registry and the seeded facts."""

    def __init__(self, org: CrmOrg) -> None:
        self.org = org
        self.registry = org.registry
        self.dept_of = {login: dept for login, (dept, _, _) in USERS.items()}

    def _under(self, dept: str, anchor: str) -> bool:
        node: str | None = dept
        while node is not None:
            if node == anchor:
                return True
            node = DEPARTMENTS[node]
        return False

    def _bindings(self, login: str) -> list[tuple[str, str]]:
        if login in INACTIVE:
            return []
        return [(spec.partition("@")[0], spec.partition("@")[2] or "org")
                for spec in USERS[login][2]]

    def grants(self, login: str, entity: str, action: str) -> list[tuple[str, str, str]]:
        """(role, domain, scope) for every grant of ``action`` on ``entity``."""
        found = []
        for role, domain in self._bindings(login):
            for grant in self.registry.roles[role].grants:
                if grant.entity == entity and action in grant.actions:
                    found.append((role, domain, grant.scope.value))
        return found

    def holds(self, login: str, entity: str, action: str) -> bool:
        return bool(self.grants(login, entity, action))

    def _pools(self, login: str, entity: str) -> set[str]:
        roles = {r for r, _ in self._bindings(login)}
        return {p.name for p in self.registry.pools.values()
                if p.entity == entity and (roles & set(p.members.roles)
                                           or login in p.members.users)}

    def _shared(self, login: str, fact: Fact, action: str) -> bool:
        ancestors = {d for d in DEPARTMENTS if self._under(self.dept_of[login], d)}
        for entity, key, grantee, access, expires in SHARES:
            if (entity, key) != (fact.entity, fact.key):
                continue
            if expires is not None and expires <= NOW:
                continue
            if action not in SHARE_ACTIONS[access]:
                continue
            if grantee == login or (grantee.startswith("dept:") and grantee[5:] in ancestors):
                return True
        return False

    def _by_rule(self, login: str, fact: Fact, action: str) -> bool:
        ancestors = {d for d in DEPARTMENTS if self._under(self.dept_of[login], d)}
        for role, _ in self._bindings(login):
            for rule in self.registry.roles[role].sharing_rules:
                if rule.entity != fact.entity or action not in SHARE_ACTIONS[rule.access]:
                    continue
                if rule.departments and not ancestors & set(rule.departments):
                    continue
                if all(_matches(fact.values, c) for c in rule.where):
                    return True
        return False

    def allowed(self, login: str, entity: str, action: str) -> set[int]:
        """Ids (live and deleted) whose rows ``action`` may touch for this user."""
        grants = self.grants(login, entity, action)
        if not grants:
            return set()
        out = set()
        for (e, rid), fact in self.org.facts.items():
            if e != entity:
                continue
            if self._granted(login, fact, grants) or self._shared(login, fact, action) \
                    or self._by_rule(login, fact, action):
                out.add(rid)
        return out

    def _granted(self, login: str, fact: Fact, grants: list[tuple[str, str, str]]) -> bool:
        for _, domain, scope in grants:
            anchor = domain[5:] if domain.startswith("dept:") else self.dept_of[login]
            owner_dept = self.dept_of.get(fact.owner) if fact.owner else None
            if scope == "all":
                return True
            if scope == "own" and fact.owner == login:
                return True
            if scope == "department" and owner_dept == anchor:
                return True
            if scope == "subtree" and owner_dept is not None and self._under(owner_dept, anchor):
                return True
            if scope == "pool" and fact.owner is None and fact.pool in self._pools(
                    login, fact.entity) and (not domain.startswith("pool:")
                                             or fact.pool == domain[5:]):
                return True
        return False

    def live(self, entity: str, ids: set[int]) -> set[int]:
        return {i for i in ids if not self.org.facts[(entity, i)].deleted}

    def deleted(self, entity: str, ids: set[int]) -> set[int]:
        return {i for i in ids if self.org.facts[(entity, i)].deleted}


def _matches(values: dict[str, Any], cond: Condition) -> bool:
    value = values.get(cond.field)
    if cond.op == "contains":
        return isinstance(value, list) and cond.value in value
    if cond.op == "eq":
        return bool(value == cond.value)
    if cond.op == "in":
        return value in cond.value
    raise AssertionError(f"the oracle does not know {cond.op}")


def every_page(records: RecordService, actor: Actor, entity: str, *, limit: int,
               **query: Any) -> list[int]:
    """The ids of every page of ``entity`` the actor lists, following the keyset token
    (small pages, so the paging itself is under test)."""
    ids: list[int] = []
    token = None
    while True:
        page = records.list(actor, entity, ListQuery(limit=limit, after=token, **query))
        ids += [r.id for r in page.rows]
        if not page.has_more:
            return ids
        token = page.next_token
