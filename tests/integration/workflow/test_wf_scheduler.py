"""`tidepool rules run` end to end on an initialised CRM database, and the scheduler thread
that `tidepool serve` runs: it runs on its interval and stops with the server."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.actor import Actor
from engine.cli import main
from engine.errors import NotFoundError
from engine.runtime import open_runtime
from engine.storage.database import make_engine
from engine.workflow.rule_runner import run_rules
from engine.workflow.scheduler import RuleScheduler
from tests.conftest import REPO_ROOT
from tests.integration.workflow._rules_world import DAY, T0, World


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_rules_run_cli_previews_then_moves(sqlite_url: str, tmp_path: Path) -> None:
    code, out = run("init", "--db", sqlite_url, "--app", str(REPO_ROOT / "apps" / "crm"),
                    "--admin-password", "first-admin-pw")
    assert code == 0, out
    engine = make_engine(sqlite_url)
    runtime = open_runtime(sqlite_url, engine=engine)
    admin = Actor(user_id=1, login="admin", is_system=True)
    kept = runtime.records.create(admin, "customer", {"name": "Kept", "grade": "A",
                                                      "owner_id": 1}).id
    idle = runtime.records.create(admin, "customer", {"name": "Idle", "grade": "C",
                                                      "owner_id": 1}).id
    engine.dispose()
    code, out = run("rules", "run", "--db", sqlite_url, "--dry-run")
    assert code == 0, out
    assert "customer_pool.untouched_7d: would move 0" in out and "total: would move 0" in out
    later = "2030-01-01T00:00:00+08:00"
    code, out = run("rules", "run", "--db", sqlite_url, "--dry-run", "--at", later,
                    "--pool", "customer_pool")
    assert code == 0, out
    untouched = [line.split()[1] for line in out.splitlines()
                 if line.startswith("    customer ") and "rule customer_pool.untouched_7d" in line]
    assert untouched == [str(idle)]             # grade A is exempt from this rule
    assert f"customer {kept} (owner 1) -> return_to_pool: rule customer_pool.held_90d" in out
    code, out = run("rules", "run", "--db", sqlite_url, "--at", later)
    assert code == 2 and "--dry-run" in out
    code, out = run("rules", "run", "--db", sqlite_url, "--pool", "nope")
    assert code == 1 and "pool nope not found" in out
    code, out = run("rules", "run", "--db", sqlite_url, "--dry-run", "--at", "soon")
    assert code == 2 and "ISO 8601" in out


def test_scheduler_runs_on_its_interval_and_stops(make_rules_world: Callable[..., World]) -> None:
    w = make_rules_world(rules=[{"name": "idle", "kind": "drop", "clock": "created",
                           "after": {"days": 1}}])
    item = w.item("a1")
    scheduler = RuleScheduler(lambda: w.records, interval=0.05, clock=lambda: T0 + 2 * DAY)
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while scheduler.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert scheduler.runs >= 2 and not scheduler.running
    assert w.owner(item) is None
    assert scheduler.last is not None and scheduler.last.moved == 0   # idempotent runs
    with pytest.raises(ValueError):
        RuleScheduler(lambda: w.records, interval=0)


def test_an_unknown_pool_is_refused(make_rules_world: Callable[..., World]) -> None:
    w = make_rules_world()
    with pytest.raises(NotFoundError):
        run_rules(w.records, pool="nope")
