"""An import on a phone in Chinese (390x844, zh-CN): upload a CSV with Chinese headers,
map the columns the headers did not name, preview again with a per-cell error, start,
watch the progress and find the error report link. Every step fits the screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import login
from tests.browser.screen_checks import check_screen
from tests.browser.test_phone_day import PHONE, _page

CSV = ("客户名称,手机,人数\n"
       "浏览器导入一,+86 136 1111 0001,12\n"
       "浏览器导入二,136 1111 0002,很多\n").encode("utf-8-sig")


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, PHONE)


def test_import_with_mapping_on_a_phone(phone: Page, live_server: str, tmp_path: Path) -> None:
    page = phone
    login(page, live_server, "rep_east1", lang="zh-CN")
    page.goto(f"{live_server}/e/customer/import")
    check_screen(page, "import-upload-phone")
    upload = tmp_path / "客户.csv"
    upload.write_bytes(CSV)
    page.set_input_files("#import-file", str(upload))
    page.click("section.card form button[type=submit]")
    page.wait_for_url(f"{live_server}/e/customer/import/*")
    # 客户名称 is the name field's Chinese label; 手机 and 人数 name no field yet.
    assert page.locator("select[name=col0]").input_value() == "name"
    assert page.locator("select[name=col1]").input_value() == ""
    page.select_option("select[name=col1]", "phone")
    page.select_option("select[name=col2]", "employees")
    page.click("button[name=preview]")
    page.wait_for_selector("td.cell-error")
    assert page.locator("select[name=col2]").input_value() == "employees"
    assert "不是整数" in page.locator("td.cell-error").first.inner_text()  # zh-CN message
    assert page.locator("select[name=col1]").is_visible()  # mapping usable at 390px
    check_screen(page, "import-mapping-phone")
    page.get_by_role("button", name="开始导入").click()
    link = page.get_by_role("link", name="下载被拒绝的行及原因")
    link.wait_for()
    assert page.locator("dl.import-counts").inner_text().count("1") >= 2  # 1 in, 1 out
    check_screen(page, "import-done-phone")
    with page.expect_download() as download:
        link.click()
    report = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    assert "浏览器导入二" in report and "浏览器导入一" not in report
