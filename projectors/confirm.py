"""The confirmer: tells the other nodes how far this node's read models have applied the log.

A node has applied an offset when *every* one of its runners has (a write waits for all of them), so the
confirmed clock is the per-partition minimum of the runners' positions. It is published after each commit
(coalesced: a burst of commits sends one message) and repeated every :attr:`Confirmer.HEARTBEAT` seconds,
so a node that joins late or missed a message learns the latest clock soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from infra.confirm import Confirmation, Confirmations
from infra.log import Clock
from infra.tasks import stop_task
from projectors.base import ProjectionRunner

__all__ = ["Confirmer", "applied_clock"]

log = logging.getLogger("ai_memory.confirm")


def applied_clock(runners: Sequence[ProjectionRunner]) -> Clock:
    """The clock every runner has reached: per partition, the smallest position (a missing one counts 0)."""
    positions = [r.position for r in runners]
    partitions = {p for pos in positions for p in pos}
    return {p: min(pos.get(p, 0) for pos in positions) for p in sorted(partitions)}


class Confirmer:
    HEARTBEAT = 1.0

    def __init__(self, node: str, runners: Sequence[ProjectionRunner], channel: Confirmations) -> None:
        self._node = node
        self._runners = list(runners)
        self._channel = channel
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_sent: Clock = {}
        for runner in self._runners:
            runner.add_listener(self._note)

    def _note(self, _position: Clock) -> None:
        self._changed.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="confirmer")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.HEARTBEAT):
                    await self._changed.wait()
            self._changed.clear()
            clock = applied_clock(self._runners)
            try:
                await self._channel.publish(Confirmation(self._node, clock))
            except Exception:  # a confirmation is repeated at the next beat; never let the loop die
                log.exception("confirmation not sent")
                continue
            self.last_sent = clock

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
