"""The duplicate-candidates screen: /e/{entity}/duplicates.

Stored records sharing a name stem (similar_name rules) or a match key (dedup.keys),
grouped with a count per group, a keyset page at a time, each group linking to the
merge screen with its members' ids. Only users with the merge grant get here, and
only records inside their merge scope are grouped (RecordService.duplicate_candidates).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.records.dedup_groups import bases
from ui.context import UIContext
from ui.limits import whole_number
from ui.screens.records._common import entity_of

PAGE = 20


@dataclass(frozen=True)
class Tab:
    label: str
    url: str
    current: bool


@dataclass(frozen=True)
class MemberView:
    label: str
    url: str


@dataclass(frozen=True)
class GroupView:
    label: str
    count: int
    members: tuple[MemberView, ...]
    merge_url: str


@dataclass(frozen=True)
class CandidatesView:
    title: str
    list_url: str
    tabs: tuple[Tab, ...]
    groups: tuple[GroupView, ...]
    next_url: str = ""


def routes(ui: UIContext) -> list[BaseRoute]:
    def candidates(request: Request, form: FormData | None) -> Response:
        runtime, actor = ui.runtime(), ui.actor(request)
        entity = entity_of(runtime, request)
        locale = ui.locale(request)
        basis = request.query_params.get("rule") or None
        after = request.query_params.get("after") or None
        limit = whole_number(request.query_params.get("limit", "")) or PAGE
        page = runtime.records.duplicate_candidates(actor, entity.name, basis=basis,
                                                    after=after, limit=limit)
        base = f"/e/{entity.name}/duplicates"
        rules = {r.name: r for r in entity.dedup_rules}
        tabs = []
        for b in bases(entity):
            rule = rules.get(b.name)
            label = rule.message.get(locale) if rule is not None and rule.message else \
                ui.t(request, "Same %(field)s", field=entity.field(b.field).label.get(locale))
            tabs.append(Tab(label, f"{base}?{urlencode({'rule': b.name})}",
                            page is not None and page.basis.name == b.name))
        groups: list[GroupView] = []
        next_url = ""
        if page is not None:
            for g in page.groups:
                members = tuple(MemberView(f"#{m.id} {m.title or ''}".strip(),
                                           f"/e/{entity.name}/{m.id}") for m in g.members)
                ids = ",".join(str(m.id) for m in g.members)
                groups.append(GroupView(g.members[0].title or f"#{g.members[0].id}", g.count,
                                        members, f"/e/{entity.name}/merge?ids={ids}"))
            if page.next_key is not None:
                next_url = f"{base}?{urlencode({'rule': page.basis.name, 'after': page.next_key})}"
        view = CandidatesView(
            title=ui.t(request, "Possible duplicates: %(what)s",
                       what=entity.plural_label.get(locale)),
            list_url=f"/e/{entity.name}", tabs=tuple(tabs), groups=tuple(groups),
            next_url=next_url)
        return ui.render(request, "duplicates/candidates.html", view)

    return [Route("/e/{entity}/duplicates", ui.endpoint(candidates), methods=["GET"],
                  name="duplicates")]
