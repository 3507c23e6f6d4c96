"""Request bodies are bounded before they are read (``ui.limits.BodyLimitMiddleware``).

Each test offers its body lazily through ``raw_call`` and checks how much of it
the app pulled: a refused body must not be read (Content-Length says it is too
large, or the visitor has not signed in), and a body without a length must be
cut off at the limit, not spooled to disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from starlette.testclient import TestClient

from engine.permissions.tokens import create_token
from engine.storage.database import write_transaction
from tests.security.conftest import DemoDB, csrf, raw_call
from tests.ui.conftest import SECRET, make_demo
from ui.api.body import DEFAULT_MAX_BODY
from ui.app import create_app
from ui.limits import DEFAULT_FORM_BODY, FORM_OVERHEAD, MIB, SMALL_FORM_BODY

Client = Callable[..., TestClient]
BOUNDARY = "tidepoolboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
#: The demo app of tests/ui/conftest.py takes uploads of up to 256 KiB.
RECORD_FORM_LIMIT = 256 * 1024 + FORM_OVERHEAD


def _multipart_head(token: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            f"{token}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"attachment\"; "
            f"filename=\"big.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").encode()


def _lazy(head: bytes, total: int, chunk: int = MIB) -> Iterator[bytes]:
    """``head`` then zeros up to ``total`` bytes, one chunk at a time (never all in memory)."""
    yield head
    block = b"0" * chunk
    for _ in range((total - len(head)) // chunk):
        yield block


def _cookies(client: TestClient) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def test_anonymous_300_mib_post_is_sent_to_sign_in_unread(app, client_for: Client) -> None:  # type: ignore[no-untyped-def]
    visitor = client_for(None)
    token = csrf(visitor)  # what /login hands out to anyone
    size = 300 * MIB
    for headers in ([("content-type", MULTIPART), ("content-length", str(size))],
                    [("content-type", MULTIPART)]):  # and without a length (chunked)
        response = raw_call(app, "POST", "/e/customer/new", headers=headers,
                            body=_lazy(_multipart_head(token), size), cookies=_cookies(visitor))
        assert response.status == 303
        assert response.headers["location"].startswith("/login")
        assert response.consumed == 0
    htmx = raw_call(app, "POST", "/e/customer/bulk", cookies=_cookies(visitor),
                    headers=[("content-type", MULTIPART), ("hx-request", "true"),
                             ("x-csrf-token", token)], body=_lazy(b"", 10 * MIB))
    assert htmx.status == 204 and htmx.headers["hx-redirect"].startswith("/login")
    assert htmx.consumed == 0


def test_a_visitor_may_still_sign_in_and_choose_a_language(client_for: Client) -> None:
    visitor = client_for(None)
    chosen = visitor.post("/language", data={"csrf_token": csrf(visitor), "lang": "zh-CN",
                                             "next": "/login"}, follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/login"
    signed_in = client_for("rep_east1")  # signs in through POST /login
    assert signed_in.get("/e/customer").status_code == 200


def test_a_declared_length_past_the_limit_is_413_unread(app, client_for: Client) -> None:  # type: ignore[no-untyped-def]
    rep = client_for("rep_east1")
    size = 300 * MIB
    for path, limit in (("/e/customer/new", RECORD_FORM_LIMIT),
                        ("/e/customer/bulk", DEFAULT_FORM_BODY)):
        response = raw_call(app, "POST", path, cookies=_cookies(rep),
                            headers=[("content-type", MULTIPART),
                                     ("content-length", str(size))],
                            body=_lazy(_multipart_head(csrf(rep)), size))
        assert response.status == 413, (path, response.status)
        assert str(limit) in response.text
        assert response.consumed == 0


def test_a_body_without_length_is_cut_off_at_the_limit(app, client_for: Client) -> None:  # type: ignore[no-untyped-def]
    rep = client_for("rep_east1")
    token = csrf(rep)
    size = 300 * MIB
    # Token in a header: the record form's own parser reads. In the form: the CSRF check reads.
    for extra in ([("x-csrf-token", token)], []):
        response = raw_call(app, "POST", "/e/customer/new", cookies=_cookies(rep),
                            headers=[("content-type", MULTIPART), *extra],
                            body=_lazy(_multipart_head(token), size))
        assert response.status == 413, (extra, response.status, response.text[:200])
        assert response.consumed <= RECORD_FORM_LIMIT + MIB
        assert response.chunks_left > 200  # the rest was never asked for


def test_api_bodies_are_bounded_too(app, client_for: Client) -> None:  # type: ignore[no-untyped-def]
    declared = raw_call(app, "POST", "/api/v1/customer",
                        headers=[("content-type", "application/json"),
                                 ("content-length", str(50 * MIB)),
                                 ("authorization", "Bearer nope")],
                        body=_lazy(b"{", 50 * MIB))
    assert declared.status == 413 and declared.consumed == 0
    streamed = raw_call(app, "POST", "/api/v1/customer",
                        headers=[("content-type", "application/json"),
                                 ("authorization", "Bearer nope")],
                        body=_lazy(b"{", 50 * MIB))
    # No valid token: refused before the body is read at all.
    assert streamed.status == 401 and streamed.consumed == 0


def test_api_bodies_with_a_valid_token_are_cut_off_at_the_limit(app, demo_db: DemoDB) -> None:  # type: ignore[no-untyped-def]
    with write_transaction(demo_db.live.engine) as conn:
        _, token = create_token(conn, demo_db.user_id("rep_east1"), name="bodies")
    for _ in range(2):  # a token checked first, then one the process knows
        streamed = raw_call(app, "POST", "/api/v1/customer",
                            headers=[("content-type", "application/json"),
                                     ("authorization", f"Bearer {token}")],
                            body=_lazy(b"{", 50 * MIB))
        assert streamed.status == 413
        assert streamed.consumed <= DEFAULT_MAX_BODY + MIB and streamed.chunks_left > 40


def test_bad_content_length_is_400(app) -> None:  # type: ignore[no-untyped-def]
    for value in ("abc", "-1", "1" * 40, "１"):
        response = raw_call(app, "POST", "/login", headers=[
            ("content-type", "application/x-www-form-urlencoded"), ("content-length", value)],
            body=[b"a=1"])
        assert response.status == 400, value


def test_form_parse_errors_are_400_for_visitors(client_for: Client) -> None:
    visitor = client_for(None)
    token = csrf(visitor)
    # No multipart boundary: once read by the CSRF check, once by the sign-in form itself.
    for headers in ({}, {"X-CSRF-Token": token}):
        response = visitor.post("/login", content=b"login=a&password=b",
                                headers={"Content-Type": "multipart/form-data", **headers})
        assert response.status_code == 400, (headers, response.status_code)
        assert "Traceback" not in response.text
    many = "&".join(f"f{i}=1" for i in range(1001)) + f"&csrf_token={token}"
    response = visitor.post("/login", content=many.encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and "Too many fields" in response.text
    big = visitor.post("/login", data={"csrf_token": token, "login": "x" * SMALL_FORM_BODY})
    assert big.status_code == 413


def test_form_parse_errors_are_400_when_signed_in(client_for: Client) -> None:
    rep = client_for("rep_east1")
    token = csrf(rep)
    large_field = {"csrf_token": token, "name": "Big", "notes": "x" * (MIB + 1)}
    for headers in ({}, {"X-CSRF-Token": token}):
        response = rep.post("/e/customer/new", files={"attachment": ("a.pdf", b"%PDF")},
                            data=large_field, headers=headers)
        assert response.status_code == 400, (headers, response.status_code)
        assert "maximum size" in response.text
    many = {"csrf_token": token, "action": "delete",
            "ids": [str(i) for i in range(1001)]}
    response = rep.post("/e/customer/bulk", data=many, headers={"X-CSRF-Token": token})
    assert response.status_code == 400 and "Too many fields" in response.text
    files = {f"f{i}": (f"{i}.pdf", b"%PDF") for i in range(21)}
    response = rep.post("/e/follow_up/new", data={"csrf_token": token}, files=files,
                        headers={"X-CSRF-Token": token})
    assert response.status_code == 400 and "Too many files" in response.text


def test_api_uploads_take_files_up_to_the_upload_limit(tmp_path: Path) -> None:
    # The API reads 1 MiB of JSON, but an upload route takes the app's largest upload.
    demo = make_demo(tmp_path)
    with write_transaction(demo.live.engine) as conn:
        _, token = create_token(conn, demo.user_id("rep_east1"), name="uploads")
    app = create_app(demo.live, secret_key=SECRET, upload_dir=tmp_path / "uploads",
                     max_upload_bytes=3 * MIB)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"}
    try:
        with TestClient(app) as client:
            ok = client.post("/api/v1/follow_up/files/attachment", params={"name": "big.pdf"},
                             content=b"%PDF" + b"0" * (2 * MIB), headers=headers)
            assert ok.status_code == 201, ok.text
            big = client.post("/api/v1/follow_up/files/attachment", params={"name": "big.pdf"},
                              content=b"%PDF" + b"0" * (3 * MIB), headers=headers)
            assert big.status_code == 413
            json_body = client.post("/api/v1/customer", content=b"{" + b" " * (2 * MIB) + b"}",
                                    headers={**headers, "Content-Type": "application/json"})
            assert json_body.status_code == 413
    finally:
        demo.live.dispose()
