"""Created and updated times and the stage as list columns, filters and sorts: the
times shown and filtered in the viewer's zone, the stage by its label; bad input
answers a clear 400."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import update
from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, make_record

Client = Callable[..., TestClient]


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="row-(\d+)"', html)]


def _backdate(db: DemoDB, entity: str, record_id: int, when: str) -> None:
    table = db.live.current().schema.table(entity)
    import datetime as dt

    at = dt.datetime.fromisoformat(when)
    with db.live.engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(created_at=at, updated_at=at))


def test_times_and_stage_are_columns_filters_and_sorts(demo_db: DemoDB,
                                                       client_for: Client) -> None:
    customer = make_record(demo_db, "customer", {"name": "Colstage shop"}, owner="rep_east1")
    early = make_record(demo_db, "opportunity", {"name": "Colstage early", "customer": customer},
                        owner="rep_east1")
    late = make_record(demo_db, "opportunity", {"name": "Colstage late", "customer": customer},
                       owner="rep_east1")
    # 2026-03-01 23:30 UTC is 2 March 07:30 in Shanghai
    _backdate(demo_db, "opportunity", early, "2026-03-01T23:30:00+00:00")
    _backdate(demo_db, "opportunity", late, "2026-03-05T10:00:00+00:00")
    rep = client_for("rep_east1", lang="zh-CN")
    page = rep.get("/e/opportunity", params={"q": "Colstage",
                                             "cols": "name,created_at,updated_at,stage"})
    assert page.status_code == 200, page.text[:300]
    head = re.search(r"<thead>.*?</thead>", page.text, re.DOTALL).group(0)  # type: ignore[union-attr]
    assert "创建时间" in head and "更新时间" in head and "阶段" in head
    assert "2026/3/2 07:30" in page.text  # the viewer's zone, the locale's format
    assert "背景调研" in page.text  # the stage by its label
    panel = rep.get("/e/opportunity/filters", params={"q": "Colstage"}).text  # opened
    assert 'name="f.created_at.gte"' in panel and 'type="datetime-local"' in panel
    assert 'name="f.stage.in"' in panel
    # a wall-clock range typed in Shanghai: 2 March is from 1 March 16:00 UTC
    day = rep.get("/e/opportunity", params={"q": "Colstage", "f.created_at.gte": "2026-03-02T00:00",
                                            "f.created_at.lte": "2026-03-02T23:59"})
    assert _ids(day.text) == [early]
    newest = rep.get("/e/opportunity", params={"q": "Colstage", "sort": "-created_at",
                                               "cols": "name,created_at"})
    assert _ids(newest.text) == [late, early]
    assert 'aria-sort="descending"' in newest.text
    oldest = rep.get("/e/opportunity", params={"q": "Colstage", "sort": "updated_at"})
    assert _ids(oldest.text) == [early, late]
    staged = rep.get("/e/opportunity", params={"q": "Colstage", "f.stage.in": "research"})
    assert set(_ids(staged.text)) == {early, late}
    assert _ids(rep.get("/e/opportunity", params={"q": "Colstage", "f.stage.in": "won"}).text) == []
    by_stage = rep.get("/e/opportunity", params={"q": "Colstage", "sort": "stage"})
    assert by_stage.status_code == 200
    mine = rep.get("/e/opportunity", params={"q": "Colstage", "cols": "name,owner_id",
                                             "f.owner_id.eq": str(demo_db.user_id("rep_east1"))})
    assert set(_ids(mine.text)) == {early, late}  # the owner: a column and a user picker
    assert 'name="f.owner_id.eq"' in mine.text


def test_a_list_without_a_pipeline_has_no_stage_column(client_for: Client) -> None:
    rep = client_for("rep_east1")
    assert rep.get("/e/customer", params={"cols": "name,created_at"}).status_code == 200
    assert rep.get("/e/customer", params={"cols": "stage"}).status_code == 400


def test_an_invalid_date_is_a_clear_400(client_for: Client) -> None:
    rep = client_for("rep_east1")
    bad = rep.get("/e/opportunity", params={"f.created_at.gte": "2026-13-45T99:00"})
    assert bad.status_code == 400
    assert "This list cannot be shown: Created:" in bad.text  # the column's label
    zh = client_for("rep_east1", lang="zh-CN").get(
        "/e/opportunity", params={"f.updated_at.lte": "yesterday-ish"})
    assert zh.status_code == 400 and "更新时间" in zh.text and "Traceback" not in zh.text
    assert client_for("rep_east1").get(  # a sort on a system column no index leads with
        "/e/customer", params={"sort": "created_by"}).status_code == 400
