"""The ``tidepool`` command line end to end: check, init, migrate, seed, demo.

Each command runs through ``engine.cli.main`` against real databases (SQLite and
PostgreSQL); one test runs the installed console script as a subprocess.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from engine.actor import Actor
from engine.cli import main
from engine.runtime import open_runtime
from engine.storage.database import make_engine
from tests.conftest import REPO_ROOT

CRM = REPO_ROOT / "apps" / "crm"
ADMIN = ("--admin-password", "first-admin-pw")  # init refuses to run without one


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def copy_crm(tmp_path: Path) -> Path:
    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    return app


def edit_entity(app: Path, name: str, change) -> None:  # type: ignore[no-untyped-def]
    path = app / "entities" / f"{name}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")


def test_check_accepts_the_crm_package() -> None:
    code, out = run("check", str(CRM))
    assert code == 0, out
    assert out.startswith("ok:")


def test_check_reports_every_error_with_file_and_pointer(tmp_path: Path) -> None:
    app = copy_crm(tmp_path)

    def break_it(doc: dict) -> None:  # type: ignore[type-arg]
        doc["fields"][0]["type"] = "textt"
        doc["title_field"] = "no_such_field"
        doc["colour"] = "blue"

    edit_entity(app, "customer", break_it)
    code, out = run("check", str(app))
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith(str(app))]
    assert any("customer.json:/fields/0/type" in line for line in lines), out
    assert any("customer.json:/colour" in line or "customer.json:" in line and "colour" in line
               for line in lines), out
    assert out.rstrip().endswith("issue(s) found")


def test_init_migrate_dry_run_and_apply_keep_rows(db_url: str, tmp_path: Path) -> None:
    app = copy_crm(tmp_path)
    code, out = run("init", "--db", db_url, "--app", str(app), *ADMIN)
    assert code == 0, out
    code, out = run("seed", "--db", db_url, "--entity", "customer", "--rows", "50")
    assert code == 0, out
    assert "seeded 50 customer rows" in out

    edit_entity(app, "customer", lambda d: d["fields"].append(
        {"name": "vip_level", "type": "integer", "label": {"en": "VIP level", "zh-CN": "VIP 等级"},
         "min": 0, "max": 9}))
    code, out = run("migrate", "--db", db_url, "--app", str(app), "--dry-run")
    assert code == 0, out
    assert "vip_level" in out and "dry run: nothing was changed" in out
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert "vip_level" not in {c["name"] for c in inspect(conn).get_columns("customer")}

    code, out = run("migrate", "--db", db_url, "--app", str(app))
    assert code == 0, out
    with engine.connect() as conn:
        assert "vip_level" in {c["name"] for c in inspect(conn).get_columns("customer")}
    runtime = open_runtime(db_url, engine=engine)
    assert runtime.records.count(Actor.system(), "customer") == 50
    engine.dispose()


def test_migrate_refuses_a_lossy_change_and_exits_1(sqlite_url: str, tmp_path: Path) -> None:
    app = copy_crm(tmp_path)
    assert run("init", "--db", sqlite_url, "--app", str(app), *ADMIN)[0] == 0
    assert run("seed", "--db", sqlite_url, "--entity", "customer", "--rows", "5")[0] == 0

    def shrink(doc: dict) -> None:  # type: ignore[type-arg]
        for f in doc["fields"]:
            if f["name"] == "website":  # URLs never read as integers
                f["type"] = "integer"

    edit_entity(app, "customer", shrink)
    code, out = run("migrate", "--db", sqlite_url, "--app", str(app))
    assert code == 1
    assert "website" in out and "5 row" in out
    engine = make_engine(sqlite_url)
    runtime = open_runtime(sqlite_url, engine=engine)
    assert runtime.registry.entity("customer").field("website").type.value == "url"
    engine.dispose()


def test_init_twice_with_other_metadata_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    app = copy_crm(tmp_path)
    assert run("init", "--db", sqlite_url, "--app", str(app), *ADMIN)[0] == 0
    assert run("init", "--db", sqlite_url, "--app", str(app), *ADMIN)[0] == 0  # same metadata: no-op
    edit_entity(app, "contact", lambda d: d["fields"].append(
        {"name": "nickname", "type": "text", "label": {"en": "Nickname", "zh-CN": "昵称"}}))
    code, out = run("init", "--db", sqlite_url, "--app", str(app), *ADMIN)
    assert code == 1 and "migrate" in out


def test_seed_refuses_an_unknown_entity_and_an_empty_database(sqlite_url: str) -> None:
    code, out = run("seed", "--db", sqlite_url, "--entity", "customer", "--rows", "1")
    assert code == 1 and "tidepool init" in out
    assert run("init", "--db", sqlite_url, *ADMIN)[0] == 0
    code, out = run("seed", "--db", sqlite_url, "--entity", "nothing", "--rows", "1")
    assert code == 1 and "no entity 'nothing'" in out


def test_demo_without_serving_builds_a_database_with_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    code, out = run("demo", "--db", url, "--no-serve")
    assert code == 0, out
    engine = make_engine(url)
    runtime = open_runtime(url, engine=engine)
    with engine.connect() as conn:
        for name in runtime.registry.entities:
            rows = conn.execute(select(func.count()).select_from(runtime.schema.table(name)))
            assert rows.scalar_one() > 0, name
    engine.dispose()


def test_console_script_is_installed_and_exits_non_zero_on_errors(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("tidepool")
    assert script.exists(), "pip install -e . should install the tidepool script"
    broken = copy_crm(tmp_path)
    (broken / "app.json").write_text("{not json", encoding="utf-8")
    result = subprocess.run([str(script), "check", str(broken)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "app.json" in result.stdout


@pytest.mark.parametrize("argv", [[], ["check"], ["seed", "--entity", "x"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv, out=io.StringIO())
    assert exc.value.code == 2


def test_migrate_applies_ddl_version_and_roles_in_one_transaction(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while resyncing roles leaves no column and no version behind."""
    from engine.configure import service
    from engine.storage.applied import applied_version

    app = copy_crm(tmp_path)
    code, out = run("init", "--db", db_url, "--app", str(app), *ADMIN)
    assert code == 0, out
    engine = make_engine(db_url)
    with engine.connect() as conn:
        before = applied_version(conn)
    edit_entity(app, "customer", lambda d: d["fields"].append(
        {"name": "vip_level", "type": "integer", "label": {"en": "VIP level", "zh-CN": "VIP 等级"}}))

    def broken_sync(conn, registry):  # type: ignore[no-untyped-def]
        raise RuntimeError("role store unavailable")

    monkeypatch.setattr(service, "sync_roles", broken_sync)
    with pytest.raises(RuntimeError, match="role store unavailable"):
        run("migrate", "--db", db_url, "--app", str(app))
    with engine.connect() as conn:
        assert "vip_level" not in {c["name"] for c in inspect(conn).get_columns("customer")}
        assert applied_version(conn) == before

    monkeypatch.undo()
    code, out = run("migrate", "--db", db_url, "--app", str(app))
    assert code == 0, out
    with engine.connect() as conn:
        assert "vip_level" in {c["name"] for c in inspect(conn).get_columns("customer")}
        assert applied_version(conn) != before
    engine.dispose()


def test_import_reports_progress_counts_and_writes_the_error_report(sqlite_url: str,
                                                                    tmp_path: Path) -> None:
    code, out = run("init", "--db", sqlite_url, *ADMIN)
    assert code == 0, out
    file = tmp_path / "leads.csv"
    # GB18030, headers are the zh-CN labels, one number spelled twice.
    file.write_bytes("联系人,电话,公司名称\n王一,+86 130-0000-0003,甲公司\n王二,130 0000 0003,乙公司\n"
                     .encode("gb18030"))
    code, out = run("import", "--db", sqlite_url, "--entity", "lead", str(file), "--dry-run")
    assert "rows/s" in out and "1 would be created" in out and "1 rejected of 2" in out, out
    code, out = run("import", "--db", sqlite_url, "--entity", "lead", str(file))
    assert code == 1 and "1 created" in out, out
    report = (tmp_path / "leads.errors.csv").read_text(encoding="utf-8-sig")
    assert "the same key as line 2 of this file" in report
    code, out = run("import", "--db", sqlite_url, "--entity", "nope", str(file))
    assert code == 2 and "no entity 'nope'" in out
