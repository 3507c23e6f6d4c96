"""The first administrator (``tidepool init``), roles synced on init/migrate, the perms CLI.

Everything runs through ``engine.cli.main`` on SQLite and PostgreSQL, then
looks at the database: refused input leaves no table and no user behind.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from engine import cli
from engine.actor import Actor
from engine.errors import AuthenticationError, ValidationError
from engine.metadata.loader import load_packages
from engine.permissions import _tables as t
from engine.permissions.bootstrap import create_first_admin, existing_admin
from engine.permissions.identity import authenticate, find_user
from engine.permissions.policy_store import bindings_of, load_rules, role_rules
from engine.permissions.view_as import is_admin
from engine.records import RecordService
from engine.storage.applied import applied_registry
from engine.storage.database import make_engine, write_transaction
from engine.storage.tables import build_schema
from tests.conftest import REPO_ROOT

CRM = REPO_ROOT / "apps" / "crm"
PASSWORD = "a-long-admin-pw"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as a script would: no terminal, no password in the environment."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    monkeypatch.delenv(cli.ADMIN_PASSWORD_ENV, raising=False)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_init_without_a_password_refuses_and_writes_nothing(db_url: str) -> None:
    code, out = run("init", "--db", db_url)
    assert code == 2 and "--admin-password" in out and "nothing was changed" in out
    assert _tables(db_url) == set()


def test_init_with_a_bad_password_refuses_before_any_table(db_url: str) -> None:
    code, out = run("init", "--db", db_url, "--admin-password", "short")
    assert code == 1 and "password: at least 8 characters" in out
    assert _tables(db_url) == set()


def test_init_creates_the_admin_with_synced_roles(db_url: str) -> None:
    code, out = run("init", "--db", db_url, "--admin-login", "Boss", "--admin-password", PASSWORD)
    assert code == 0, out
    assert "administrator: boss (created)" in out
    engine = make_engine(db_url)
    try:
        user = authenticate(engine, "boss", PASSWORD)
        with engine.connect() as conn:
            assert is_admin(conn, user.id) and existing_admin(conn) == "boss"
            assert bindings_of(conn, user.id) == [("admin", "org")]
            stored = sorted(r for r in load_rules(conn) if r[0] == "p")
            root = conn.execute(select(t.department.c.code, t.department.c.parent_id)).all()
        assert stored == sorted(role_rules(load_packages([CRM])))
        assert [tuple(r) for r in root] == [("root", None)]
        assert user.department_id is not None
    finally:
        engine.dispose()
    # A second init finds the administrator and asks for nothing.
    code, out = run("init", "--db", db_url)
    assert code == 0 and "administrator: boss (already there)" in out


def test_init_takes_the_password_from_the_environment_or_a_prompt(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.ADMIN_PASSWORD_ENV, PASSWORD)
    assert run("init", "--db", sqlite_url)[0] == 0
    engine = make_engine(sqlite_url)
    assert authenticate(engine, "admin", PASSWORD).login == "admin"
    engine.dispose()

    monkeypatch.delenv(cli.ADMIN_PASSWORD_ENV)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    typed = iter([PASSWORD, "something-else"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(typed))
    other = f"sqlite:///{tmp_path / 'other.db'}"
    code, out = run("init", "--db", other)
    assert code == 1 and "the two passwords differ" in out
    assert _tables(other) == set()
    typed = iter([PASSWORD, PASSWORD])
    assert run("init", "--db", other)[0] == 0
    engine = make_engine(other)
    assert authenticate(engine, "admin", PASSWORD).login == "admin"
    engine.dispose()


def test_init_refuses_packages_without_an_admin_role(sqlite_url: str, tmp_path: Path) -> None:
    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    (app / "roles" / "admin.json").unlink()
    manifest = json.loads((app / "app.json").read_text(encoding="utf-8"))
    manifest["contributes"]["roles"].remove("admin")
    (app / "app.json").write_text(json.dumps(manifest), encoding="utf-8")
    for path in (app / "dashboards").glob("*.json"):  # dashboards name the roles they serve
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["roles"] = [r for r in doc.get("roles", []) if r != "admin"] or ["manager"]
        path.write_text(json.dumps(doc), encoding="utf-8")
    code, out = run("init", "--db", sqlite_url, "--app", str(app), "--admin-password", PASSWORD)
    assert code == 1 and "declare no role 'admin'" in out, out
    assert _tables(sqlite_url) == set()


def test_there_is_only_one_first_admin(sqlite_url: str) -> None:
    assert run("init", "--db", sqlite_url, "--admin-password", PASSWORD)[0] == 0
    engine = make_engine(sqlite_url)
    registry = load_packages([CRM])
    try:
        with pytest.raises(ValidationError) as refused, write_transaction(engine) as conn:
            create_first_admin(conn, registry, login="second", password=PASSWORD)
        assert "already an administrator (admin)" in str(refused.value)
        with engine.connect() as conn:
            assert find_user(conn, "second") is None
    finally:
        engine.dispose()


def test_migrate_keeps_the_stored_roles_those_of_the_metadata(db_url: str,
                                                              tmp_path: Path) -> None:
    app = tmp_path / "crm"
    shutil.copytree(CRM, app)
    assert run("init", "--db", db_url, "--app", str(app), "--admin-password", PASSWORD)[0] == 0
    rep = app / "roles" / "rep.json"
    doc = json.loads(rep.read_text(encoding="utf-8"))
    doc["grants"][0]["actions"].append("export")   # lead, own
    rep.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    code, out = run("migrate", "--db", db_url, "--app", str(app))
    assert code == 0 and "roles updated from the metadata" in out, out
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = [r for r in load_rules(conn) if r[0] == "p"]
        assert ("p", "rep", "*", "lead", "export", "own") in stored
        assert sorted(stored) == sorted(role_rules(load_packages([app])))
    finally:
        engine.dispose()
    code, out = run("migrate", "--db", db_url, "--app", str(app))
    assert code == 0 and "roles updated" not in out   # nothing changed: no reload anywhere


def test_perms_commands_build_an_org_and_explain(sqlite_url: str) -> None:
    url = sqlite_url
    assert run("init", "--db", url, "--admin-password", PASSWORD)[0] == 0
    assert run("perms", "dept-add", "--db", url, "--code", "north", "--name", "North",
               "--parent", "root")[0] == 0
    code, out = run("perms", "user-add", "--db", url, "--login", "rep1", "--name", "Rep One",
                    "--department", "north", "--level", "rep", "--role", "rep")
    assert code == 0 and "cannot sign in" in out, out
    code, out = run("perms", "user-add", "--db", url, "--login", "sup", "--department",
                    "north", "--role", "supervisor@dept:north")
    assert code == 0, out
    code, out = run("perms", "user-add", "--db", url, "--login", "x", "--department", "nowhere")
    assert code == 1 and "no department 'nowhere'" in out
    code, out = run("perms", "bind", "--db", url, "--user", "rep1", "--role", "ghost")
    assert code == 1 and "no role 'ghost'" in out

    engine = make_engine(url)
    with engine.connect() as conn:
        rep1 = find_user(conn, "rep1")
        registry = applied_registry(conn)
    assert rep1 is not None and registry is not None
    records = RecordService(engine=engine, schema=build_schema(registry))
    created = records.create(Actor.system(), "customer", {"name": "Shop", "owner_id": rep1.id})
    engine.dispose()

    code, out = run("perms", "why", "--db", url, "--user", "sup", "--entity", "customer",
                    "--id", str(created.id), "--action", "update")
    assert code == 0 and "allowed" in out and "department north" in out, out
    code, out = run("perms", "why", "--db", url, "--user", "rep1", "--entity", "customer",
                    "--id", str(created.id), "--action", "delete")
    assert code == 1 and "none of your roles grants delete" in out, out
    code, out = run("perms", "why", "--db", url, "--user", "rep1", "--entity", "nothing",
                    "--id", "1")
    assert code == 1 and "entity nothing not found" in out
    code, out = run("perms", "bind", "--db", url, "--user", "rep1", "--role", "manager",
                    "--domain", "dept:north")
    assert code == 0 and "holds manager in dept:north" in out
    code, out = run("perms", "why", "--db", url, "--user", "rep1", "--entity", "customer",
                    "--id", str(created.id), "--action", "delete")
    assert code == 0 and "manager" in out, out
    assert run("perms", "bind", "--db", url, "--user", "rep1", "--role", "manager",
               "--domain", "dept:north", "--unbind")[0] == 0
    assert run("perms", "deactivate", "--db", url, "--user", "rep1")[0] == 0
    code, out = run("perms", "why", "--db", url, "--user", "rep1", "--entity", "customer",
                    "--id", str(created.id))
    assert code == 1 and "deactivated" in out
    engine = make_engine(url)
    with pytest.raises(AuthenticationError):
        authenticate(engine, "rep1", "whatever-password")
    engine.dispose()
