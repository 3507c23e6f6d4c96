"""Session cookies: a cookie whose signature was checked is remembered per process, and
stays refused or expires exactly as a fresh check would have it."""

from __future__ import annotations

import time

import pytest

from ui.auth import Session, SessionCodec

SECRET = b"test-secret-key-of-at-least-32-bytes!!"


def test_a_remembered_cookie_expires_and_forgeries_are_not_remembered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    codec = SessionCodec(SECRET, max_age=60)
    session = Session.signed_in(7, 3)
    cookie = codec.encode(session)
    assert codec.decode(cookie) == session
    assert codec.decode(cookie) == session  # from memory, the same session
    forged = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    assert codec.decode(forged) is None and codec.decode(forged) is None
    assert SessionCodec(b"another-secret-of-at-least-32-bytes!!!").decode(cookie) is None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)  # past max_age: refused, as signed
    assert codec.decode(cookie) is None
    assert SessionCodec(SECRET, max_age=60).decode(cookie) is None  # a fresh check agrees
    monkeypatch.setattr(time, "time", lambda: now - 5)  # signed "in the future": refused too
    assert codec.decode(cookie) is None
