"""Pausing Python's cyclic garbage collector around bursts of allocation."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused", "start_up", "start_up_done"]

# Whether start_up() paused the collector and start_up_done() has not restarted it yet.
_start_up_pause = False


@contextmanager
def collector_paused(*, freeze: bool = False) -> Iterator[None]:
    """Run the block without cyclic collection, then restore the collector as it was.

    For code that creates many objects and frees none (importing the CLI; the
    planner building 100,000 plan items): each collection meanwhile scans a
    growing heap for cycles that are not there. Measured here: planning
    100,000 tags 0.50 s -> 0.27 s CPU. Reference counting still frees
    everything acyclic at once; cycles wait for the next collection.

    ``freeze``: move what exists into the permanent generation before the
    collector runs again, for objects that live as long as the process
    (imported modules); otherwise the first allocation after the block scans
    every one of them (≈ 9 ms after a sync's imports).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


@contextmanager
def start_up() -> Iterator[None]:
    """The process's start-up with the collector paused, until :func:`start_up_done`.

    Start-up runs from the entry point through typer's parsing (which imports
    pydantic for its option types) to the end of the command's own imports;
    each of those creates tens of thousands of long-lived objects. A command
    ends it with :func:`start_up_done` once it has imported what it runs; if
    none does (``--version``, ``--help``, a usage error), the block's end does,
    freezing too: the interpreter's last collection at exit would scan it all.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    global _start_up_pause
    _start_up_pause = True
    try:
        yield
    finally:
        if _start_up_pause:
            start_up_done()


def start_up_done() -> None:
    """Freeze what start-up created and let the collector run again, if :func:`start_up` paused it."""
    global _start_up_pause
    gc.freeze()
    if _start_up_pause:
        _start_up_pause = False
        gc.enable()
