"""Tasks waiting for a condition on shared state, woken only when theirs holds.

An ``asyncio.Condition`` with ``notify_all`` wakes every waiter on every change, and each then takes the lock
in turn only to find, mostly, that its condition is still false: with C concurrent writers waiting for their
offsets, a commit cost C task switches. Here the changer checks each waiter's predicate in place (a plain call)
and resolves only the futures whose condition now holds, in the same step: no lock, no wasted wake-up, and
the waiter runs one loop iteration sooner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Waiters"]


class Waiters:
    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    async def until(self, holds: Callable[[], bool], *, timeout: float) -> bool:
        """Wait until ``holds()`` is true (checked now and at each :meth:`changed`); False after ``timeout``
        seconds without it."""
        if holds():
            return True
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (holds, done)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            return holds()
        finally:
            self._drop(entry)
        return True

    def changed(self) -> None:
        """The state changed: wake the waiters whose condition holds now (synchronously; safe to call from any
        code running on the loop)."""
        if not self._waiting:
            return
        still = []
        for holds, done in self._waiting:
            if done.done():
                continue
            if holds():
                done.set_result(None)
            else:
                still.append((holds, done))
        self._waiting = still

    def _drop(self, entry: tuple[Callable[[], bool], asyncio.Future[None]]) -> None:
        if entry in self._waiting:
            self._waiting.remove(entry)
