"""An enormous exponent costs microseconds, not the server: a request carrying
``1e999999999`` is answered within a second of CPU while another request is served.

Before the limits, reading it as an integer built a billion-digit number with the
GIL held: every other request waited more than ten minutes. CPU time
(``time.process_time``, all threads of this process) is the one bound measured
here; wall-clock time depends on the machine's load and is never asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.security.conftest import World, csrf

HUGE = "1e999999999"
#: CPU seconds the pair of requests may take together (they take a few milliseconds).
CPU_BUDGET = 1.0


def _concurrently(*calls: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_api_requests_with_a_huge_exponent_cost_under_a_second_of_cpu(world: World) -> None:
    other = TestClient(world.client.app, base_url="https://crm.test")
    auth = world.auth("rep1")
    attacks: list[Callable[[], Any]] = [
        lambda: world.client.post("/api/v1/customer", headers={
            **auth, "Content-Type": "application/json"},
            content=f'{{"name": "x", "employees": {HUGE}}}'.encode()),
        lambda: world.client.get(f"/api/v1/customer?filter[employees]={HUGE}", headers=auth),
        lambda: world.client.get(f"/api/v1/customer?filter[employees][in]=1,{HUGE}",
                                 headers=auth),
    ]
    for attack in attacks:
        start = time.process_time()
        refused, served = _concurrently(attack, lambda: other.get("/api/v1/customer",
                                                                   headers=auth))
        spent = time.process_time() - start
        assert refused.status_code in (400, 422), refused.text
        assert "employees" in refused.json()["errors"]
        assert served.status_code == 200
        assert spent < CPU_BUDGET, f"{spent:.2f} s of CPU"


def test_screen_requests_with_a_huge_exponent_cost_under_a_second_of_cpu(
        client_for: Callable[..., TestClient]) -> None:
    attacker, bystander = client_for("rep_east1"), client_for("rep_east2")
    token = csrf(attacker)
    attacks: list[Callable[[], Any]] = [
        lambda: attacker.get(f"/e/customer?f.employees.eq={HUGE}"),
        lambda: attacker.post("/e/customer/new", data={"csrf_token": token, "name": "x",
                                                       "employees": HUGE}),
    ]
    for attack in attacks:
        start = time.process_time()
        refused, served = _concurrently(attack, lambda: bystander.get("/e/customer"))
        spent = time.process_time() - start
        assert refused.status_code in (400, 422)
        assert served.status_code == 200
        assert spent < CPU_BUDGET, f"{spent:.2f} s of CPU"
