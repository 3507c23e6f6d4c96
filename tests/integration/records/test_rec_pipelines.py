"""Several pipelines of one entity, through the records service, on SQLite and PostgreSQL.

``case`` records pick their pipeline by ``line``: ``b`` goes to ``case_b``, anything
else (nothing included) to the default ``case_main``. The record's pipeline decides
where it starts, where it may move and what each stage needs; changing ``line``
moves it into the other pipeline's initial stage, recorded like any move.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.actor import Actor
from engine.errors import StageTransitionError, ValidationError
from engine.metadata.parse import registry_from_document
from engine.records import RecordService
from engine.storage.stage_tables import STAGE_HISTORY_TABLE
from engine.storage.tables import StorageSchema, build_schema
from tests.integration.records._docs import field, label, options
from tests.integration.records._stages_doc import stage

CASE: dict[str, Any] = {
    "name": "case", "label": label("Case"), "title_field": "title",
    "features": ["owned", "pipelined", "activity"],
    "fields": [field("title", "text", required=True), field("line", "select",
                                                            options=options("a", "b", "c")),
               field("due", "date"), field("odds", "percent")],
}
MAIN: dict[str, Any] = {
    "name": "case_main", "entity": "case", "label": label("Main"), "probability_field": "odds",
    "stages": [stage("open", 1, probability=10, next_stages=["work"]),
               stage("work", 2, probability=50),
               stage("closed", 3, kind="won")],
}
SIDE: dict[str, Any] = {
    "name": "case_b", "entity": "case", "label": label("Line B"), "probability_field": "odds",
    "selector": {"field": "line", "values": ["b"]},
    "stages": [stage("b_new", 1, probability=20, next_stages=["b_check"]),
               stage("b_check", 2, required_fields=["due"]),
               stage("b_done", 3, kind="won")],
}


@pytest.fixture
def schema(db_engine: Engine) -> Iterator[StorageSchema]:
    built = build_schema(registry_from_document({
        "apps": [], "entities": {"case": CASE},
        "pipelines": {"case_main": MAIN, "case_b": SIDE}, "roles": {}}))
    built.metadata.create_all(db_engine)
    yield built


def _visits(engine: Engine, schema: StorageSchema, record_id: int) -> list[str]:
    table = schema.system[STAGE_HISTORY_TABLE]
    with engine.connect() as conn:
        return list(conn.execute(select(table.c.stage).where(
            table.c.entity == "case", table.c.record_id == record_id).order_by(table.c.id))
            .scalars())


def test_each_record_starts_in_its_own_pipeline(service: RecordService, system: Actor,
                                                 db_engine: Engine,
                                                 schema: StorageSchema) -> None:
    main = service.create(system, "case", {"title": "m"})
    side = service.create(system, "case", {"title": "s", "line": "b"})
    assert (main["stage"], main["odds"]) == ("open", 10)
    assert (side["stage"], side["odds"]) == ("b_new", 20)
    ids = service.bulk_create(system, "case", [{"title": "1", "line": "b"},
                                               {"title": "2", "line": "a"},
                                               {"title": "3", "line": "b", "stage": "b_check",
                                                "due": "2026-12-01"}])
    assert [service.get(system, "case", i)["stage"] for i in ids] == \
        ["b_new", "open", "b_check"]
    assert _visits(db_engine, schema, ids[2]) == ["b_check"]


def test_a_stage_of_another_pipeline_is_refused(service: RecordService,
                                                system: Actor) -> None:
    with pytest.raises(ValidationError) as created:
        service.create(system, "case", {"title": "x", "line": "b", "stage": "work"})
    assert "stage of pipeline case_main" in created.value.field_errors["stage"]
    side = service.create(system, "case", {"title": "s", "line": "b"})
    with pytest.raises(ValidationError) as moved:
        service.move_stage(system, "case", side.id, to="open", version=side.version)
    assert "not of this record's pipeline case_b" in moved.value.field_errors["stage"]
    assert service.count(system, "case") == 1
    assert service.get(system, "case", side.id)["stage"] == "b_new"


def test_moves_follow_the_records_own_pipeline(service: RecordService, system: Actor) -> None:
    side = service.create(system, "case", {"title": "s", "line": "b"})
    with pytest.raises(StageTransitionError) as refused:
        service.move_stage(system, "case", side.id, to="b_done", version=side.version)
    assert refused.value.allowed == ("b_check",)
    with pytest.raises(ValidationError) as missing:
        service.move_stage(system, "case", side.id, to="b_check", version=side.version)
    assert set(missing.value.field_errors) == {"due"}
    moved = service.move_stage(system, "case", side.id, to="b_check", version=side.version,
                               values={"due": "2026-12-01"})
    assert moved["stage"] == "b_check"
    assert service.stage_rules("case", "case_b") is not None
    assert service.stage_rules("case", "nope") is None


def test_changing_the_selector_moves_the_record_into_the_new_pipeline(
        service: RecordService, system: Actor, db_engine: Engine,
        schema: StorageSchema) -> None:
    rec = service.create(system, "case", {"title": "m", "line": "a"})
    rec = service.move_stage(system, "case", rec.id, to="work", version=rec.version)
    same = service.update(system, "case", rec.id, {"line": "c"}, version=rec.version)
    assert same["stage"] == "work"                   # c is still the default pipeline's
    switched = service.update(system, "case", rec.id, {"line": "b"}, version=same.version)
    assert (switched["stage"], switched["odds"]) == ("b_new", 20)
    assert _visits(db_engine, schema, rec.id) == ["open", "work", "b_new"]
    entry = service.activity(system, "case", rec.id, limit=1)[0]
    assert [(c.field, c.old, c.new) for c in entry.changes][:2] == \
        [("stage", "work", "b_new"), ("line", "c", "b")]
    # naming a stage of the new pipeline in the same update enters it
    back = service.update(system, "case", rec.id, {"line": "a", "stage": "work"},
                          version=switched.version)
    assert back["stage"] == "work"
    with pytest.raises(ValidationError) as wrong:
        service.update(system, "case", rec.id, {"line": "b", "stage": "closed"},
                       version=back.version)
    assert "not of this record's pipeline case_b" in wrong.value.field_errors["stage"]
    assert service.get(system, "case", rec.id)["line"] == "a"


def test_without_a_default_pipeline_an_unselected_record_is_refused(
        db_engine: Engine, schema: StorageSchema) -> None:
    job = {**CASE, "name": "job"}
    only_b = {**SIDE, "name": "job_b", "entity": "job"}
    built = build_schema(registry_from_document({
        "apps": [], "entities": {"job": job}, "pipelines": {"job_b": only_b}, "roles": {}}))
    built.metadata.create_all(db_engine)
    service = RecordService(engine=db_engine, schema=built)
    system = Actor.system("test")
    with pytest.raises(ValidationError) as refused:
        service.create(system, "job", {"title": "x", "line": "a"})
    assert refused.value.field_errors == {"line": "no pipeline takes 'a'; choose one of: b"}
    assert service.count(system, "job") == 0
    kept = service.create(system, "job", {"title": "y", "line": "b"})
    with pytest.raises(ValidationError):
        service.update(system, "job", kept.id, {"line": "c"}, version=kept.version)
    assert service.get(system, "job", kept.id)["line"] == "b"


def test_who_may_not_write_the_stage_may_not_switch_pipelines(
        db_engine: Engine, schema: StorageSchema) -> None:
    from tests.integration.records.test_rec_scopes import FakePolicy

    service = RecordService(engine=db_engine, schema=schema,
                            policy=FakePolicy(readonly=frozenset({"stage"})))
    system = Actor.system("test")
    rec = service.create(system, "case", {"title": "m", "line": "a"})
    with pytest.raises(ValidationError) as refused:
        service.update(system, "case", rec.id, {"line": "b"}, version=rec.version)
    assert "moves the record to pipeline case_b" in refused.value.field_errors["line"]
    same = service.update(system, "case", rec.id, {"line": "c"}, version=rec.version)
    assert (same["line"], same["stage"]) == ("c", "open")
