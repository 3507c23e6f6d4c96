"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis).

Every operation of /api/v1/openapi.json is called with generated requests, valid
(positive) and invalid (negative), as a rep with a real token, through the ASGI
app on SQLite. A run fails on any 5xx and on any response whose status, content
type or body does not conform to the document. The run is bounded and
reproducible: Hypothesis is derandomized (a fixed seed per operation) and each
operation gets a fixed number of examples.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import World

#: Generated requests per operation and mode: about 45 operations, a minute or two in all.
EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _operations(world: World, login: str) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", world.client.app,
                                            headers=world.auth(login))
    return [result.ok() for result in schema.get_all_operations()]


def _seed_rows(world: World) -> None:
    """A few records of the rep's own, so that reads, updates and pages find something."""
    customer = world.create("rep1", "customer", {"name": "Fuzz Co", "employees": 10,
                                                 "website": "https://fuzz.example/a?b=c"})
    world.create("rep1", "contact", {"name": "Fuzz Person", "customer": customer["id"]})
    world.create("rep1", "opportunity", {"name": "Fuzz deal", "customer": customer["id"],
                                         "amount": {"amount": "10.50", "currency": "CNY"}})


@pytest.mark.slow
def test_the_api_conforms_to_its_document_under_fuzzing(sqlite_world: World) -> None:
    _seed_rows(sqlite_world)
    headers = sqlite_world.auth("rep1")
    failures: list[str] = []
    for operation in _operations(sqlite_world, "rep1"):
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE, headers=headers),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, headers=headers))

        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
        @given(case=strategy)
        def call(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            call()
        except BaseException as exc:  # schemathesis raises a FailureGroup; collect them all
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            failures.append(f"{operation.label}: {str(exc)[:700]}")
    assert not failures, "\n\n".join(failures)


def test_web_addresses_are_stored_as_the_iris_the_document_promises(sqlite_world: World) -> None:
    operations = {op.label: op for op in _operations(sqlite_world, "rep1")}
    create = operations["POST /customer"]
    for typed, stored in (('https://x.example/search?q="a b"', "https://x.example/search?q=%22a%20b%22"),
                          ("https://例子.测试/路径?k=<v>", "https://例子.测试/路径?k=%3Cv%3E"),
                          ("https://x.example/100%", "https://x.example/100%25"),
                          ("https://x.example/a%20b", "https://x.example/a%20b")):
        response = sqlite_world.post("rep1", "/customer", {"name": "Web", "website": typed})
        assert response.status_code == 201, response.text
        assert response.json()["website"] == stored
        create.validate_response(response)  # format: iri, checked
