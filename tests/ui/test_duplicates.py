"""A form refusing a duplicate: the unique key's own message, in the user's language,
naming the holder; another spelling of the same phone number is the same number."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.testclient import TestClient

from tests.ui.conftest import DemoDB, csrf, make_record

Client = Callable[..., TestClient]


def _phone_error(html: str) -> str:
    errors = dict(re.findall(r'id="w-(\w+)-error" class="field-error">([^<]+)<', html))
    return errors["phone"]


def test_duplicate_phone_refused_with_the_keys_message(client_for: Client,
                                                       demo_db: DemoDB) -> None:
    held = make_record(demo_db, "customer", {"name": "Holder Co", "phone": "+86 139 1234 0001"},
                       owner="rep_east1")
    for lang, message, holder in (
            ("en", "A customer with this phone number already exists.",
             f"It belongs to Customer #{held}."),
            ("zh-CN", "该电话号码的客户已存在。", f"它属于客户 #{held}。")):
        rep = client_for("rep_east1", lang=lang)
        bad = rep.post("/e/customer/new", data={
            "csrf_token": csrf(rep), "name": "Twin Co", "phone": "139-1234-0001"})
        assert bad.status_code == 422
        text = _phone_error(bad.text)
        assert text.startswith(message) and holder in text, text
        assert 'value="139-1234-0001"' in bad.text  # what was typed stays


def test_pattern_errors_use_the_fields_own_message_never_the_expression(
        client_for: Client) -> None:
    for lang, message in (("en", "Enter the 18-character unified social credit code"),
                          ("zh-CN", "请输入 18 位统一社会信用代码")):
        rep = client_for("rep_east1", lang=lang)
        bad = rep.post("/e/customer/new", data={
            "csrf_token": csrf(rep), "name": "Pattern Co", "licence_no": "abc"})
        assert bad.status_code == 422
        errors = dict(re.findall(r'id="w-(\w+)-error" class="field-error">([^<]+)<', bad.text))
        assert errors["licence_no"].startswith(message)
        assert "[0-9A-HJ" not in bad.text
