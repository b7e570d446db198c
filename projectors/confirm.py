"""The confirmer: tells the other nodes how far this node's read models have applied the log.

A node has applied an offset when *every* one of its runners has (a write waits for all of them), so the
confirmed clock is the per-partition minimum of the runners' positions. It is published every
:attr:`Confirmer.HEARTBEAT` seconds, so a node that joins late or missed a message learns the latest clock soon,
and after each commit (coalesced: a burst of commits sends one message) while some node waits for a quorum.

Why on demand: only a writer waiting for W > 1 needs a clock the moment it moves, and every confirmation goes
to every node, so confirming each commit costs a fleet of N nodes N² deliveries per burst, and each node a socket
write per commit (about a tenth of a following node's CPU per event on one host, measured). A waiting writer's
node asks (:meth:`Confirmer.ask`, at most once per :attr:`Confirmer.ASK_EVERY`); a node that hears an ask
confirms at once and then after each commit for :attr:`Confirmer.EAGER_FOR` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence

from infra.confirm import Confirmation, Confirmations
from infra.log import Clock
from infra.tasks import stop_task
from infra.throttle import Throttle
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
    #: How long a node confirms after every commit once a peer asked.
    EAGER_FOR = 3.0
    #: How often a node whose writers wait for a quorum asks again (well inside :attr:`EAGER_FOR`).
    ASK_EVERY = 1.0

    def __init__(self, node: str, runners: Sequence[ProjectionRunner], channel: Confirmations) -> None:
        self._node = node
        self._runners = list(runners)
        self._channel = channel
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._eager_until = -math.inf
        self._asks = Throttle(self.ASK_EVERY)
        self._asking = False
        self.last_sent: Clock = {}
        for runner in self._runners:
            runner.add_listener(self._note)

    def _note(self, _position: Clock) -> None:
        if asyncio.get_running_loop().time() < self._eager_until:
            self._changed.set()

    def asked(self) -> None:
        """A peer waits for a quorum: confirm now, and after every commit for :attr:`EAGER_FOR` seconds."""
        self._eager_until = asyncio.get_running_loop().time() + self.EAGER_FOR
        self._changed.set()

    def ask(self) -> None:
        """This node waits for a quorum: ask every node to confirm each commit (sent at most once per
        :attr:`ASK_EVERY`, with this node's own clock)."""
        if self._asks.ready():
            self._asking = True
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
            clock, asks, self._asking = applied_clock(self._runners), self._asking, False
            try:
                await self._channel.publish(Confirmation(self._node, clock, asks))
            except Exception:  # a confirmation is repeated at the next beat; never let the loop die
                log.exception("confirmation not sent")
                continue
            self.last_sent = clock

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
