"""bench/RESULTS.md is shared by several benchmarks: each rewrites only its own section."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_TITLE = "# Benchmark results\n\nEach section is written by the benchmark named in it; " \
         "rerun it to refresh the numbers. Ratios compare with a baseline measured in " \
         "the same run on the same machine.\n"


def write_section(heading: str, body: str, *, path: Path = RESULTS) -> None:
    """Replace the ``## heading`` section of ``path`` with ``body`` (append if missing)."""
    text = path.read_text(encoding="utf-8") if path.exists() else _TITLE
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
