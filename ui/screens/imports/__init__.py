"""The import screens: upload, column mapping with a preview, progress, error report."""

from __future__ import annotations

from starlette.routing import BaseRoute

from ui.context import UIContext


def routes(ui: UIContext) -> list[BaseRoute]:
    from ui.screens.imports import screens

    return screens.routes(ui)
