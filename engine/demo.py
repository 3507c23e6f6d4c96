"""The demo database: the app packages' tables with sample rows, on SQLite.

``tidepool demo`` calls ``prepare_demo`` and then serves the UI. Sample rows are
generated from the metadata (engine/seeding.py), entities in reference order so
every generated reference points at a real row. Running it again keeps the
database (and what the user changed in it); ``reset`` starts over.

The demo also has people: an org tree (company > sales > two teams) and a user
for each role, all with the documented password ``DEMO_PASSWORD`` -- the one
place a known password is allowed, printed when the demo starts. Sample rows of
owned entities belong to the reps (every fifth waits in the entity's pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import make_url

from engine.configure.service import configured_registry
from engine.errors import TidepoolError
from engine.metadata.model import Feature, FieldType, Registry
from engine.permissions.identity import create_user, find_user
from engine.permissions.org import create_department
from engine.permissions.policy_store import bind_role, sync_roles
from engine.seeding import seed_entity
from engine.storage.applied import applied_registry
from engine.storage.database import make_engine, write_transaction
from engine.storage.migrate import apply_migration, init_database
from engine.storage.settings import TIME_ZONE, get_setting, set_company_time_zone
from engine.storage.tables import build_schema

#: Sample rows per entity: enough for pages, search and filters to mean something.
DEMO_ROWS = 120
#: The password of every demo user (documented in the README; demo databases only).
DEMO_PASSWORD = "tidepool-demo"
#: Departments: (code, name, parent code).
DEMO_DEPARTMENTS = (
    ("company", "Tidepool Demo Co. 演示公司", None),
    ("sales", "Sales 销售部", "company"),
    ("team_east", "East team 华东组", "sales"),
    ("team_west", "West team 华西组", "sales"),
)
#: Users: (login, display name, locale, department code, role, level).
DEMO_USERS = (
    ("admin", "Admin 管理员", "en", "company", "admin", None),
    ("manager", "Wang Fang 王芳", "zh-CN", "sales", "manager", "manager"),
    ("sup_east", "Li Na 李娜", "zh-CN", "team_east", "supervisor", "supervisor"),
    ("sup_west", "Zhao Lei 赵磊", "en", "team_west", "supervisor", "supervisor"),
    ("rep_east1", "Chen Jie 陈杰", "zh-CN", "team_east", "rep", "rep"),
    ("rep_east2", "Liu Yang 刘洋", "en", "team_east", "rep", "rep"),
    ("rep_west1", "Sun Hui 孙慧", "zh-CN", "team_west", "rep", "rep"),
)


#: The demo company's zone (an admin may change it; the demo leaves a choice alone).
DEMO_TIME_ZONE = "Asia/Shanghai"


def reference_order(registry: Registry) -> list[str]:
    """Entity names so that each comes after the entities it references.

    Self references and cycles cannot be ordered; such references are left for
    the seeder to fill from rows that already exist (or leave empty).
    """
    targets = {name: {f.target for f in e.fields if f.type is FieldType.REFERENCE
                      and f.target and f.target != name}
               for name, e in registry.entities.items()}
    ordered: list[str] = []
    pending = dict(targets)
    while pending:
        ready = sorted(n for n, deps in pending.items() if deps <= set(ordered))
        if not ready:  # a cycle: take them in name order
            ready = sorted(pending)[:1]
        for name in ready:
            ordered.append(name)
            del pending[name]
    return ordered


def _remove_sqlite_file(url: str) -> None:
    parsed = make_url(url)
    if not parsed.get_backend_name() == "sqlite" or not parsed.database:
        raise TidepoolError(f"--reset only removes a SQLite demo file, not {url}")
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.database + suffix).unlink(missing_ok=True)


def prepare_demo(url: str, *, apps: Sequence[Path], reset: bool = False,
                 out: TextIO, rows: int = DEMO_ROWS) -> Registry:
    """Initialise (or migrate) ``url`` to ``apps`` and fill empty entities with sample rows."""
    if reset:
        _remove_sqlite_file(url)
    engine = make_engine(url)
    try:
        # packages + what admins configured: the packages alone would undo their changes
        registry = configured_registry(engine, apps)
        with engine.connect() as conn:
            applied = applied_registry(conn)
        if applied is None:
            init_database(engine, target=registry, actor="demo")
            out.write(f"initialised {url}\n")
        else:  # also creates engine tables added since the database was made
            plan = apply_migration(engine, target=registry, actor="demo")
            if not plan.is_empty:
                out.write(f"migrated {url} to the app packages\n")
        with write_transaction(engine) as conn:
            sync_roles(conn, registry)
            if get_setting(conn, TIME_ZONE) is None:  # the demo company sits in China
                set_company_time_zone(conn, DEMO_TIME_ZONE)
        reps = prepare_people(engine, registry, out=out)
        schema = build_schema(registry)
        for name in reference_order(registry):
            with engine.connect() as conn:
                existing = conn.execute(
                    select(func.count()).select_from(schema.table(name))).scalar_one()
            if existing:
                continue
            created = seed_entity(engine, entity=name, rows=rows, registry=registry)
            _give_to_reps(engine, registry, schema.table(name), name, reps)
            out.write(f"  {created} sample {name} rows\n")
        # Sample rows are handed to reps by plain UPDATEs: recount the leaderboard.
        from engine.reports.rollups import rebuild_all

        rebuild_all(engine, registry)
    finally:
        engine.dispose()
    return registry


def prepare_people(engine: Engine, registry: Registry, *, out: TextIO) -> list[int]:
    """Create the demo org tree and users once; returns the reps' user ids."""
    with write_transaction(engine) as conn:
        if find_user(conn, DEMO_USERS[0][0]) is None:
            departments: dict[str, int] = {}
            for code, name, parent in DEMO_DEPARTMENTS:
                departments[code] = create_department(
                    conn, code=code, name=name,
                    parent_id=departments[parent] if parent else None).id
            for login, display, locale, dept, role, level in DEMO_USERS:
                if role not in registry.roles:
                    continue
                user = create_user(conn, login=login, display_name=display, locale=locale,
                                   password=DEMO_PASSWORD, department_id=departments[dept],
                                   level=level)
                bind_role(conn, user_id=user.id, role=role, registry=registry)
            out.write(f"  demo users {', '.join(u[0] for u in DEMO_USERS)} "
                      f"(password: {DEMO_PASSWORD})\n")
        reps = [find_user(conn, login) for login, *_, role, _level in DEMO_USERS
                if role == "rep"]
    return [u.id for u in reps if u is not None]


def _give_to_reps(engine: Engine, registry: Registry, table: Any, name: str,
                  reps: Sequence[int]) -> None:
    """Owned sample rows go to the reps in turn; pooled ones: every fifth into the pool."""
    entity = registry.entity(name)
    if not entity.has(Feature.OWNED) or not reps:
        return
    pool = next((p.name for p in registry.pools.values() if p.entity == name), None)
    with write_transaction(engine) as conn:
        ids = list(conn.execute(select(table.c.id).order_by(table.c.id)).scalars())
        for index, record_id in enumerate(ids):
            if pool is not None and entity.has(Feature.POOLED) and index % 5 == 4:
                values: dict[str, Any] = {"owner_id": None, "pool_id": pool}
            else:
                values = {"owner_id": reps[index % len(reps)]}
            conn.execute(update(table).where(table.c.id == record_id).values(**values))
