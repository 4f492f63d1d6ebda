"""The cyclic collector around start-up (issue 16): paused while modules load, frozen after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mirrorbot.cli.loading import loading
from mirrorbot.collector import collector_paused, start_up, start_up_done


@pytest.fixture(autouse=True)
def _restored() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


def test_paused_with_freeze_freezes_before_the_collector_runs_again() -> None:
    frozen = gc.get_freeze_count()
    with collector_paused(freeze=True):
        assert not gc.isenabled()
        made: list[list[int]] = [[] for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(made)


def test_paused_without_freeze_leaves_the_heap_as_it_was() -> None:
    gc.unfreeze()
    with collector_paused():
        made: list[list[int]] = [[] for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert made


def test_start_up_pauses_until_a_command_has_loaded_what_it_runs() -> None:
    with start_up():
        assert not gc.isenabled()  # typer's parsing, before the command body
        with loading():
            assert not gc.isenabled()
        assert gc.isenabled()  # the command runs with the collector on
        assert gc.get_freeze_count() > 0
    assert gc.isenabled()


def test_start_up_restores_the_collector_when_no_command_ran() -> None:
    # `--version`: what start-up made is frozen all the same, or the interpreter's last
    # collection at exit scans every object of it.
    gc.unfreeze()
    with start_up():
        assert not gc.isenabled()
        made: list[list[int]] = [[] for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)


def test_start_up_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    with start_up():
        start_up_done()
        assert not gc.isenabled()
    assert not gc.isenabled()
