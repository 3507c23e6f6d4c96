"""Fuzzy dedup rules on the CRM demo, through real permissions, on both databases:
similar customer names and a lead whose phone is a customer's warn (never refuse), and
name the matched record only to users who may read it."""

from __future__ import annotations

import pytest

from engine.errors import ForbiddenError
from engine.permissions.org import find_department, set_leader
from engine.records.coerce import InputSource
from engine.workflow.import_files import read_table
from engine.workflow.imports import match_columns, run_import, warning_report
from tests.integration.workflow.conftest import World


def test_similar_name_warns_and_names_a_readable_record(world: World) -> None:
    rep = world.actor("rep_east1")
    first = world.records.create(rep, "customer", {"name": "上海 ABC 贸易有限公司"})
    [warning] = world.records.dedup_warnings(rep, "customer", [{"name": "上海ＡＢＣ贸易公司"}])
    assert (warning.rule, warning.entity, warning.existing_id, warning.title, warning.count) \
        == ("similar_name", "customer", first.id, "上海 ABC 贸易有限公司", 1)
    assert warning.message.get("zh-CN") == "已有名称相近的客户。"
    # Editing the record itself is no duplicate of itself; unrelated names warn nothing.
    assert world.records.dedup_warnings(rep, "customer", [{"name": "上海abc贸易"}],
                                        exclude_id=first.id) == []
    assert world.records.dedup_warnings(rep, "customer", [{"name": "北京 ABC"}]) == []
    # Only a warning: saving anyway works.
    world.records.create(rep, "customer", {"name": "上海ABC贸易公司"})
    # Records in the recycle bin are in nobody's way.
    gone = world.records.create(rep, "customer", {"name": "Binned Ltd"})
    world.records.delete(world.actor("admin"), "customer", gone.id, version=gone.version)
    assert world.records.dedup_warnings(rep, "customer", [{"name": "binned"}]) == []


def test_a_hidden_match_names_whom_to_ask_not_the_record(world: World) -> None:
    west = world.actor("rep_west1")
    hidden = world.records.create(west, "customer", {"name": "Acme Trading Co., Ltd."})
    with world.engine.begin() as conn:
        team = find_department(conn, "team_west")
        assert team is not None
        set_leader(conn, team.id, world.uid("sup_west"))
    [warning] = world.records.dedup_warnings(world.actor("rep_east1"), "customer",
                                             [{"name": "ACME trading"}])
    assert (warning.existing_id, warning.title, warning.ask) == (None, None, "Zhao Lei 赵磊")
    assert "existing_id" not in warning.as_json() and str(hidden.id) not in str(
        warning.as_json())
    [seen] = world.records.dedup_warnings(world.actor("sup_west"), "customer",
                                          [{"name": "ACME trading"}])
    assert (seen.existing_id, seen.ask) == (hidden.id, None)
    # Candidates already stored: grouped in the merger's scope only, set-based.
    twin = world.records.create(west, "customer", {"name": "ACME TRADING LIMITED"})
    page = world.records.duplicate_candidates(world.actor("sup_west"), "customer", limit=100)
    assert page is not None
    [group] = [g for g in page.groups if g.key == "acmetrading"]
    assert (group.count, [m.id for m in group.members]) == (2, [hidden.id, twin.id])
    east = world.records.duplicate_candidates(world.actor("sup_east"), "customer", limit=100)
    assert east is not None and all(g.key != "acmetrading" for g in east.groups)
    with pytest.raises(ForbiddenError):
        world.records.duplicate_candidates(west, "customer")
    # When the first match is hidden, a readable one is named instead.
    own = world.records.create(world.actor("rep_east1"), "customer", {"name": "Acme Trading Inc."})
    [named] = world.records.dedup_warnings(world.actor("rep_east1"), "customer",
                                           [{"name": "acme trading"}])
    assert (named.existing_id, named.title, named.count) == (own.id, "Acme Trading Inc.", 3)


def test_lead_whose_phone_belongs_to_a_customer(world: World) -> None:
    rep = world.actor("rep_east1")
    customer = world.records.create(rep, "customer", {"name": "Phone Co",
                                                      "phone": "+86 139-8765-4321"})
    rows = [{"company_name": "X", "phone": "１３９ ８７６５ ４３２１"},
            {"company_name": "Y", "phone": "13100000009"},
            {"company_name": "Z", "phone": "not a phone"}]
    found = world.records.dedup_warnings(rep, "lead", rows, source=InputSource.STRING)
    assert [(w.index, w.rule, w.entity, w.existing_id) for w in found] == [
        (0, "customer_phone", "customer", customer.id)]

    # A lead with that phone is still created (a warning, not a key): an import lists it
    # with the warning, not as a refusal.
    table = read_table("公司名称,电话,来源渠道\n新公司,+86 139-8765-4321,other\n"
                       "另一家,13911112222,other\n".encode(), filename="leads.csv")
    mapping = match_columns(world.registry.entity("lead"), table.headers)
    report = run_import(world.records, rep, entity="lead", table=table, mapping=mapping)
    assert (report.created, report.rejected) == (2, [])
    [warned] = report.warned
    assert warned.line == 2 and f"customer {customer.id}: Phone Co" in warned.warning
    assert "warning" in warning_report(table, report).decode("utf-8-sig").splitlines()[0]
