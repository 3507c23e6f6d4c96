"""`tidepool reports verify` finds rollups that drifted from the base tables and
`tidepool reports rebuild` brings them back."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import create_engine, update

from engine.cli import main
from engine.demo import prepare_demo
from engine.storage.report_tables import ROLLUP_TABLE
from engine.storage.system_tables import add_system_tables
from tests.conftest import REPO_ROOT


def test_verify_finds_drift_and_rebuild_fixes_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    prepare_demo(url, apps=[REPO_ROOT / "apps" / "crm"], out=io.StringIO(), rows=15)
    out = io.StringIO()
    assert main(["reports", "verify", "--db", url], out) == 0
    assert "rollups equal the raw aggregates" in out.getvalue()
    from sqlalchemy import MetaData

    table = add_system_tables(MetaData())[ROLLUP_TABLE]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.measure == "follow_ups")
                     .values(count=table.c.count + 1))
    engine.dispose()
    out = io.StringIO()
    assert main(["reports", "verify", "--db", url], out) == 1
    assert "follow_ups owner" in out.getvalue() and "mismatch" in out.getvalue()
    out = io.StringIO()
    assert main(["reports", "rebuild", "--db", url, "--measure", "follow_ups"], out) == 0
    assert "follow_ups:" in out.getvalue()
    assert main(["reports", "verify", "--db", url], io.StringIO()) == 0
