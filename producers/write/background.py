"""Appends a command does not wait for: a recall's touch event, appended after the recall has answered.

A recall touches what it returns (the original's ``touch_many``: access count, last access, TTL extension,
promotion) with a signed ``memory.touched`` event. Its answer never depends on that event: the memories it
returns were read before it, as the original returns them. Waiting for the event's signature, its append (an
fsync on the embedded log) and its application made every recall ~2.7 ms slower at 10^5 memories, so the
recall answers first and the append goes on in a task of its own.

Nothing is dropped: every such append runs, in the order they were started (each task waits for the one
before), and :meth:`BackgroundAppends.settle` waits for all of them. The writer settles them before it
catches up with the log (``EventWriter.caught_up``: every read-your-writes read and every fresh decision,
the next recall's included), so nothing reads the read model without the touches of the recalls before it;
the node settles them before it closes. An append that fails is logged, as the original logs a failed
``touch_many`` (its recall has already answered). A crash in the milliseconds between the answer and the
append loses that touch only: the bookkeeping of a read, never a client's write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["BackgroundAppends"]

log = logging.getLogger("ai_memory.writer")


class BackgroundAppends:
    """Appends started and not awaited, run one after the other."""

    def __init__(self) -> None:
        self._last: asyncio.Task[None] | None = None

    def start(self, append: Callable[[], Awaitable[object]]) -> None:
        """Run ``append`` once those started before it are done (so they reach the log in this order)."""
        self._last = asyncio.get_running_loop().create_task(self._after(self._last, append),
                                                            name="background-append")

    @staticmethod
    async def _after(previous: asyncio.Task[None] | None, append: Callable[[], Awaitable[object]]) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its failure was logged there; this append goes on
        try:
            await append()
        except Exception:
            log.warning("an append started after its command answered (a recall's touch) failed", exc_info=True)

    async def settle(self) -> None:
        """Until every append started so far has been appended and applied here (or has failed, logged)."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wait([last])
