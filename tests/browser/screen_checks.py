"""Checks every browser test can run on a screen: no sideways scrolling of the page,
no serious or critical axe-core violations, and a screenshot kept as an artifact.

axe-core is vendored from npm (tests/browser/vendor/axe-core, version and SHA-256
in VERSION) and injected into the page under test; the page's CSP forbids inline
scripts, so contexts that run axe are made with ``bypass_csp=True``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from playwright.sync_api import Page

AXE_DIR = Path(__file__).resolve().parent / "vendor" / "axe-core"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: Impacts that fail a test (minor and moderate ones are reported by axe, not fatal here).
FATAL_IMPACTS = ("serious", "critical")

_AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => %s.includes(v.impact))
    .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' @ '
         + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""


def axe_source() -> str:
    """The pinned axe-core, refused if it is not the file VERSION names."""
    pins = dict(line.split("=", 1) for line in (AXE_DIR / "VERSION").read_text().splitlines()
                if "=" in line)
    data = (AXE_DIR / pins["file"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != pins["sha256"]:
        raise AssertionError("tests/browser/vendor/axe-core does not match its pinned SHA-256")
    return data.decode("utf-8")


def overflow(page: Page) -> int:
    """How many pixels the page scrolls sideways (0 = fits the viewport)."""
    return int(page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations of the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source())
    return list(page.evaluate(_AXE_RUN % repr(list(FATAL_IMPACTS))))


def check_screen(page: Page, name: str) -> None:
    """Screenshot the page into the artifacts, then fail on overflow or axe violations."""
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    page.screenshot(path=str(ARTIFACTS / f"{safe}.png"), full_page=True)
    wide = overflow(page)
    assert wide <= 0, f"{name}: the page scrolls sideways by {wide}px at {page.viewport_size}"
    found = axe_violations(page)
    assert found == [], f"{name}: axe-core violations:\n" + "\n".join(found)
