"""The bulk path's pause of cyclic garbage collection: nested and overlapping pauses,
errors inside, and a collector the application turned off (engine/records/_gc.py)."""

from __future__ import annotations

import gc
import threading

import pytest

from engine.records._gc import paused_collection


@pytest.fixture(autouse=True)
def _collector_restored() -> object:
    was = gc.isenabled()
    yield None
    if was:
        gc.enable()
    else:
        gc.disable()


def test_collection_resumes_after_the_outermost_pause_even_on_error() -> None:
    gc.enable()
    with pytest.raises(ValueError), paused_collection():
        assert not gc.isenabled()
        with paused_collection():
            assert not gc.isenabled()
        assert not gc.isenabled()   # the outer pause still holds
        raise ValueError("a refused batch")
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_application_stays_off() -> None:
    gc.disable()
    with paused_collection():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_in_threads_resume_once_the_last_ends() -> None:
    gc.enable()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with paused_collection():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=other)
    worker.start()
    assert inside.wait(10)
    with paused_collection():
        pass
    assert not gc.isenabled()   # the other thread's batch is still running
    release.set()
    worker.join(10)
    assert gc.isenabled()
