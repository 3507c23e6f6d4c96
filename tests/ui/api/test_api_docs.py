"""docs/api.md keeps up with the code: every problem type and every route is documented."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT
from ui.api.problems import TYPE_BASE

DOC = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
CODE = "\n".join(p.read_text(encoding="utf-8") for p in (REPO_ROOT / "ui" / "api").glob("*.py"))


def test_every_problem_type_is_documented() -> None:
    kinds = set(re.findall(r'kind="([a-z-]+)"', CODE))
    assert {"validation", "duplicate", "stale-version", "bad-query", "bad-body"} <= kinds
    missing = sorted(k for k in kinds if f"`{TYPE_BASE}{k}`" not in DOC)
    assert missing == []


def test_every_route_is_documented() -> None:
    paths = set(re.findall(r'route\("(/[^"]*)"', CODE)) | {"/openapi.json"}
    assert len(paths) >= 6
    for path in paths:
        shown = path.replace("{record_id:id}", "{id}").replace("{merge_id:id}", "{merge_id}")
        assert f" {shown}`" in DOC, path
