"""A seeded CRM org for the report tests (the permission tests' org plus deals and leads)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, update

from engine.storage.database import write_transaction
from tests.integration.permissions._crm_org import CrmOrg, Fact, seed_crm
from tests.integration.permissions.conftest import module_db_url  # noqa: F401 (fixture)

#: opportunity owner key -> (stage, amount, probability, loss reason)
DEALS = {"r1": ("won", "1200.00", 100, None), "r2": ("lost", "300.00", 0, "price"),
         "r3": ("won", "800.00", 100, None), "sn": ("quote", "500.00", 50, None),
         "m": ("lost", "50.00", 0, "competitor"), "r4": ("offer", "90.00", 30, None)}
#: lead owner key -> (channel, status)
LEADS = {"r1": ("kol", "converted"), "r3": ("street", "converted"), "r5": ("kol", "new")}


def enrich(org: CrmOrg) -> None:
    """Stages, amounts, channels and lead sources on the seeded rows (set as test data)."""
    opp, lead, customer = (org.schema.table(n) for n in ("opportunity", "lead", "customer"))
    with write_transaction(org.engine) as conn:
        for key, (stage, amount, prob, reason) in DEALS.items():
            rid = org.id("opportunity", key)
            conn.execute(update(opp).where(opp.c.id == rid).values(
                stage=stage, amount=Decimal(amount), amount_currency="CNY", probability=prob,
                loss_reason=reason))
            fact = org.facts[("opportunity", rid)]
            org.facts[("opportunity", rid)] = Fact(
                fact.entity, fact.key, fact.owner, fact.pool, fact.deleted,
                {**fact.values, "stage": stage, "amount": Decimal(amount),
                 "probability": prob, "loss_reason": reason})
        for key, (channel, status) in LEADS.items():
            rid = org.id("lead", key)
            conn.execute(update(lead).where(lead.c.id == rid).values(channel=channel,
                                                                      status=status))
            fact = org.facts[("lead", rid)]
            org.facts[("lead", rid)] = Fact(fact.entity, fact.key, fact.owner, fact.pool,
                                            fact.deleted, {**fact.values, "channel": channel,
                                                           "status": status})
            if status == "converted":
                cid = org.id("customer", key)
                conn.execute(update(customer).where(customer.c.id == cid)
                             .values(source_lead=rid))
                cfact = org.facts[("customer", cid)]
                org.facts[("customer", cid)] = Fact(
                    cfact.entity, cfact.key, cfact.owner, cfact.pool, cfact.deleted,
                    {**cfact.values, "source_lead": rid})


@pytest.fixture(scope="module")
def org(module_db_url: str) -> Iterator[CrmOrg]:  # noqa: F811 (the fixture)
    engine = create_engine(module_db_url)
    seeded = seed_crm(engine)
    enrich(seeded)
    yield seeded
    engine.dispose()


TODAY = dt.date.today()
