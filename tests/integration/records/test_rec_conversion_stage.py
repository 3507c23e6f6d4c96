"""A conversion of a neutral, pipelined entity: the source is marked by a stage move and
records the main target in one of its own fields (``record_on_source``); the Unrestricted
policy, no app package. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.errors import ConversionError, ValidationError
from engine.metadata.parse import registry_from_document
from engine.records.conversion import Converter
from engine.records.service import RecordService
from engine.storage.tables import build_schema
from tests.integration.records._docs import ACCOUNT, CONTACT, field
from tests.integration.records._stages_doc import FLOW, TICKET

SYSTEM = Actor.system("test")
TICKET_WITH_LINK: dict[str, Any] = copy.deepcopy(TICKET)
TICKET_WITH_LINK["fields"].append(field("account", "reference", target="account"))
ESCALATE = {
    "name": "escalate", "label": {"en": "Escalate", "zh-CN": "升级"}, "source": "ticket",
    "mark": {"stage": "triage"},
    "record_on_source": {"field": "account", "target": "account"},
    "targets": [
        {"name": "account", "entity": "account", "mapping": {"name": "title"},
         "constants": {"tier": "gold"}},
        {"name": "person", "entity": "contact", "mapping": {"name": "title"},
         "links": {"account": "account"}},
    ],
}


@pytest.fixture
def service(db_engine: Engine) -> RecordService:
    document = {"apps": [], "entities": {"ticket": TICKET_WITH_LINK, "account": ACCOUNT,
                                         "contact": CONTACT},
                "pipelines": {"ticket_flow": FLOW}, "conversions": {"escalate": ESCALATE}}
    schema = build_schema(registry_from_document(document))
    schema.metadata.create_all(db_engine)
    return RecordService(engine=db_engine, schema=schema)


def _row(service: RecordService, entity: str, record_id: int) -> dict[str, Any]:
    table = service.schema.table(entity)
    with service.engine.connect() as conn:
        return dict(conn.execute(select(table).where(table.c.id == record_id)).one()._mapping)


def test_stage_mark_and_record_on_source(service: RecordService) -> None:
    ticket = service.create(SYSTEM, "ticket", {"title": "Broken pump", "due": "2030-01-31"})
    assert ticket["stage"] == "new"
    result = Converter(service).convert(SYSTEM, "escalate", ticket.id)
    account = result.targets["account"].record_id
    after = _row(service, "ticket", ticket.id)
    assert (after["stage"], after["account"]) == ("triage", account)
    assert _row(service, "account", account)["tier"] == "gold"
    assert _row(service, "contact", result.targets["person"].record_id)["account"] == account
    with pytest.raises(ConversionError):
        Converter(service).convert(SYSTEM, "escalate", ticket.id)


def test_a_refused_stage_move_writes_nothing(service: RecordService) -> None:
    """The mark's stage needs ``due``: the move fails and no account is left behind."""
    ticket = service.create(SYSTEM, "ticket", {"title": "No due date"})
    with pytest.raises(ValidationError) as caught:
        Converter(service).convert(SYSTEM, "escalate", ticket.id)
    assert "due" in caught.value.field_errors
    assert service.count(SYSTEM, "account") == 0
    assert _row(service, "ticket", ticket.id)["stage"] == "new"
