"""Fixtures of the metadata tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from meta_packages import write_package


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """make_package(name, files, manifest=None) -> the package folder."""
    def make(name: str, files: Mapping[str, Any], *,
             manifest: Mapping[str, Any] | None = None) -> Path:
        return write_package(tmp_path, name, files, manifest=manifest)
    return make
