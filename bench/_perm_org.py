"""The data of the permissions benchmark: a 5-level org, its users, rows and shares.

The org is a tree of 1 + 3 + 9 + 27 + 81 departments (company, regions, areas,
branches, teams). Every department has a leader: the company, region, area
and branch leaders hold ``manager`` (subtree), team leaders ``supervisor``
(department); everyone else holds ``rep`` and sits in a team. One more user is
the administrator. Users, departments and bindings go through the engine's own
functions; the customer rows and the shares are loaded with raw executemany
(SQLite) or COPY (PostgreSQL), because loading is not what is measured.

Rows: 65 % owned by a random rep, 35 % unowned in the customer pool, updated
over one year, grades A/B/C evenly (A-grade customers: the managers' sharing
rule). Shares: read shares of random rows, 98 % to random users, 2 % to random
departments.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, inspect, select, text

from engine.metadata.model import Registry
from engine.permissions import _tables as t
from engine.permissions.identity import create_user
from engine.permissions.org import create_department
from engine.permissions.policy_store import bind_role, sync_roles
from engine.storage.database import write_transaction
from engine.storage.migrate import init_database

ENTITY = "customer"
POOL = "customer_pool"
FANOUT = 3
LEVELS = 5
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
BATCH = 20_000


@dataclass
class Org:
    """Who is who, by the role they play in the benchmark."""

    departments: list[tuple[int, int]] = field(default_factory=list)  # (id, depth)
    leaders: dict[int, int] = field(default_factory=dict)            # dept id -> user id
    reps: list[int] = field(default_factory=list)
    admin: int = 0
    users: int = 0

    def leader_at(self, depth: int) -> int:
        """The leader of the first department at ``depth`` (1 = the company)."""
        dept = next(d for d, level in self.departments if level == depth)
        return self.leaders[dept]


def build_org(engine: Engine, registry: Registry, *, users: int, seed: int = 3) -> Org:
    """Departments, ``users`` users and their roles; the Casbin policy synced."""
    rng = random.Random(seed)
    org = Org()
    with write_transaction(engine) as conn:
        sync_roles(conn, registry)
        parents: list[int | None] = [None]
        teams: list[int] = []
        for depth in range(1, LEVELS + 1):
            level: list[int] = []
            for parent in parents:
                for _ in range(1 if parent is None else FANOUT):
                    n = len(org.departments)
                    dept = create_department(conn, code=f"d{n}", name=f"Department {n}",
                                             parent_id=parent).id
                    org.departments.append((dept, depth))
                    level.append(dept)
                    role = "supervisor" if depth == LEVELS else "manager"
                    leader = create_user(conn, login=f"lead{n}", display_name=f"Leader {n}",
                                         department_id=dept,
                                         level="supervisor" if depth == LEVELS else "manager")
                    bind_role(conn, user_id=leader.id, role=role, registry=registry)
                    org.leaders[dept] = leader.id
            parents = list(level)
            if depth == LEVELS:
                teams = level
        admin = create_user(conn, login="admin", display_name="Admin",
                            department_id=org.departments[0][0])
        bind_role(conn, user_id=admin.id, role="admin", registry=registry)
        org.admin = admin.id
        for n in range(max(0, users - len(org.leaders) - 1)):
            rep = create_user(conn, login=f"rep{n}", display_name=f"Rep {n}",
                              department_id=rng.choice(teams), level="rep")
            bind_role(conn, user_id=rep.id, role="rep", registry=registry)
            org.reps.append(rep.id)
    org.users = len(org.leaders) + 1 + len(org.reps)
    return org


def _rows(org: Org, rows: int, seed: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(seed)
    grades = ("A", "B", "C")
    industries = ("retail", "fmcg", "catering", "saas", "manufacturing")
    year = 365 * 24 * 3600
    for n in range(rows):
        updated = EPOCH + dt.timedelta(seconds=rng.randrange(year))
        owned = rng.random() < 0.65
        yield (updated, updated, 1, rng.choice(org.reps) if owned else None,
               None if owned else POOL, f"Customer {n}", rng.choice(grades),
               rng.choice(industries), json.dumps(["chain"]))


_COLUMNS = ("created_at", "updated_at", "version", "owner_id", "pool_id", "name", "grade",
            "industry", "tags")


def load_rows(engine: Engine, org: Org, *, rows: int, shares: int, seed: int = 5) -> float:
    """Insert ``rows`` customers and ``shares`` read shares; return the seconds it took."""
    started = time.perf_counter()
    rng = random.Random(seed + 1)
    everyone = [*org.leaders.values(), org.admin, *org.reps]
    departments = [d for d, _ in org.departments]
    share_rows = [(ENTITY, rng.randrange(1, rows + 1),
                   *((rng.choice(everyone), None) if rng.random() < 0.98
                     else (None, rng.choice(departments))), "read", EPOCH)
                  for _ in range(shares)]
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY {ENTITY} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in _rows(org, rows, seed):
                    copy.write_row(row)
            with cursor.copy("COPY tp_share (entity, record_id, user_id, department_id, "
                             "access, created_at) FROM STDIN") as copy:
                for share in share_rows:
                    copy.write_row(share)
        else:
            sql = (f"INSERT INTO {ENTITY} ({', '.join(_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(_COLUMNS))})")
            batch: list[tuple[object, ...]] = []
            for row in _rows(org, rows, seed):
                stamp = row[0].strftime("%Y-%m-%d %H:%M:%S.%f")  # type: ignore[attr-defined]
                batch.append((stamp, stamp, *row[2:]))
                if len(batch) == BATCH:
                    conn.exec_driver_sql(sql, batch)
                    batch = []
            if batch:
                conn.exec_driver_sql(sql, batch)
            conn.exec_driver_sql(
                "INSERT INTO tp_share (entity, record_id, user_id, department_id, access, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(*s[:5], s[5].strftime("%Y-%m-%d %H:%M:%S.%f")) for s in share_rows])
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        else:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    return time.perf_counter() - started


def prepare(engine: Engine, registry: Registry, *, rows: int, users: int,
            shares: int) -> tuple[Org, float]:
    """A database with the CRM tables, the org and the rows; returns (org, load seconds)."""
    init_database(engine, target=registry, actor="bench")
    org = build_org(engine, registry, users=users)
    return org, load_rows(engine, org, rows=rows, shares=shares)


def existing(engine: Engine, *, rows: int) -> Org | None:
    """The org of a database this module already loaded with ``rows`` rows, else None."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(ENTITY):
            return None
        count = conn.execute(text(f"SELECT count(*) FROM {ENTITY}")).scalar_one()
        if count != rows:
            return None
        org = Org()
        for dept, path in conn.execute(select(t.department.c.id, t.department.c.path)
                                       .order_by(t.department.c.id)):
            org.departments.append((int(dept), path.count("/") - 1))
        for uid, login, dept in conn.execute(select(t.user.c.id, t.user.c.login,
                                                    t.user.c.department_id)):
            if login.startswith("lead"):
                org.leaders[int(dept)] = int(uid)
            elif login.startswith("rep"):
                org.reps.append(int(uid))
            elif login == "admin":
                org.admin = int(uid)
        org.reps.sort()
        org.users = int(conn.execute(select(func.count()).select_from(t.user)).scalar_one())
    return org
