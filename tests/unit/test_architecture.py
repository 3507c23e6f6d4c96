"""The shape of the code base, checked: imports flow down the layers only, and
the engine knows no CRM words (metadata is data)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lower index = lower layer. A module may import its own layer or lower ones.
LAYERS = [
    ("engine.errors", "engine.actor", "engine.metadata", "engine.messages", "engine.memo",
     "engine.scoped"),
    ("engine.storage",),
    ("engine.access", "engine.permissions"),
    ("engine.records",),
    ("engine.workflow", "engine.seeding", "engine.runtime", "engine.demo",
     "engine.configure", "engine.reports"),
    ("ui",),
    ("engine.cli",),
]


def layer_of(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def modules() -> list[tuple[str, Path]]:
    found = []
    for base in ("engine", "ui"):
        for path in sorted((ROOT / base).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            found.append((name, path))
    return found


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_layer_table_knows_every_module() -> None:
    unknown = [name for name, _ in modules() if layer_of(name) is None
               and name not in ("engine", "ui")]
    assert unknown == [], f"add these modules to LAYERS: {unknown}"


@pytest.mark.parametrize("name,path", modules(), ids=[m for m, _ in modules()])
def test_imports_flow_down(name: str, path: Path) -> None:
    own = layer_of(name)
    if own is None:
        return
    upward = sorted(
        m for m in imported(path)
        if (layer := layer_of(m)) is not None and layer > own
    )
    assert upward == [], f"{name} (layer {own}) imports higher layers: {upward}"


CRM_WORDS = re.compile(r"\b(lead|leads|customer|customers|opportunit\w*|contact|follow_up)\b",
                       re.IGNORECASE)


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """Source lines minus comments and docstrings (CRM words are fine in prose)."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    doc_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            doc_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number in doc_lines:
            continue
        code = line.split("#", 1)[0]
        lines.append((number, code))
    return lines


def test_engine_has_no_crm_words() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {code.strip()}"
        for path in sorted((ROOT / "engine").rglob("*.py"))
        for number, code in _code_lines(path)
        if CRM_WORDS.search(code)
    ]
    assert offenders == []
