"""The import screens: upload, mapping with a per-cell preview, progress from the job
row, the error report; only the uploader sees an import."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from starlette.testclient import TestClient

from engine.actor import Actor
from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]

FILE = ("客户名称,电话,员工人数,Remarks\n"
        "Import One,+86 137 0000 0001,12,\n"
        "Import Two,137 0000 0002,many,\n"
        "Import Three,137-0000-0009,3,\n").encode("gb18030")


def _wait(client: TestClient, url: str) -> str:
    for _ in range(300):  # the run is a background thread; poll like the page does
        html = client.get(url, headers={"HX-Request": "true"}).text
        if "Finished." in html or "已完成" in html or 'role="alert"' in html:
            return html
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def test_upload_map_preview_run_and_download_errors(client_for: Client,
                                                    demo_db: DemoDB) -> None:
    make_record(demo_db, "customer", {"name": "Holder", "phone": "13700000009"},
                owner="rep_east1")
    rep = client_for("rep_east1")
    assert rep.get("/e/customer/import").status_code == 200
    sent = rep.post("/e/customer/import", data={"csrf_token": csrf(rep)},
                    files={"file": ("客户.csv", FILE, "text/csv")}, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:500]
    url = sent.headers["location"]
    page = rep.get(url)
    assert page.status_code == 200
    # zh-CN labels in the header row were matched to fields; the unknown column is not.
    selected = re.findall(r'<option value="(\w*)" selected>', page.text)
    assert selected == ["name", "phone", "employees", ""]
    assert "many" in page.text and 'class="cell-error"' in page.text  # the preview flags it
    # Someone else cannot see or run this import.
    other = client_for("rep_west1")
    assert other.get(url).status_code == 404
    started = rep.post(url, data={"csrf_token": csrf(rep), "col0": "name", "col1": "phone",
                                  "col2": "employees", "col3": "", "mode": "insert"},
                       follow_redirects=False)
    assert started.status_code == 303
    html = _wait(rep, url)
    counts = dict(re.findall(r"<dt>(\w+)</dt><dd>(\d+)</dd>", html))
    assert counts == {"Rows": "3", "Processed": "3", "Created": "1", "Updated": "0",
                      "Skipped": "0", "Rejected": "2"}
    report = rep.get(url + "/errors.csv")
    assert report.status_code == 200
    text = report.content.decode("utf-8-sig")
    assert "员工人数: 'many' is not a whole number" in text  # named by the file's column
    assert "Import Three" in text and "Import One" not in text
    assert other.get(url + "/errors.csv").status_code == 404
    records = demo_db.live.current().records
    page_of = records.list(Actor.system(), "customer")
    assert sum(1 for r in page_of.rows if r["name"] == "Import One") == 1


def test_bad_file_and_empty_mapping_are_refused(client_for: Client) -> None:
    rep = client_for("rep_east1", lang="zh-CN")
    bad = rep.post("/e/customer/import", data={"csrf_token": csrf(rep)},
                   files={"file": ("x.pdf", b"%PDF", "application/pdf")})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    sent = rep.post("/e/customer/import", data={"csrf_token": csrf(rep)},
                    files={"file": ("a.csv", b"name\nX\n", "text/csv")}, follow_redirects=False)
    url = sent.headers["location"]
    refused = rep.post(url, data={"csrf_token": csrf(rep), "col0": ""})
    assert refused.status_code == 422 and "请至少将一列对应到一个字段" in refused.text
    assert rep.post(url, data={"col0": "name"}).status_code == 403  # no CSRF token
