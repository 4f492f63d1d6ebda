"""One way to run many awaitables at once: bounded, in order, one cancellation semantics.

Built on :class:`asyncio.TaskGroup`: the first unexpected exception cancels
every other item and is raised as itself (not wrapped in an exception group),
so a caller's ``except`` sees the error it would see from a plain ``await``.
No task outlives the call. A call site that wants every item to run whatever
the others do says so: its function returns the failure as a value, or it uses
:func:`bounded_settle`, which hands back the expected errors in place of results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["bounded_map", "bounded_settle", "run_all"]

T = TypeVar("T")
R = TypeVar("R")
E = TypeVar("E", bound=BaseException)


async def bounded_map(
    fn: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int | None = None
) -> list[R]:
    """``[await fn(item) for item in items]``, at most ``limit`` at a time (None: no bound).

    Results come back in the order of ``items``, whatever order they finish in.
    The first exception an item raises cancels the others and is raised.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    slots = asyncio.Semaphore(limit) if limit is not None else None
    failed = False

    async def call(item: T) -> R:
        nonlocal failed
        if failed:  # a slot freed by the failing item: the group is cancelling, start nothing
            raise asyncio.CancelledError
        try:
            return await fn(item)
        except asyncio.CancelledError:
            raise  # this item alone was cancelled: as TaskGroup does, the others go on
        except BaseException:
            failed = True
            raise

    async def one(item: T) -> R:
        if slots is None:
            return await call(item)
        async with slots:
            return await call(item)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]


async def bounded_settle(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    limit: int | None = None,
    *,
    expected: type[E],
) -> list[R | E]:
    """Like :func:`bounded_map`, but an ``expected`` error is that item's result.

    For call sites that report each item's failure and carry on with the rest;
    any other exception still cancels the others and is raised.
    """

    async def settled(item: T) -> R | E:
        try:
            return await fn(item)
        except expected as exc:
            return exc

    return await bounded_map(settled, items, limit)


async def run_all(coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Await coroutines together, unbounded (the callee bounds itself), with the same semantics."""

    async def run(coroutine: Coroutine[Any, Any, None]) -> None:
        await coroutine

    await bounded_map(run, coroutines)
