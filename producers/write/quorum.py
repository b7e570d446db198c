"""Quorum writes from consumer confirmations: a write returns once W nodes (the writer included) have
applied its offset.

The writer counts itself once its own projectors have applied the write (the service waits for that first);
every other node counts once a confirmation from it covers the write's clock. Confirmations are heard on the
channel beside the log (:mod:`infra.confirm`), kept as the highest clock per node. Nodes confirm each commit only
while asked (:mod:`projectors.confirm`): a wait for W > 1 asks (``ask``), and a peer's ask is passed on
(``asked``), both given by the node that wires this tracker to its confirmer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from infra.confirm import Confirmation, Confirmations, follow
from infra.log import Clock, clock_covers, merge_clocks
from infra.tasks import stop_task
from infra.waiters import Waiters
from producers.errors import QuorumNotMetError

__all__ = ["QuorumConfig", "QuorumTracker"]


@dataclass(frozen=True)
class QuorumConfig:
    """``writes`` is W, ``nodes`` is N (from configuration); W is clamped to [1, N] as the original does."""

    writes: int = 1
    nodes: int = 1
    timeout_ms: int = 2000
    #: A hive (#16): after W of the region's nodes, wait until this many regions (this one included) have
    #: applied the write (:mod:`producers.write.region_quorum`). 1: the region alone.
    regions: int = 1

    @property
    def needed(self) -> int:
        return max(1, min(self.writes, max(1, self.nodes)))


class QuorumTracker:
    def __init__(self, node: str, channel: Confirmations, config: QuorumConfig, *,
                 ask: Callable[[], None] | None = None, asked: Callable[[], None] | None = None) -> None:
        self._node = node
        self._channel = channel
        self.config = config
        self._ask = ask
        self._asked = asked
        self._clocks: dict[str, Clock] = {}
        self._changed = Waiters()
        self._task: asyncio.Task[None] | None = None

    @property
    def peers(self) -> dict[str, Clock]:
        """The latest clock each other node has confirmed."""
        return {n: dict(c) for n, c in self._clocks.items()}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="quorum-listener")

    async def _listen(self) -> None:
        async def heard(confirmation: Confirmation) -> None:
            if confirmation.node == self._node:
                return
            if confirmation.asks and self._asked is not None:
                self._asked()
            if not confirmation.clock:  # an ask from another region's node: nothing it applied counts here
                return
            self._clocks[confirmation.node] = merge_clocks(self._clocks.get(confirmation.node, {}), confirmation.clock)
            self._changed.changed()  # the writer whose quorum this completes runs next, no lock hand-off

        await follow(self._channel, heard, what="confirmation channel")

    def acks(self, clock: Clock) -> int:
        """Nodes that have applied ``clock``: this one (the caller waited for it) plus every covering peer."""
        return 1 + sum(1 for c in self._clocks.values() if clock_covers(c, clock))

    async def wait(self, clock: Clock) -> int:
        """Return the acks once W nodes have applied ``clock``.

        Raises:
            QuorumNotMetError: fewer than W within the timeout; the event stays in the log regardless.
        """
        if not clock:
            return self.acks(clock)
        self.ask()  # the one ask of a wait (``ask`` says whom: nobody at W = 1, unless a subclass waits for more)
        needed = self.config.needed
        if needed <= 1:
            return self.acks(clock)
        await self._changed.until(lambda: self.acks(clock) >= needed, timeout=self.config.timeout_ms / 1000)
        got = self.acks(clock)
        if got < needed:
            raise QuorumNotMetError(got=got, needed=needed, reason="timeout")
        return got

    def ask(self) -> None:
        """With W > 1, ask every node to confirm each commit for a while (rate-limited by the confirmer): called
        as a write starts and again as it waits."""
        if self._ask is not None and self.config.needed > 1:
            self._ask()

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
