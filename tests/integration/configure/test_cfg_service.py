"""Entities, pipelines, roles; atomicity, concurrency, stale previews and the history."""

from __future__ import annotations

import threading

import pytest

import engine.configure.service as service_module
from engine.actor import Actor
from engine.configure.changes import (
    AddEntity,
    AddField,
    AddPipeline,
    EditPipeline,
    RemoveStage,
    SetRole,
    SetStage,
)
from engine.configure.history import config_history
from engine.configure.specs import FieldSpec, GrantSpec, OptionSpec, PipelineSpec, StageSpec
from engine.configure.workspace import ChangeRefused
from engine.errors import ConflictError, ForbiddenError
from engine.permissions.policy_store import load_rules, role_rules
from engine.permissions.scopes import CasbinAccessPolicy
from engine.runtime import open_runtime
from engine.storage.plan import AddFeature, CreateTable
from tests.integration.configure.conftest import Setup
from tests.integration.storage._db import columns, snapshot, tables


def _label(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh-CN": zh}


TICKET = AddEntity(
    name="ticket", label=_label("Ticket", "工单"), plural_label=_label("Tickets", "工单"),
    features=("owned", "activity"),
    fields=(FieldSpec(name="subject", type="text", label=_label("Subject", "主题"),
                      required=True),
            FieldSpec(name="severity", type="select", label=_label("Severity", "严重程度"),
                      options=(OptionSpec("low", _label("Low", "低"), color="gray"),
                               OptionSpec("high", _label("High", "高"), color="red")),
                      default="low")),
    grant_roles=("admin",))

FLOW = PipelineSpec(
    name="ticket_flow", entity="ticket", label=_label("Ticket flow", "工单流程"),
    initial_stage="open",
    stages=(StageSpec("open", _label("Open", "待处理"), order=1, next_stages=("doing",)),
            StageSpec("doing", _label("Doing", "处理中"), order=2, next_stages=("done",)),
            StageSpec("done", _label("Done", "已完成"), order=3, kind="won", next_stages=())))


def test_a_new_entity_with_a_pipeline_is_usable_at_once(crm: Setup) -> None:
    preview = crm.service.preview(TICKET)
    assert [type(s) for s in preview.plan.schema_steps] == [CreateTable]
    assert "ticket" not in tables(crm.engine)

    crm.service.apply(TICKET, crm.admin)
    assert "ticket" in tables(crm.engine)
    admin_role = crm.applied().roles["admin"]
    ticket_grant = [g for g in admin_role.grants if g.entity == "ticket"]
    assert ticket_grant and "assign" in ticket_grant[0].actions \
        and ticket_grant[0].scope.value == "all"

    plan = crm.service.apply(AddPipeline(FLOW), crm.admin)
    assert AddFeature in [type(s) for s in plan.schema_steps]  # the stage column (+ index)
    assert "stage" in columns(crm.engine, "ticket")
    registry = crm.applied()
    assert registry.pipeline_for("ticket").initial_stage == "open"
    runtime = open_runtime(crm.url, engine=crm.engine)
    record = runtime.records.create(Actor.system(), "ticket", {"subject": "Printer"})
    assert record["severity"] == "low"

    crm.service.apply(SetStage("ticket_flow", StageSpec(
        "waiting", _label("Waiting", "等待中"), order=4, next_stages=("done",))), crm.admin)
    crm.service.apply(RemoveStage("ticket_flow", "doing"), crm.admin)
    stages = crm.applied().pipelines["ticket_flow"].stages
    assert [s.key for s in stages] == ["open", "done", "waiting"]
    assert stages[0].next_stages == ()  # the removed stage is no longer a next stage
    with pytest.raises(ChangeRefused, match="new records start in this stage"):
        crm.service.preview(RemoveStage("ticket_flow", "open"))


def test_entity_refusals(crm: Setup) -> None:
    with pytest.raises(ChangeRefused, match="entity 'customer' already exists"):
        crm.service.preview(AddEntity(name="customer", label=_label("C", "C"),
                                      fields=TICKET.fields))
    with pytest.raises(ChangeRefused) as refused:
        crm.service.preview(AddEntity(name="tp_thing", label=_label("T", "T"),
                                      fields=TICKET.fields))
    assert "may not start with 'tp_'" in refused.value.field_errors["name"]
    with pytest.raises(ChangeRefused) as refused:
        crm.service.preview(AddEntity(name="thing", label=_label("T", "T"),
                                      fields=TICKET.fields, title_field="severity"))
    assert "title_field" in refused.value.field_errors
    with pytest.raises(ChangeRefused, match="already has the default pipeline 'opportunity_sales'"):
        crm.service.preview(AddPipeline(PipelineSpec(
            name="other", entity="opportunity", label=_label("O", "O"),
            initial_stage="a", stages=(StageSpec("a", _label("A", "A"), order=1),))))
    with pytest.raises(ChangeRefused) as refused:
        crm.service.preview(AddPipeline(PipelineSpec(
            name="lead_flow", entity="lead", label=_label("L", "L"), initial_stage="a",
            stages=(StageSpec("a", _label("A", "A"), order=1),))))
    assert "comes from app 'crm'" in refused.value.field_errors["features"]


def test_a_package_pipeline_gets_stages_and_stage_changes_as_an_overlay(crm: Setup) -> None:
    trial = StageSpec("trial", _label("Trial order", "试单"), order=35,
                      next_stages=("quote", "lost"))
    plan = crm.service.apply(SetStage("opportunity_sales", trial), crm.admin)
    assert plan.schema_steps == ()
    current = PipelineSpec.from_document(
        crm.service.configured().document["pipelines"]["opportunity_sales"])
    quote = next(s for s in current.stages if s.key == "quote")
    crm.service.apply(SetStage("opportunity_sales", StageSpec(
        **{**quote.__dict__, "probability": 45})), crm.admin)
    pipeline = crm.applied().pipelines["opportunity_sales"]
    assert pipeline.stage("trial").order == 35 and pipeline.stage("quote").probability == 45
    _, customs, _ = crm.state()
    assert customs == [("overlay", "pipeline_opportunity_sales", {
        "pipeline": "opportunity_sales", "add_stages": [trial.to_document()],
        "stages": {"quote": {"probability": 45}}})]
    with pytest.raises(ChangeRefused, match="stage 'won' cannot be removed"):
        crm.service.preview(RemoveStage("opportunity_sales", "won"))
    with pytest.raises(ChangeRefused) as refused:
        crm.service.preview(EditPipeline(PipelineSpec(
            **{**current.__dict__, "initial_stage": "offer"})))
    assert list(refused.value.field_errors) == ["initial_stage"]


def test_role_changes_resync_the_policies(crm: Setup) -> None:
    rep = crm.applied().roles["rep"]
    assert any(g.entity == "contact" for g in rep.grants)
    grants = tuple(GrantSpec(entity=g.entity, actions=g.actions, scope=g.scope.value,
                             hidden_fields=g.hidden_fields, readonly_fields=g.readonly_fields)
                   for g in rep.grants if g.entity != "contact")
    grants += (GrantSpec("customer", ("read",), "department", hidden_fields=("phone",)),)

    crm.service.apply(SetRole("rep", label=_label("Sales rep", "销售"), grants=grants),
                      crm.admin)

    registry = crm.applied()
    with crm.engine.connect() as conn:
        stored = sorted(r for r in load_rules(conn) if r[0] == "p")
    assert stored == sorted(role_rules(registry))
    assert ("p", "rep", "*", "customer", "read", "department") in stored
    assert not any(r[1] == "rep" and r[3] == "contact" for r in stored)
    policy = CasbinAccessPolicy(crm.engine, registry)
    from engine.permissions.identity import create_user
    from engine.permissions.policy_store import bind_role
    from engine.storage.database import write_transaction
    with write_transaction(crm.engine) as conn:
        bob = create_user(conn, login="bob", display_name="Bob", password=None)
        bind_role(conn, user_id=bob.id, role="rep", registry=registry)
    bob_actor = policy.actor_for(bob.id, login="bob")
    with pytest.raises(ForbiddenError):
        policy.check_action(bob_actor, registry.entity("contact"), "read")
    policy.check_action(bob_actor, registry.entity("customer"), "read")

    with pytest.raises(ChangeRefused) as refused:
        crm.service.preview(SetRole("rep", label=_label("R", "R"), grants=(
            GrantSpec("contact", ("claim",), "own"),)))
    assert "needs a pooled entity" in refused.value.field_errors["grants"]
    new_role = SetRole("auditor", label=_label("Auditor", "审计"),
                       grants=(GrantSpec("customer", ("read", "export"), "all"),))
    crm.service.apply(new_role, crm.admin)
    assert "auditor" in crm.applied().roles


def test_a_crash_mid_apply_leaves_nothing_half_applied(crm: Setup, monkeypatch) -> None:
    def crash(conn: object, registry: object) -> bool:
        raise RuntimeError("power cut")

    monkeypatch.setattr(service_module, "sync_roles", crash)
    before = snapshot(crm.engine)
    with pytest.raises(RuntimeError, match="power cut"):
        crm.service.apply(AddField("customer", FieldSpec(
            name="shelf_count", type="integer", label=_label("Shelves", "货架数"))), crm.admin)
    # the customisation row and the ALTER TABLE ran before the crash: both rolled back
    assert snapshot(crm.engine) == before
    assert "shelf_count" not in columns(crm.engine, "customer")


def test_an_apply_after_someone_else_changed_the_metadata_is_refused(crm: Setup) -> None:
    change = AddField("customer", FieldSpec(name="a1", type="text", label=_label("A", "A")))
    preview = crm.service.preview(change)
    crm.service.apply(AddField("customer", FieldSpec(
        name="b1", type="text", label=_label("B", "B"))), crm.admin)
    state = crm.state()
    with pytest.raises(ConflictError):
        crm.service.apply(change, crm.admin, expected_version=preview.version)
    assert crm.state() == state


def test_concurrent_applies_queue_and_neither_change_is_lost(crm: Setup) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def add(name: str) -> None:
        start.wait()
        try:
            crm.service.apply(AddField("customer", FieldSpec(
                name=name, type="integer", label=_label(name, name))), crm.admin)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in ("c1", "c2", "c3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    customer = crm.applied().entity("customer")
    assert {"c1", "c2", "c3"} <= {f.name for f in customer.fields}
    assert {"c1", "c2", "c3"} <= set(columns(crm.engine, "customer"))
    history = config_history(crm.engine)
    assert len(history) == 4  # init + three serialised applies, each on the one before


def test_history_says_who_changed_what_and_when(crm: Setup) -> None:
    crm.service.apply(AddField("customer", FieldSpec(
        name="shelf_count", type="integer", label=_label("Shelves", "货架数"))), crm.admin)
    crm.service.apply(TICKET, crm.admin)
    history = config_history(crm.engine)
    assert [h.summary for h in history[:2]] == ["add entity ticket (2 fields)",
                                                "add field customer.shelf_count (integer)"]
    latest = history[0]
    assert (latest.by, latest.user_id) == ("alice", crm.admin.user_id)
    assert latest.customisations == ("entity/ticket", "role/admin")
    assert "create table ticket (11 columns)" in latest.steps[0] or \
        latest.steps[0].startswith("create table ticket")
    assert history[0].at >= history[1].at >= history[2].at
    assert history[-1].summary.endswith("applied by system")  # the init, not by an admin
    with crm.engine.connect() as conn:
        from engine.storage.customisations import load_customisations
        rows = {(c["kind"], c["name"]): c["updated_by"] for c in load_customisations(conn)}
    assert rows[("entity", "ticket")] == crm.admin.user_id
