"""The mine / pool / team tabs above the list of a pooled entity: three filters in the URL."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from engine.actor import Actor
from engine.metadata.model import Entity, Feature
from ui.context import UIContext
from ui.screens.records.state import ListState


@dataclass(frozen=True)
class Tab:
    label: str
    url: str
    current: bool


def pool_tabs(ui: UIContext, request: Request, actor: Actor, entity: Entity,
              state: ListState) -> list[Tab]:
    """Mine (what I hold), pool (unowned records of pools I see), team (everything held that
    I may read; leaders only, i.e. who may assign). Empty for entities without pools."""
    if not entity.has(Feature.POOLED) or actor.user_id is None:
        return []
    base = f"/e/{entity.name}"
    tabs = [("mine", ui.t(request, "Mine"), f"{base}?f.owner_id.eq={actor.user_id}",
             ("owner_id", "eq", (str(actor.user_id),))),
            ("pool", ui.t(request, "Pool"), f"{base}?f.pool_id.not_empty=1",
             ("pool_id", "not_empty", ("1",)))]
    if ui.may(actor, entity, "assign"):
        tabs.append(("team", ui.t(request, "Team"), f"{base}?f.owner_id.not_empty=1",
                     ("owner_id", "not_empty", ("1",))))
    shown = {(f.field, f.op, f.values) for f in state.filters}
    return [Tab(label, url, len(state.filters) == 1 and key in shown)
            for _, label, url, key in tabs]
