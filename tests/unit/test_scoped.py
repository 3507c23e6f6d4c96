"""``ScopedValue``: a context variable held for one ``with`` block."""

from __future__ import annotations

from contextvars import ContextVar

import pytest

from engine.scoped import ScopedValue

_VAR: ContextVar[str] = ContextVar("test_scoped", default="outside")


def test_the_value_holds_inside_and_the_old_one_comes_back() -> None:
    with ScopedValue(_VAR, "outer"):
        assert _VAR.get() == "outer"
        with ScopedValue(_VAR, "inner"):
            assert _VAR.get() == "inner"
        assert _VAR.get() == "outer"
    assert _VAR.get() == "outside"


def test_an_exception_still_restores_the_old_value() -> None:
    with pytest.raises(RuntimeError), ScopedValue(_VAR, "failing"):
        assert _VAR.get() == "failing"
        raise RuntimeError("boom")
    assert _VAR.get() == "outside"
