"""Imports: every row created, updated, skipped or in the error report, on both databases."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, func, select

from engine.actor import Actor
from engine.errors import ForbiddenError
from engine.records import RecordService
from engine.storage.tables import StorageSchema
from engine.workflow.import_files import ImportFileError, TableFile, decode, read_table
from engine.workflow.imports import (
    ImportMode,
    ImportReport,
    error_report,
    match_columns,
    run_import,
)
from tests.integration.records._docs import create_tables


@pytest.fixture
def schema(db_engine: Engine) -> StorageSchema:
    return create_tables(db_engine)


@pytest.fixture
def service(db_engine: Engine, schema: StorageSchema) -> RecordService:
    return RecordService(engine=db_engine, schema=schema)


SYSTEM = Actor.system("test")

MESSY = """name,phone,employees,tier,unused
Acme,+86 130-0000-0003,12,gold,x
Beta,130 0000 0003,5,silver,
Gamma,13100000001,many,gold,
Delta,13100000002,7,platinum,
,13100000003,1,gold,
Eps,13900000009,3,,
Zeta,86 139 0000 0009,4,bronze,
"""


def csv_table(text: str, encoding: str = "utf-8") -> TableFile:
    return read_table(text.encode(encoding), filename="rows.csv")


def run(service: RecordService, table: TableFile, **kw: object) -> ImportReport:
    mapping = match_columns(service.plan("account").entity, table.headers)
    return run_import(service, SYSTEM, entity="account", table=table, mapping=mapping,
                      batch=3, **kw)  # type: ignore[arg-type]


def test_messy_file_every_row_accounted_for(service: RecordService) -> None:
    service.create(SYSTEM, "account", {"name": "Old", "phone": "139-0000-0009"})
    table = csv_table(MESSY)
    report = run(service, table)
    assert (report.total, report.created, report.updated, report.skipped) == (7, 1, 0, 0)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "the same key as line 2 of this file"),
        (4, "employees: 'many' is not a whole number"),
        (5, "tier: 'platinum' is not one of the options (gold, silver, bronze)"),
        (6, "name: is required"),
        (7, "phone: phone='13900000009' already exists (id 1)"),
        (8, "the same key as line 7 of this file"),
    ]
    assert report.done == report.total
    assert service.count(SYSTEM, "account") == 2
    # The report is a CSV Excel opens: the original cells, the line and the reason.
    text = error_report(table, report).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["name", "phone", "employees", "tier", "unused", "line", "error"]
    assert rows[2] == ["Gamma", "13100000001", "many", "gold", "", "4",
                       "employees: 'many' is not a whole number"]
    assert len(rows) == 1 + len(report.rejected)


def test_the_error_report_speaks_the_importing_users_language(service: RecordService) -> None:
    from functools import partial

    from ui.i18n import translate

    table = csv_table(MESSY)
    report = run(service, table)
    text = error_report(table, report, translate=partial(translate, "zh_CN")).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][-2:] == ["行号", "错误"]
    reasons = [row[-1] for row in rows[1:]]
    assert reasons[0] == "与本文件第 2 行的唯一键相同"
    # Every reason is translated: no English template is left in the Chinese report.
    for english in ("the same key", "is not a whole number", "is required",
                    "is not one of the options", "already exists"):
        assert not any(english in r for r in reasons), (english, reasons)


def test_skip_and_upsert_modes_use_normalised_keys(service: RecordService) -> None:
    old = service.create(SYSTEM, "account", {"name": "Old", "phone": "13000000003",
                                             "employees": 1})
    table = csv_table("name,phone,employees\nNew name,+86 130 0000 0003,9\nFresh,13200000000,\n")
    skipped = run(service, table, mode=ImportMode.SKIP)
    assert (skipped.created, skipped.skipped, skipped.rejected) == (1, 1, [])
    assert service.get(SYSTEM, "account", old.id)["name"] == "Old"
    table = csv_table("name,phone,employees\nNew name,+86 130 0000 0003,9\n"
                      "Other,13300000000,\n")
    upserted = run(service, table, mode=ImportMode.UPSERT)
    assert (upserted.created, upserted.updated, upserted.rejected) == (1, 1, [])
    after = service.get(SYSTEM, "account", old.id)
    assert (after["name"], after["employees"], after["phone"]) == \
        ("New name", 9, "+86 130 0000 0003")
    assert service.count(SYSTEM, "account") == 3


def test_dry_run_writes_nothing_and_counts_the_same(service: RecordService,
                                                    db_engine: Engine,
                                                    schema: StorageSchema) -> None:
    report = run(service, csv_table(MESSY), dry_run=True)
    assert report.dry_run and report.created == 2 and len(report.rejected) == 5
    with db_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.table("account"))
                            ).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(schema.system["tp_activity"])
                            ).scalar_one() == 0


def test_encodings_excel_writes_in_china(service: RecordService) -> None:
    text = "name,city\n上海贸易,上海\n"
    for encoding in ("utf-8-sig", "gb18030", "utf-8"):
        table = read_table(text.encode(encoding), filename="x.csv")
        assert table.headers == ("name", "city") and table.rows[0][1] == ("上海贸易", "上海")
    assert decode("上海".encode("gb18030"))[1] == "gb18030"
    assert decode("\ufeff上海".encode())[1] == "utf-8-sig"


def test_xlsx_numbers_and_dates_read_as_typed(service: RecordService, tmp_path: Path) -> None:
    import datetime as dt

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "PHONE", "Founded", "Employees"])
    sheet.append(["Acme", 13000000003, dt.datetime(2020, 5, 1), 12.0])
    buffer = io.BytesIO()
    book.save(buffer)
    table = read_table(buffer.getvalue(), filename="rows.xlsx")
    assert table.rows == ((2, ("Acme", "13000000003", "2020-05-01", "12")),)
    report = run(service, table)
    assert report.created == 1
    rec = service.get(SYSTEM, "account", 1)
    assert (rec["phone"], rec["employees"], str(rec["founded"])) == \
        ("13000000003", 12, "2020-05-01")


def test_headers_match_labels_in_either_language() -> None:
    from engine.metadata.model import Entity, Field, FieldType, LocalText

    entity = Entity(name="lead", label=LocalText.of({"en": "Lead"}),
                    plural_label=LocalText.of({"en": "Leads"}), title_field="name", fields=(
                        Field("name", FieldType.TEXT, LocalText.of({"en": "Name",
                                                                    "zh-CN": "姓名"})),
                        Field("phone", FieldType.PHONE, LocalText.of({"en": "Mobile phone",
                                                                      "zh-CN": "手机"}))))
    assert match_columns(entity, ["姓名", "ＭＯＢＩＬＥ  PHONE", "备注"]) == {
        "姓名": "name", "ＭＯＢＩＬＥ  PHONE": "phone"}
    assert match_columns(entity, ["手机号", "x"], remembered={"手机号": "phone"}) == {
        "手机号": "phone"}


@pytest.mark.parametrize(("data", "name"), [
    (b"", "a.csv"), (b"\xff\xfe\x00bad", "a.csv"), (b"PK-not-a-zip", "a.xlsx"),
    (b"a,b\n", "a.pdf")])
def test_unreadable_files_are_refused_clearly(data: bytes, name: str) -> None:
    with pytest.raises(ImportFileError):
        read_table(data, filename=name)


def test_forbidden_import_writes_nothing(service: RecordService) -> None:
    class NoCreate:
        def __getattr__(self, name: str) -> object:
            return getattr(service.policy, name)

        def check_action(self, actor: Actor, entity: object, action: str) -> None:
            raise ForbiddenError("account", action)

        def allows(self, actor: Actor, entity: object, action: str) -> bool:
            return False

    guarded = RecordService(engine=service.engine, schema=service.schema,
                            policy=NoCreate())  # type: ignore[arg-type]
    with pytest.raises(ForbiddenError):
        run(guarded, csv_table(MESSY))
    assert service.count(SYSTEM, "account") == 0
