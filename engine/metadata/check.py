"""``tidepool check PATH...``: validate app packages and print every issue.

Kept apart from the CLI module so the command's behaviour is testable with a
plain text stream; engine/cli.py only parses arguments and calls ``run_check``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from engine.metadata.loader import check_packages


def run_check(paths: Sequence[str], out: TextIO) -> int:
    """Print ``file:pointer: message`` per issue; return 0 when clean, 1 otherwise."""
    if not paths:
        out.write("tidepool check: give at least one app package folder\n")
        return 2
    issues = check_packages(paths)
    out.writelines(f"{issue}\n" for issue in issues)
    if issues:
        out.write(f"{len(issues)} issue(s) found\n")
        return 1
    out.write(f"ok: {len(paths)} package(s) valid\n")
    return 0
