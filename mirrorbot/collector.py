"""Pausing Python's cyclic garbage collector around bursts of allocation."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block without cyclic collection, then restore the collector as it was.

    For code that creates many objects and frees none (importing the CLI; the
    planner building 100,000 plan items): each collection meanwhile scans a
    growing heap for cycles that are not there. Measured here: planning
    100,000 tags 0.50 s -> 0.27 s CPU. Reference counting still frees
    everything acyclic at once; cycles wait for the next collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
