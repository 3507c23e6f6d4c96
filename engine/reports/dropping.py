"""Records the reader (or their team) holds that a pool's drop rule takes back soon.

The dashboard's "about to drop" tile and its list. Candidates come from the list
service -- the reader's row scope, recycle bin and all -- narrowed to the records
owned by the reader (or by anyone in the reader's department subtree for the team
version), so a rep's tile can never name another rep's record. Each candidate's
drop time comes from ``engine.workflow.forecast.drop_forecast``, the same compiled
rule the scheduler runs, so the tile agrees with what will happen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from engine.actor import Actor
from engine.errors import QueryError
from engine.messages import M
from engine.permissions.org import load_org_snapshot
from engine.records.query import MAX_LIMIT, Filter, ListQuery, Sort
from engine.records.record import Record
from engine.records.service import RecordService
from engine.workflow.forecast import DropForecast, drop_forecast

MAX_DAYS = 90
#: Held records examined at most (a pool's max_held keeps one rep's far below this).
SCAN_LIMIT = 5000


@dataclass(frozen=True)
class Dropping:
    entity: str
    days: int
    team: bool
    #: (record, its first drop), soonest first
    rows: list[tuple[Record, DropForecast]]
    #: more held records than SCAN_LIMIT: the list may miss some
    truncated: bool


def _owners(records: RecordService, actor: Actor, team: bool) -> list[int]:
    if actor.user_id is None:
        return []
    if not team:
        return [actor.user_id]
    with records.engine.connect() as conn:
        org = load_org_snapshot(conn)
    own = org.user_department.get(actor.user_id)
    return sorted(org.users_under(own)) if own is not None else [actor.user_id]


def about_to_drop(records: RecordService, actor: Actor, *, entity: str, days: int,
                  team: bool, now: dt.datetime) -> Dropping:
    """What ``actor`` (or their team) holds of ``entity`` that drops within ``days``."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise QueryError("dashboard", "days", M("must be a whole number from 1 to %(high)s",
                                                    high=MAX_DAYS))
    owners = _owners(records, actor, team)
    held: list[Record] = []
    after: str | None = None
    truncated = False
    while owners:
        page = records.list(actor, entity, ListQuery(
            filters=(Filter("owner_id", "in", owners),), sort=Sort(), limit=MAX_LIMIT,
            after=after))
        held += page.rows
        if not page.has_more:
            break
        if len(held) >= SCAN_LIMIT:
            truncated = True
            break
        after = page.next_token
    horizon = now + dt.timedelta(days=days)
    forecasts = drop_forecast(records, entity=entity, ids=[r.id for r in held], now=now)
    soon = [(r, forecasts[r.id]) for r in held
            if r.id in forecasts and forecasts[r.id].due_at <= horizon]
    soon.sort(key=lambda pair: (pair[1].due_at, pair[0].id))
    return Dropping(entity=entity, days=days, team=team, rows=soon, truncated=truncated)
