"""engine/concurrency.py: the one bounded-concurrency helper and its cancellation semantics.

Synchronised with events only: no test waits for time to pass.
"""

from __future__ import annotations

import asyncio

import pytest

from mirrorbot.engine.concurrency import bounded_map, bounded_settle, run_all


class Gate:
    """Counts items inside the call; the first ``full_at`` to enter wait for ``release``."""

    def __init__(self, full_at: int) -> None:
        self.full_at = full_at
        self.active = 0
        self.most = 0
        self.entered: list[int] = []
        self.full = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, item: int) -> int:
        self.active += 1
        self.most = max(self.most, self.active)
        self.entered.append(item)
        if self.active >= self.full_at:
            self.full.set()
        try:
            await self.release.wait()
        finally:
            self.active -= 1
        return item * 10


async def test_no_more_than_limit_items_run_at_once() -> None:
    gate = Gate(full_at=3)
    run = asyncio.create_task(bounded_map(gate, range(10), 3))
    await gate.full.wait()
    assert gate.entered == [0, 1, 2]  # the other seven wait for a slot
    gate.release.set()
    assert await run == [i * 10 for i in range(10)]
    assert gate.most == 3


async def test_without_a_limit_every_item_runs_at_once() -> None:
    gate = Gate(full_at=10)
    run = asyncio.create_task(bounded_map(gate, range(10)))
    await gate.full.wait()
    gate.release.set()
    await run
    assert gate.most == 10


async def test_results_come_back_in_item_order_whatever_order_they_finish_in() -> None:
    done = {i: asyncio.Event() for i in range(4)}

    async def finish_last_first(item: int) -> str:
        if item < 3:
            await done[item + 1].wait()  # 3 finishes first, then 2, 1, 0
        done[item].set()
        return f"r{item}"

    assert await bounded_map(finish_last_first, range(4), 4) == ["r0", "r1", "r2", "r3"]


async def test_the_first_error_cancels_the_rest_and_is_raised_as_itself() -> None:
    started = asyncio.Event()
    never = asyncio.Event()
    cancelled: list[int] = []
    entered: list[int] = []

    async def work(item: int) -> None:
        entered.append(item)
        if item == 0:
            await started.wait()
            raise KeyError("boom")
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise

    with pytest.raises(KeyError, match="boom"):
        await bounded_map(work, range(6), 3)
    assert sorted(cancelled) == [1, 2]  # the two running beside it
    assert entered == [0, 1, 2]  # the ones waiting for a slot never start


async def test_settle_returns_expected_errors_and_lets_the_rest_finish() -> None:
    async def work(item: int) -> int:
        if item % 2:
            raise ValueError(f"odd {item}")
        return item

    results = await bounded_settle(work, range(5), 2, expected=ValueError)
    assert [r if isinstance(r, int) else str(r) for r in results] == [0, "odd 1", 2, "odd 3", 4]


async def test_settle_still_cancels_on_an_unexpected_error() -> None:
    never = asyncio.Event()
    cancelled: list[int] = []

    async def work(item: int) -> int:
        if item == 2:  # the last to start: the two before it are running
            raise RuntimeError("unexpected")
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return item

    with pytest.raises(RuntimeError, match="unexpected"):
        await bounded_settle(work, range(3), expected=LookupError)
    assert sorted(cancelled) == [0, 1]


async def test_run_all_has_the_same_semantics() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []

    async def waits() -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append("waits")
            raise

    async def fails() -> None:
        raise ValueError("first")

    with pytest.raises(ValueError, match="first"):
        await run_all([waits(), fails()])
    assert cancelled == ["waits"]


async def test_a_limit_below_one_is_refused() -> None:
    async def work(item: int) -> int:
        return item

    with pytest.raises(ValueError, match="at least 1"):
        await bounded_map(work, [1], 0)
