"""Waiters wake only the tasks whose condition holds, at once; a timeout or a cancelled waiter leaves nothing
behind."""

from __future__ import annotations

import asyncio

import pytest

from infra.waiters import Waiters


async def test_only_the_satisfied_waiters_wake() -> None:
    waiters, state = Waiters(), {"offset": 0}
    woken: list[int] = []

    async def wait_for(offset: int) -> None:
        assert await waiters.until(lambda: state["offset"] >= offset, timeout=5)
        woken.append(offset)

    tasks = [asyncio.create_task(wait_for(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    state["offset"] = 2
    waiters.changed()
    await asyncio.sleep(0)  # one loop step: the satisfied waiters have run, the other has not
    assert sorted(woken) == [1, 2]
    state["offset"] = 3
    waiters.changed()
    await asyncio.gather(*tasks)
    assert sorted(woken) == [1, 2, 3]
    assert not waiters._waiting


async def test_a_condition_true_already_does_not_wait() -> None:
    assert await Waiters().until(lambda: True, timeout=0)


async def test_timeout_answers_false_and_forgets_the_waiter() -> None:
    waiters = Waiters()
    assert not await waiters.until(lambda: False, timeout=0.01)
    assert not waiters._waiting


async def test_a_cancelled_waiter_is_forgotten() -> None:
    waiters = Waiters()
    task = asyncio.create_task(waiters.until(lambda: False, timeout=5))
    await asyncio.sleep(0)
    assert len(waiters._waiting) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not waiters._waiting
    waiters.changed()  # nothing left to wake: no error
