"""``tidepool pool ...``: assign, recycle, move, release and history from a shell."""

from __future__ import annotations

import io

from engine.cli import main
from tests.integration.workflow.conftest import World


def _run(world: World, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    url = world.engine.url.render_as_string(hide_password=False)
    code = main(["pool", *argv, "--db", url], out=out)
    return code, out.getvalue()


def test_assign_recycle_history_and_release(world: World) -> None:
    record_id = world.pooled("customer")[0]
    code, text = _run(world, "assign", "customer", str(record_id), "--to", "rep_east2",
                      "--reason", "key contact")
    assert code == 0, text
    assert world.row("customer", record_id)["owner_id"] == world.uid("rep_east2")
    code, text = _run(world, "recycle", "customer", str(record_id), "--reason", "audit")
    assert (code, text.strip()) == (0, f"customer {record_id} is back in customer_pool")
    code, text = _run(world, "history", "customer", str(record_id))
    assert code == 0
    lines = text.strip().splitlines()
    assert [line.split()[2] for line in lines] == ["assign", "recycle"]
    assert "reason='audit'" in lines[1]
    held = len(world.held_by("lead", "rep_west1")) + len(world.held_by("customer", "rep_west1"))
    code, text = _run(world, "release", "rep_west1")
    assert (code, text.split()[0]) == (0, str(held))
    assert world.held_by("lead", "rep_west1") == []
    assert world.held_by("customer", "rep_west1") == []


def test_errors_are_reported_not_raised(world: World) -> None:
    code, text = _run(world, "assign", "customer", "999999", "--to", "rep_east2")
    assert code == 1 and "not found" in text
    code, text = _run(world, "assign", "customer", str(world.pooled("customer")[0]),
                      "--to", "nobody")
    assert code == 1 and "nobody" in text
    code, text = _run(world, "history", "nothing", "1")
    assert code == 1
