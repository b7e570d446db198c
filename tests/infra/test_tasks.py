"""Stopping background work for sure: a clean-up that a peer stalls forever does not stall its caller."""

from __future__ import annotations

import asyncio

from infra.tasks import finish_within


async def test_finish_within_returns_true_when_the_work_ends_in_time() -> None:
    done: list[int] = []

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append(1)

    assert await finish_within(quick(), 2.0, name="quick") is True
    assert done == [1]


async def test_finish_within_stops_work_that_never_ends() -> None:
    never = asyncio.get_running_loop().create_future()  # a connection_lost that never comes
    cancelled: list[bool] = []

    async def stalled() -> None:
        try:
            await never
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    started = asyncio.get_running_loop().time()
    assert await finish_within(stalled(), 0.2, name="stalled") is False
    assert cancelled == [True]
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_finish_within_consumes_the_error_of_a_failed_close() -> None:
    async def failing() -> None:
        raise OSError("socket already gone")

    assert await finish_within(failing(), 1.0, name="failing") is True

