"""Every report's numbers against plain Python over the seeded rows, per role, and every
drill-down list against the number it explains and the permission oracle."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.errors import QueryError
from engine.metadata.reports import Measure, Report
from engine.records.query import ListQuery
from engine.reports.catalog import catalog_of, report_of
from engine.reports.compiler import ReportRunner
from engine.reports.periods import window
from engine.reports.result import Drill
from tests.integration.permissions._crm_org import USERS, CrmOrg, Fact, Oracle
from tests.integration.reports.conftest import TODAY

LOGINS = ("r1", "r3", "sn", "ss", "m", "ms", "a", "n")
COUNTING = tuple(x for x in LOGINS if x != "n")   # "n" holds no role (see the last test)


def _drill_rows(org: CrmOrg, login: str, drill: Drill) -> list[Any]:
    rows: list[Any] = []
    after = None
    while True:
        page = org.records.list(org.actor(login), drill.entity,
                                ListQuery(filters=drill.filters, limit=200, after=after))
        rows.extend(page.rows)
        if not page.has_more:
            return rows
        after = page.next_token


def _expected(m: Measure, rows: list[Any]) -> Any:
    if m.kind == "count":
        return len(rows)
    values = [r[m.field] for r in rows if r.get(m.field) is not None]
    if m.kind == "count_distinct":
        return len({v if not isinstance(v, dict) else v["amount"] for v in values})
    numbers = [Decimal(str(v["amount"] if isinstance(v, dict) else v)) for v in values]
    if m.kind == "sum" and m.weight:
        weights = {r.id: Decimal(str(r.get(m.weight) or 0)) for r in rows}
        return sum((Decimal(str(r[m.field]["amount"])) * weights[r.id] / 100
                    for r in rows if r.get(m.field) is not None), Decimal(0))
    if m.kind == "sum":
        return sum(numbers, Decimal(0))
    return None


@pytest.mark.parametrize("login", LOGINS)
def test_every_number_equals_its_drill_down_list_and_the_list_is_permitted(
        org: CrmOrg, login: str) -> None:
    runner = ReportRunner(org.records, org.registry)
    oracle = Oracle(org)
    checked = 0
    for name in catalog_of(org.registry).reports:
        report = report_of(org.registry, name)
        result = runner.run(org.actor(login), report, window("all_time", today=TODAY))
        for row in [*result.rows, result.totals]:
            for m in report.measures:
                cell = row.cells[m.name]
                if not m.from_rows or cell.drill is None or m.kind not in ("count", "sum"):
                    continue
                rows = _drill_rows(org, login, cell.drill)
                allowed = oracle.live(cell.drill.entity,
                                      oracle.allowed(login, cell.drill.entity, "read"))
                assert {r.id for r in rows} <= allowed, (name, m.name, row.labels)
                expected = _expected(m, rows)
                assert Decimal(cell.value or 0) == Decimal(expected), (name, m.name, row.labels)
                checked += 1
    # "n" holds no role: nothing to count, nothing to drill into
    assert checked == 0 if login == "n" else checked > 50


def _facts(org: CrmOrg, oracle: Oracle, login: str, entity: str) -> list[Fact]:
    ids = oracle.live(entity, oracle.allowed(login, entity, "read"))
    return [org.facts[(entity, i)] for i in sorted(ids)]


@pytest.mark.parametrize("login", COUNTING)
def test_the_funnel_matches_plain_python_over_the_visible_rows(org: CrmOrg,
                                                                 login: str) -> None:
    oracle = Oracle(org)
    leads = _facts(org, oracle, login, "lead")
    customers = [f for f in _facts(org, oracle, login, "customer")
                 if f.values.get("source_lead") is not None]
    opps = _facts(org, oracle, login, "opportunity")
    won = [f for f in opps if f.values.get("stage") == "won"]
    result = ReportRunner(org.records, org.registry).run(
        org.actor(login), report_of(org.registry, "sales_funnel"),
        window("all_time", today=TODAY))
    got = {k: c.value for k, c in result.totals.cells.items()}
    assert (got["leads"], got["customers"], got["opportunities"], got["won"]) == \
        (len(leads), len(customers), len(opps), len(won))
    if opps:
        assert got["opportunity_to_won"] == Decimal(len(won)) / Decimal(len(opps))
    else:
        assert got["opportunity_to_won"] is None


@pytest.mark.parametrize("login", COUNTING)
def test_pipeline_by_stage_matches_plain_python(org: CrmOrg, login: str) -> None:
    oracle = Oracle(org)
    opps = _facts(org, oracle, login, "opportunity")
    report: Report = report_of(org.registry, "opportunity_pipeline")
    result = ReportRunner(org.records, org.registry).run(
        org.actor(login), report, window("all_time", today=TODAY))
    by_stage = {row.keys[0]: row for row in result.rows}
    stages = [s.key for p in ("opportunity_sales", "opportunity_renewal")
              for s in org.registry.pipelines[p].stages]
    assert [row.keys[0] for row in result.rows] == stages   # pipeline by pipeline, in order
    for stage in stages:
        mine = [f for f in opps if f.values.get("stage", "research") == stage]
        amount = sum((Decimal(str(f.values["amount"])) for f in mine if "amount" in f.values),
                     Decimal(0))
        weighted = sum((Decimal(str(f.values["amount"])) * f.values["probability"] / 100
                        for f in mine if "amount" in f.values), Decimal(0))
        cells = by_stage[stage].cells
        assert (cells["deals"].value, cells["amount"].value, cells["weighted"].value) == \
            (len(mine), amount, weighted)


def test_a_rep_sees_less_than_the_supervisor_who_sees_less_than_the_manager(
        org: CrmOrg) -> None:
    runner = ReportRunner(org.records, org.registry)
    report = report_of(org.registry, "funnel_by_rep")
    totals = {}
    owners = {}
    for login in ("r1", "sn", "m"):
        result = runner.run(org.actor(login), report, window("all_time", today=TODAY))
        totals[login] = result.totals.cells["opportunities"].value
        owners[login] = {row.keys[0] for row in result.rows
                         if row.cells["opportunities"].value}
    assert totals["r1"] < totals["sn"] < totals["m"]
    south = {org.users[u] for u, (dept, _, _) in USERS.items() if dept == "south"}
    assert not owners["sn"] & south      # never another team's records
    assert owners["m"] & south


def test_team_breakdown_folds_reps_into_their_department_at_the_level(org: CrmOrg) -> None:
    result = ReportRunner(org.records, org.registry).run(
        org.actor("m"), report_of(org.registry, "funnel_by_team"),
        window("all_time", today=TODAY))
    teams = {row.labels[0]: row for row in result.rows}
    assert {"North", "South", "Sales"} <= set(teams)
    north = teams["North"].cells["leads"]
    # north_key (level 3) folds into North (level 2)
    assert north.value == sum(1 for u, (d, _, _) in USERS.items()
                              if d in ("north", "north_key"))
    drill = north.drill
    assert drill is not None
    owner_filter = next(f for f in drill.filters if f.field == "owner_id")
    assert org.users["r5"] in owner_filter.value


def test_a_role_without_read_on_a_step_sees_it_empty_not_an_error(org: CrmOrg) -> None:
    # "n" holds no role at all: every measure is unavailable, nothing raises.
    result = ReportRunner(org.records, org.registry).run(
        org.actor("n"), report_of(org.registry, "sales_funnel"),
        window("this_month", today=TODAY))
    assert result.unavailable >= {"leads", "won"}
    assert result.totals.cells["leads"].value is None


def test_owner_labels_resolve_only_the_people_on_the_rows(
        org: CrmOrg, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.reports import compiler

    asked: list[set[int]] = []
    real = compiler.people_by_id

    def spy(engine: Any, ids: Any) -> Any:
        asked.append(set(ids))
        return real(engine, ids)

    monkeypatch.setattr(compiler, "people_by_id", spy)
    result = ReportRunner(org.records, org.registry).run(
        org.actor("sn"), report_of(org.registry, "funnel_by_rep"),
        window("all_time", today=TODAY))
    shown = {row.keys[0] for row in result.rows if row.keys[0] is not None}
    assert asked == [shown] and len(shown) < len(org.users)
    names = {uid: login.upper() for login, uid in org.users.items()}
    assert all(row.labels[0] == names[row.keys[0]] for row in result.rows
               if row.keys[0] is not None)


@pytest.mark.parametrize("login", ["r1", "sn", "m"])
def test_time_in_stage_lists_only_stays_of_readable_records(org: CrmOrg, login: str) -> None:
    runner = ReportRunner(org.records, org.registry)
    report = report_of(org.registry, "time_in_stage")
    every = window("all_time", today=TODAY)
    listed = runner.stays(org.actor(login), report, "avg_days", every)
    assert listed, "the seeded opportunities entered their first stage"
    assert {x.record_id for x in listed} <= Oracle(org).allowed(login, "opportunity", "read")
    result = runner.run(org.actor(login), report, every)
    for row in result.rows:
        cell = row.cells["avg_days"]
        if cell.value is None:
            continue
        assert cell.drill is not None and not isinstance(cell.drill, Drill)
        stays = runner.stays(org.actor(login), report, "avg_days", every, stage=row.keys[0])
        mean = sum(x.days for x in stays) / len(stays)
        # open stays run until "now", read twice here; each listed stay is rounded to 0.01
        assert abs(Decimal(cell.value) - mean) <= Decimal("0.02")


def test_stays_of_an_unknown_or_plain_measure_are_refused(org: CrmOrg) -> None:
    runner = ReportRunner(org.records, org.registry)
    every = window("all_time", today=TODAY)
    with pytest.raises(QueryError):
        runner.stays(org.actor("m"), report_of(org.registry, "time_in_stage"), "nope", every)
    with pytest.raises(QueryError):
        runner.stays(org.actor("m"), report_of(org.registry, "opportunity_pipeline"),
                     "deals", every)
