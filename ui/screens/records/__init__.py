"""Screens for the records of every entity: lists, record detail, create and edit forms."""

from __future__ import annotations

from starlette.routing import BaseRoute

from ui.context import UIContext


def routes(ui: UIContext) -> list[BaseRoute]:
    from ui.screens.records import detail, forms, lists, merge

    # Forms first: /e/{entity}/new must win over nothing else, but keep the order explicit.
    return [*forms.routes(ui), *lists.routes(ui), *merge.routes(ui), *detail.routes(ui)]
