"""Every write hook used anywhere is documented in engine/records/hooks.py and docs/hooks.md
(as Datasette's tests/test_docs.py does for its plugin hooks)."""

from __future__ import annotations

import re

from engine.records import hooks
from tests.conftest import REPO_ROOT

_USE = re.compile(r"\.hooks\.([a-z_]+)\(")
_BATCHED = re.compile(r"\.hooks\.[a-z_]+\(([A-Za-z_]+), batches=True\)")


def _used_hook_names() -> set[str]:
    names: set[str] = set()
    for base in ("engine", "ui", "apps", "tests", "bench"):
        for path in (REPO_ROOT / base).rglob("*.py"):
            names.update(_USE.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_used_hook_is_a_documented_hookspec() -> None:
    used = _used_hook_names()
    assert used, "the scan found no hook registration at all"
    assert used <= set(hooks.HOOKS), f"undocumented hooks: {sorted(used - set(hooks.HOOKS))}"


def test_every_hookspec_is_described_in_the_module_and_the_docs() -> None:
    module_doc = hooks.__doc__ or ""
    page = (REPO_ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    for name, spec in hooks.HOOKS.items():
        assert f"``{name}(handler)``" in module_doc, name
        assert f"## `{name}`" in page, name
        assert spec.signature in page, name


def test_every_handler_taking_batches_is_named_in_the_docs() -> None:
    """A handler registered with ``batches=True`` handles BatchEvents itself: the docs
    say what it does with one."""
    page = (REPO_ROOT / "docs" / "hooks.md").read_text(encoding="utf-8")
    found: set[str] = set()
    for base in ("engine", "ui", "apps"):
        for path in (REPO_ROOT / base).rglob("*.py"):
            found.update(_BATCHED.findall(path.read_text(encoding="utf-8")))
    assert found, "the scan found no handler taking batches"
    assert "`BatchEvent`" in page and "batches=True" in page
    assert {name for name in found if f"| `{name}` |" not in page} == set()


def test_the_registry_has_a_method_per_hookspec() -> None:
    registry = hooks.WriteHooks()
    for name in hooks.HOOKS:
        assert callable(getattr(registry, name))
