"""``serve`` on a database made by an older engine (a system column or table missing)
refuses to start with a message naming ``tidepool migrate``, instead of answering 500
on the first page that reads the missing column; after ``migrate`` it starts. SQLite
and PostgreSQL."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text

from engine.cli import main
from engine.runtime import OutdatedDatabaseError, require_current_system_tables
from engine.storage.database import make_engine
from tests.conftest import REPO_ROOT
from ui.serve import build_app, serve

CRM = str(REPO_ROOT / "apps" / "crm")


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_serve_refuses_an_unmigrated_database_until_migrate(db_url: str) -> None:
    code, said = _cli("init", "--db", db_url, "--app", CRM, "--admin-password", "first-admin-pw")
    assert code == 0, said
    engine = make_engine(db_url)
    with engine.begin() as conn:  # as a database made before these existed
        conn.execute(text("ALTER TABLE tp_user DROP COLUMN time_zone"))
        conn.execute(text("DROP TABLE tp_setting"))
    with pytest.raises(OutdatedDatabaseError) as refused:
        serve(db_url, port=1, out=io.StringIO(), workers=1, rules_interval=None)
    message = str(refused.value)
    assert "tidepool migrate --db" in message
    assert "time_zone" in message and "tp_setting" in message
    with pytest.raises(OutdatedDatabaseError):
        build_app(db_url)
    code, said = _cli("serve", "--db", db_url, "--port", "1")
    assert code == 1 and "error:" in said and "tidepool migrate" in said
    assert "Traceback" not in said
    with engine.connect() as conn:  # nothing was changed by the refusal
        assert "time_zone" not in list(conn.execute(text("SELECT * FROM tp_user")).keys())
    code, said = _cli("migrate", "--db", db_url, "--app", CRM)
    assert code == 0, said
    require_current_system_tables(engine, db_url)  # now current: serve goes on
    engine.dispose()


def test_serve_names_init_for_an_empty_database(sqlite_url: str) -> None:
    code, said = _cli("serve", "--db", sqlite_url, "--port", "1")
    assert code == 1 and "tidepool init" in said
