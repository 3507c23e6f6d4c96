"""View models of the kanban board: columns per stage, cards, and refused moves.

Everything here reads through the records service (``capped_group_counts`` for the
column heads, ``list`` with a stage filter for each column's keyset pages), so
a board shows exactly the records its viewer may read. Labels, URLs and which
moves a card offers are computed here; templates only lay them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from engine.actor import Actor
from engine.errors import StageTransitionError, ValidationError
from engine.metadata.model import Entity, Field, FieldType, Stage
from engine.records import Filter, ListQuery, RecordService, Sort
from engine.records.aggregate import Group, first_money_field
from engine.records.coerce import to_string
from engine.records.record import Record
from engine.records.stages import STAGE, EntityPipelines, StageRules
from ui import i18n
from ui.zones import input_text

#: Cards per column page (the "more" button fetches the next keyset page).
CARDS_PER_PAGE = 20
#: Rows a column head counts before it says "N+" (``TIDEPOOL_KANBAN_COUNT_CAP``):
#: counting stops there, so a head costs the same at 10k rows and at 1M
#: (bench/bench_kanban.py); the exact totals are one click away (``?exact=1``).
DEFAULT_COUNT_CAP = 1000

_INPUT_TYPES = {FieldType.DATE: "date", FieldType.DATETIME: "datetime-local",
                FieldType.INTEGER: "number", FieldType.DECIMAL: "number",
                FieldType.MONEY: "number", FieldType.PERCENT: "number",
                FieldType.EMAIL: "email", FieldType.URL: "url", FieldType.PHONE: "tel"}


@dataclass(frozen=True)
class StageOption:
    key: str
    label: str


@dataclass(frozen=True)
class FieldInput:
    """One input a refused move asks for (a field the target stage requires)."""

    name: str
    label: str
    input_type: str            # text | date | number | select | ...
    value: str = ""
    options: list[StageOption] = field(default_factory=list)  # for select fields
    error: str = ""


@dataclass(frozen=True)
class CardView:
    """One card. ``error``/``inputs`` are set when a move of it was just refused."""

    id: int
    version: int
    title: str
    url: str
    amount: str
    stage: str
    move_url: str
    options: list[StageOption]           # where the card may move (keyboard/phone path)
    error: str = ""
    inputs: list[FieldInput] = field(default_factory=list)
    target: str = ""                      # the stage the inputs are for
    target_label: str = ""
    #: what "Move to" offers first: the next stage forward, never a previous one
    default_target: str = ""


@dataclass(frozen=True)
class ColumnHead:
    stage: str
    label: str
    count: int
    total: str
    kind: str
    #: ``count`` is a lower bound: more rows than the cap, and no total is shown
    capped: bool = False
    #: the count as shown: "1,234", or "1,000+" past the cap (translated)
    shown: str = ""


@dataclass(frozen=True)
class ColumnView:
    head: ColumnHead
    cards: list[CardView]
    more_url: str | None


@dataclass(frozen=True)
class PipelineTab:
    """One board of an entity with several pipelines (the switcher above the columns)."""

    name: str
    label: str
    url: str
    active: bool


@dataclass(frozen=True)
class BoardView:
    title: str
    entity: str
    columns: list[ColumnView]
    list_url: str
    board_url: str
    search: str
    amount_label: str
    pipeline: str = ""                 # the shown pipeline when the entity has several
    pipelines: list[PipelineTab] = field(default_factory=list)
    #: a link to the exact counts and totals when a head stopped at the cap
    exact_url: str = ""
    exact: bool = False


@dataclass(frozen=True)
class MovedView:
    """A move that went through: the card in its new column and every column head."""

    card: CardView
    heads: list[ColumnHead]


@dataclass(frozen=True)
class MovePage:
    """A card on its own page: the no-JavaScript path of a move and its refusals."""

    title: str
    card: CardView
    board_url: str


def format_total(sums: Mapping[str, Decimal]) -> str:
    """Money per currency, e.g. "CNY 1,250,000.00 + USD 300.00"; plain numbers as they are."""
    parts = []
    for currency in sorted(sums):
        amount = sums[currency]
        number = f"{amount:,.2f}" if currency else f"{amount:,}"
        parts.append(f"{currency} {number}".strip())
    return " + ".join(parts)


class Board:
    """Builds board, column and card views of one pipelined entity for one viewer."""

    def __init__(self, records: RecordService, actor: Actor, entity: Entity,
                 rules: StageRules, *, locale: str,
                 pipelines: EntityPipelines | None = None,
                 cap: int = DEFAULT_COUNT_CAP) -> None:
        self.cap = cap
        self.records = records
        self.actor = actor
        self.entity = entity
        self.rules = rules    # the pipeline whose columns this board shows
        self.pipelines = pipelines or EntityPipelines(entity.name, (rules,))
        self.locale = locale
        self.amount_field = first_money_field(records.plan(entity.name),
                                              records.policy.hidden_fields(actor, entity))
        self.base = f"/e/{entity.name}/kanban"

    # --- labels and urls ----------------------------------------------------------------

    def stage_label(self, key: str | None) -> str:
        stage = self.find(key)
        return stage.label.get(self.locale) if stage is not None else str(key or "")

    def find(self, key: str | None) -> Stage | None:
        """A stage of any of the entity's pipelines (keys are unique across them)."""
        rules = self.pipelines.holding(key)
        return rules.find(key) if rules is not None else None

    def rules_of(self, record: Record) -> StageRules:
        """The pipeline a card moves in: the one holding its stage, else its selector's."""
        return self.pipelines.holding(record.get(STAGE)) or \
            self.pipelines.of(record) or self.rules

    def board_url(self, search: str = "", *, pipeline: str | None = None) -> str:
        params = {}
        name = pipeline or self.rules.pipeline.name
        if len(self.pipelines.rules) > 1:
            params["pipeline"] = name
        if search:
            params["q"] = search
        return self.base + (f"?{urlencode(params)}" if params else "")

    def tabs(self, search: str) -> list[PipelineTab]:
        """The switcher: one board per pipeline (none when the entity has only one)."""
        if len(self.pipelines.rules) < 2:
            return []
        return [PipelineTab(name=r.pipeline.name, label=r.pipeline.label.get(self.locale),
                            url=self.board_url(search, pipeline=r.pipeline.name),
                            active=r.pipeline.name == self.rules.pipeline.name)
                for r in self.pipelines.rules]

    # --- the board ----------------------------------------------------------------------

    def heads(self, search: str = "", *, exact: bool = False) -> dict[str, ColumnHead]:
        """Every column's count and total: capped (bounded work at any size) unless
        ``exact`` asks for the full count, which reads every visible row."""
        ordered = self.rules.ordered()
        query = ListQuery(search=search)
        if exact:
            groups = self.records.group_counts(self.actor, self.entity.name, STAGE,
                                               filters=query, sum_field=self.amount_field)
        else:
            groups = self.records.capped_group_counts(
                self.actor, self.entity.name, STAGE, [s.key for s in ordered], filters=query,
                sum_field=self.amount_field, cap=self.cap)
        found: dict[Any, Group] = {g.key: g for g in groups}
        heads = {}
        for stage in ordered:
            group = found.get(stage.key)
            count = group.count if group else 0
            capped = bool(group and group.capped)
            shown = i18n.t(self.locale, "%(n)s+", n=f"{count:,}") if capped else f"{count:,}"
            heads[stage.key] = ColumnHead(
                stage=stage.key, label=stage.label.get(self.locale), count=count,
                total=format_total(group.sums) if group else "", kind=stage.kind.value,
                capped=capped, shown=shown)
        return heads

    def board(self, search: str = "", *, exact: bool = False) -> BoardView:
        heads = self.heads(search, exact=exact)
        columns = []
        for key, head in heads.items():
            cards, more = self.cards(key, search=search, after=None)
            columns.append(ColumnView(head=head, cards=cards, more_url=more))
        label = self.entity.plural_label.get(self.locale) or self.entity.label.get(self.locale)
        amount = self.entity.field(self.amount_field).label.get(self.locale) \
            if self.amount_field else ""
        tabs = self.tabs(search)
        exact_url = ""
        if any(h.capped for h in heads.values()):
            board = self.board_url(search)
            exact_url = board + ("&" if "?" in board else "?") + "exact=1"
        return BoardView(title=label, entity=self.entity.name, columns=columns,
                         list_url=f"/e/{self.entity.name}", board_url=self.board_url(),
                         search=search, amount_label=amount,
                         pipeline=self.rules.pipeline.name if tabs else "", pipelines=tabs,
                         exact_url=exact_url, exact=exact)

    def cards(self, stage: str, *, search: str, after: str | None
              ) -> tuple[list[CardView], str | None]:
        """One keyset page of a column, and the URL of the next one (None: no more)."""
        query = ListQuery(filters=(Filter(STAGE, "eq", stage),), search=search,
                          sort=Sort("updated_at", True), limit=CARDS_PER_PAGE, after=after)
        page = self.records.list(self.actor, self.entity.name, query)
        more = None
        if page.next_token:
            params = {"after": page.next_token, **({"q": search} if search else {})}
            more = f"{self.base}/column/{stage}?{urlencode(params)}"
        return [self.card(r) for r in page.rows], more

    # --- cards --------------------------------------------------------------------------

    def card(self, record: Record, *, error: str = "", inputs: Sequence[FieldInput] = (),
             target: str = "") -> CardView:
        title_field = self.entity.title_field
        title = record.get(title_field)
        amount = record.get(self.amount_field) if self.amount_field else None
        stage = str(record.get(STAGE) or "")
        rules = self.rules_of(record)
        options = [StageOption(k, self.stage_label(k)) for k in rules.next_stages(stage)]
        return CardView(
            id=record.id, version=record.version,
            title=str(title) if title not in (None, "") else f"#{record.id}",
            url=f"/e/{self.entity.name}/{record.id}",
            amount=format_total({amount["currency"]: amount["amount"]}) if amount else "",
            stage=stage, move_url=f"{self.base}/{record.id}/move", options=options,
            error=error, inputs=list(inputs), target=target,
            target_label=self.stage_label(target) if target else "",
            default_target=target or self.forward(stage, [o.key for o in options], rules))

    def forward(self, current: str, allowed: Sequence[str],
                rules: StageRules | None = None) -> str:
        """The first allowed stage after ``current`` in pipeline order; a quick tap on
        "Move" must move a deal on, so an earlier stage is only the default when it is
        the only way out (e.g. a lost deal reopened)."""
        order = [s.key for s in (rules or self.rules).ordered()]
        here = order.index(current) if current in order else -1
        ahead = [k for k in order[here + 1:] if k in allowed]
        if ahead:
            return ahead[0]
        return allowed[0] if allowed else ""

    def inputs_for(self, record: Record, target: str, values: Mapping[str, str],
                   errors: Mapping[str, str]) -> list[FieldInput]:
        """Inputs for the fields ``target`` requires that are empty (or were refused)."""
        stage = self.find(target)
        if stage is None:
            return []
        wanted = [n for n in stage.required_fields
                  if n in errors or record.get(n) in (None, "", [])]
        return [self._input(self.entity.field(n), record, values, errors.get(n, ""))
                for n in wanted if self.entity.has_field(n)]

    def _input(self, f: Field, record: Record, values: Mapping[str, str],
               error: str) -> FieldInput:
        current = values.get(f.name)
        if current is None:
            stored = record.get(f.name)
            current = "" if stored is None else to_string(f, stored)
            if f.type is FieldType.MONEY and stored is not None:
                current = str(stored["amount"])
            if f.type is FieldType.DATETIME and isinstance(stored, datetime):
                current = input_text(stored)
        options = [StageOption(o.value, o.label.get(self.locale)) for o in f.options] \
            if f.type is FieldType.SELECT else []
        return FieldInput(name=f.name, label=f.label.get(self.locale),
                          input_type="select" if options else _INPUT_TYPES.get(f.type, "text"),
                          value=current, options=options,
                          error=i18n.t(self.locale, "Required to enter this stage.") if error else "")

    # --- refusals -----------------------------------------------------------------------

    def transition_message(self, exc: StageTransitionError) -> str:
        if not exc.allowed:
            return i18n.t(self.locale, "%(stage)s is a final stage: the record cannot move from it.",
                          stage=self.stage_label(exc.from_stage))
        return i18n.t(self.locale, "Cannot move from %(from)s to %(to)s. Allowed: %(allowed)s.",
                      **{"from": self.stage_label(exc.from_stage),
                         "to": self.stage_label(exc.to_stage),
                         "allowed": ", ".join(self.stage_label(k) for k in exc.allowed)})

    def invalid_message(self, exc: ValidationError, target: str) -> str:
        stage = self.find(target)
        required = set(stage.required_fields) if stage is not None else set()
        missing = [self.entity.field(n).label.get(self.locale) for n in exc.field_errors
                   if n in required and self.entity.has_field(n)]
        others = [f"{self._label(n)}: {i18n.t(self.locale, m)}" for n, m in exc.field_errors.items()
                  if n not in required]
        parts = []
        if missing:
            parts.append(i18n.t(self.locale, "To enter %(stage)s, fill in: %(fields)s.",
                                stage=self.stage_label(target), fields=", ".join(missing)))
        parts.extend(others)
        return " ".join(parts)

    def _label(self, name: str) -> str:
        if name == STAGE:
            return i18n.t(self.locale, "Stage")
        return self.entity.field(name).label.get(self.locale) \
            if self.entity.has_field(name) else name
