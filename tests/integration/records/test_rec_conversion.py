"""Conversions on the CRM demo (lead -> customer + contact + optional opportunity), with
real permissions, on SQLite and PostgreSQL: links both ways, atomic, once only, race-safe,
attach-to-existing dedup, forbidden and bad input."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.actor import Actor
from engine.demo import prepare_demo
from engine.errors import (
    ConversionError,
    DuplicateError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from engine.permissions.identity import create_user, find_user
from engine.permissions.scopes import CasbinAccessPolicy
from engine.records.conversion import Converter, TargetChoice
from engine.records.record import Record
from engine.records.service import RecordService
from engine.records.transaction import Transaction
from engine.runtime import Runtime, install_hooks, open_runtime
from engine.storage.database import make_engine, write_transaction
from tests.conftest import REPO_ROOT
from tests.integration.permissions.conftest import module_db_url  # noqa: F401 (fixture)

NAME = "lead_to_customer"
COUNTED = ("lead", "customer", "contact", "opportunity")


@pytest.fixture(scope="module")
def runtime(module_db_url: str) -> Iterator[Runtime]:  # noqa: F811 (the fixture)
    prepare_demo(module_db_url, apps=[REPO_ROOT / "apps" / "crm"], out=io.StringIO(), rows=3)
    engine = make_engine(module_db_url, pool_size=10, max_overflow=20)
    with write_transaction(engine) as conn:
        create_user(conn, login="nobody", display_name="No roles", locale="en")
    found = open_runtime(module_db_url, engine=engine,
                         policy_factory=lambda e, r: CasbinAccessPolicy(e, r))
    yield found
    engine.dispose()


@pytest.fixture(scope="module")
def converter(runtime: Runtime) -> Converter:
    return Converter(runtime.records)


def actor(runtime: Runtime, login: str) -> Actor:
    with runtime.engine.connect() as conn:
        user = find_user(conn, login)
    assert user is not None, login
    return runtime.policy.actor_for(user.id, login=login)  # type: ignore[attr-defined]


_phones = iter(range(10_000))


def new_lead(runtime: Runtime, login: str = "rep_east1", **values: Any) -> Record:
    n = next(_phones)
    payload = {"company_name": f"Shop {n}", "contact_name": f"Ms Lin {n}",
               "phone": f"+86 139-{n:04d}-7{n % 1000:03d}", "email": f"lin{n}@example.com",
               "channel": "street", "status": "qualified", "grade": "B", **values}
    return runtime.records.create(actor(runtime, login), "lead", payload)


def counts(runtime: Runtime) -> dict[str, int]:
    found = {}
    with runtime.engine.connect() as conn:
        for name in (*COUNTED, "tp_activity"):
            table = runtime.schema.system.get(name) if name.startswith("tp_") \
                else runtime.schema.table(name)
            assert table is not None
            found[name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
    return found


def row(runtime: Runtime, entity: str, record_id: int) -> dict[str, Any]:
    table = runtime.schema.table(entity)
    with runtime.engine.connect() as conn:
        return dict(conn.execute(select(table).where(table.c.id == record_id)).one()._mapping)


def children(runtime: Runtime, entity: str, field: str, value: int) -> list[int]:
    table = runtime.schema.table(entity)
    with runtime.engine.connect() as conn:
        return list(conn.execute(select(table.c.id).where(table.c[field] == value)).scalars())


def feed_kinds(runtime: Runtime, entity: str, record_id: int) -> list[tuple[str, str | None]]:
    table = runtime.schema.system["tp_activity"]
    with runtime.engine.connect() as conn:
        return [(r.kind, r.via) for r in conn.execute(
            select(table.c.kind, table.c.via).where(table.c.entity == entity,
                                                    table.c.record_id == record_id)
            .order_by(table.c.id))]


def test_conversion_creates_links_and_marks(runtime: Runtime, converter: Converter) -> None:
    rep = actor(runtime, "rep_east1")
    lead = new_lead(runtime)
    proposal = converter.preview(rep, NAME, lead.id, source_entity="lead")
    by_name = {t.target.name: t for t in proposal.targets}
    assert by_name["customer"].values["name"] == lead["company_name"]
    assert "grade" in by_name["customer"].skipped   # read-only for reps: not carried
    assert by_name["contact"].values == {"name": lead["contact_name"], "phone": lead["phone"],
                                         "email": lead["email"], "is_primary": True}
    assert by_name["customer"].matches == ()

    result = converter.convert(rep, NAME, lead.id,
                               {"opportunity": TargetChoice(include=True)},
                               source_entity="lead")
    made = result.targets
    assert set(made) == {"customer", "contact", "opportunity"}
    assert result.main.entity == "customer" and not result.main.attached
    customer = row(runtime, "customer", made["customer"].record_id)
    assert customer["source_lead"] == lead.id and customer["name"] == lead["company_name"]
    assert customer["owner_id"] == rep.user_id
    contact = row(runtime, "contact", made["contact"].record_id)
    assert contact["customer"] == customer["id"] and contact["is_primary"] is True
    opportunity = row(runtime, "opportunity", made["opportunity"].record_id)
    assert opportunity["customer"] == customer["id"]
    assert opportunity["stage"] is not None            # the pipeline's initial stage
    assert row(runtime, "lead", lead.id)["status"] == "converted"
    via = f"conversion:{NAME}"
    assert feed_kinds(runtime, "lead", lead.id)[-2:] == [("update", via), ("convert", via)]
    for name, target in made.items():
        assert feed_kinds(runtime, target.entity, target.record_id)[0] == ("create", via), name


def test_optional_target_is_left_out_unless_ticked(runtime: Runtime,
                                                   converter: Converter) -> None:
    lead = new_lead(runtime)
    before = counts(runtime)
    result = converter.convert(actor(runtime, "rep_east1"), NAME, lead.id)
    assert set(result.targets) == {"customer", "contact"}
    after = counts(runtime)
    assert after["opportunity"] == before["opportunity"]
    assert after["customer"] == before["customer"] + 1


def test_failure_midway_writes_nothing(runtime: Runtime, converter: Converter) -> None:
    """The opportunity (third) create fails after the customer and contact were inserted."""
    rep = actor(runtime, "rep_east1")
    lead = new_lead(runtime)
    before = counts(runtime)
    with pytest.raises(ValidationError) as caught:
        converter.convert(rep, NAME, lead.id, {"opportunity": TargetChoice(
            values={"name": "Deal", "amount": {"amount": "-x", "currency": "CNY"}})})
    assert "opportunity.amount" in caught.value.field_errors
    assert counts(runtime) == before
    assert row(runtime, "lead", lead.id)["status"] == "qualified"
    assert children(runtime, "customer", "source_lead", lead.id) == []


def test_failure_injected_by_a_hook_writes_nothing(runtime: Runtime,
                                                   converter: Converter) -> None:
    rep = actor(runtime, "rep_east1")
    lead = new_lead(runtime)
    before = counts(runtime)

    class Boom(RuntimeError):
        pass

    def refuse_opportunities(tx: Transaction, events: Any) -> None:
        if any(e.entity == "opportunity" for e in events):
            raise Boom("injected")

    # A service of its own: hooks cannot be removed from the shared one.
    records = install_hooks(RecordService(engine=runtime.engine, schema=runtime.schema,
                                          policy=runtime.policy))
    records.hooks.in_transaction(refuse_opportunities)
    with pytest.raises(Boom):
        Converter(records).convert(rep, NAME, lead.id,
                                   {"opportunity": TargetChoice(include=True)})
    assert counts(runtime) == before
    assert row(runtime, "lead", lead.id)["status"] == "qualified"


def test_second_conversion_is_refused(runtime: Runtime, converter: Converter) -> None:
    rep = actor(runtime, "rep_east1")
    lead = new_lead(runtime)
    converter.convert(rep, NAME, lead.id)
    before = counts(runtime)
    with pytest.raises(ConversionError) as caught:
        converter.convert(rep, NAME, lead.id)
    assert caught.value.reason == "converted"
    assert "already converted" in str(caught.value)
    with pytest.raises(ConversionError):
        converter.preview(rep, NAME, lead.id)
    # Setting the status back by hand does not open a second conversion: the customer
    # still points at the lead.
    current = runtime.records.get(rep, "lead", lead.id)
    runtime.records.update(rep, "lead", lead.id, {"status": "qualified"},
                           version=current.version)
    before = counts(runtime)
    with pytest.raises(ConversionError) as caught:
        converter.convert(rep, NAME, lead.id)
    assert caught.value.reason == "converted"
    assert counts(runtime) == before


def test_concurrent_conversions_one_wins(runtime: Runtime, converter: Converter) -> None:
    rep = actor(runtime, "rep_east1")
    lead = new_lead(runtime)
    before = counts(runtime)
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(converter.convert(rep, NAME, lead.id))
        except Exception as exc:  # noqa: BLE001 - the loser's error is the assertion
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(outcomes) == 2 and len(errors) == 1, outcomes
    assert isinstance(errors[0], ConversionError), errors
    assert len(children(runtime, "customer", "source_lead", lead.id)) == 1
    after = counts(runtime)
    assert (after["customer"], after["contact"]) == (before["customer"] + 1,
                                                     before["contact"] + 1)


def test_attach_to_existing_customer_instead_of_a_twin(runtime: Runtime,
                                                       converter: Converter) -> None:
    rep = actor(runtime, "rep_east1")
    existing = runtime.records.create(rep, "customer", {"name": "Old Shop",
                                                        "phone": "13800138000"})
    lead = new_lead(runtime, phone="+86 138-0013-8000")
    proposal = converter.preview(rep, NAME, lead.id)
    assert proposal.targets[0].matches == (existing.id,)

    before = counts(runtime)
    with pytest.raises(DuplicateError):   # not confirmed: no twin, nothing written
        converter.convert(rep, NAME, lead.id)
    assert counts(runtime) == before

    result = converter.convert(rep, NAME, lead.id,
                               {"customer": TargetChoice(attach_to=existing.id)})
    assert result.main.record_id == existing.id and result.main.attached
    after = counts(runtime)
    assert after["customer"] == before["customer"]
    assert after["contact"] == before["contact"] + 1
    contact = row(runtime, "contact", result.targets["contact"].record_id)
    assert contact["customer"] == existing.id
    assert row(runtime, "customer", existing.id)["source_lead"] == lead.id
    assert ("attach", f"conversion:{NAME}") in feed_kinds(runtime, "customer", existing.id)


def test_attach_needs_a_matching_record(runtime: Runtime, converter: Converter) -> None:
    rep = actor(runtime, "rep_east1")
    other = runtime.records.create(rep, "customer", {"name": "Unrelated"})
    lead = new_lead(runtime)
    before = counts(runtime)
    with pytest.raises(ValidationError) as caught:
        converter.convert(rep, NAME, lead.id, {"customer": TargetChoice(attach_to=other.id)})
    assert "customer.attach_to" in caught.value.field_errors
    assert counts(runtime) == before


def test_no_convert_grant_is_forbidden(runtime: Runtime, converter: Converter) -> None:
    lead = new_lead(runtime)
    before = counts(runtime)
    with pytest.raises(ForbiddenError):
        converter.convert(actor(runtime, "nobody"), NAME, lead.id)
    assert counts(runtime) == before


def test_source_outside_scope_is_not_found(runtime: Runtime, converter: Converter) -> None:
    lead = new_lead(runtime, login="rep_west1")
    before = counts(runtime)
    with pytest.raises(NotFoundError):
        converter.convert(actor(runtime, "rep_east1"), NAME, lead.id)
    with pytest.raises(NotFoundError):
        converter.preview(actor(runtime, "rep_east1"), NAME, lead.id)
    assert counts(runtime) == before
    assert row(runtime, "lead", lead.id)["status"] == "qualified"


def test_readable_but_not_convertible_is_forbidden(runtime: Runtime,
                                                   converter: Converter) -> None:
    """A lead in the pool: reps read it (pool scope) but convert only their own."""
    lead = new_lead(runtime, login="admin")
    lead_table = runtime.schema.table("lead")
    with write_transaction(runtime.engine) as conn:
        conn.execute(lead_table.update().where(lead_table.c.id == lead.id)
                     .values(owner_id=None, pool_id="lead_pool"))
    before = counts(runtime)
    with pytest.raises(ForbiddenError):
        converter.convert(actor(runtime, "rep_east1"), NAME, lead.id)
    assert counts(runtime) == before


def test_bad_input(runtime: Runtime, converter: Converter) -> None:
    rep = actor(runtime, "rep_east1")
    lead = new_lead(runtime)
    before = counts(runtime)
    with pytest.raises(NotFoundError):
        converter.convert(rep, "nope", lead.id)
    with pytest.raises(NotFoundError):
        converter.convert(rep, NAME, lead.id, source_entity="customer")
    with pytest.raises(NotFoundError):
        converter.convert(rep, NAME, 10**9)
    with pytest.raises(ValidationError):
        converter.convert(rep, NAME, lead.id, {"invoice": TargetChoice()})
    with pytest.raises(ValidationError):   # links are the conversion's to set
        converter.convert(rep, NAME, lead.id, {"contact": TargetChoice(
            values={"name": "X", "customer": 1})})
    assert counts(runtime) == before
