"""Acknowledgements from whole regions of a hive: the highest clock any node of each region has confirmed.

Each region's nodes confirm on their region's subject (:attr:`RegionalLog.confirm_subject`); a node that wants
acknowledgement from other regions listens on all of them (over the gateways). A region counts for a clock
once one of its nodes has applied it: that region holds the write durably (its mirror) and serves it. A node
waiting for other regions asks their nodes to confirm each commit (:meth:`RegionAcks.ask`: a confirmation with
no clock that ``asks``, on their subjects), as a wait within a region does (:mod:`projectors.confirm`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from infra.confirm.base import Confirmation, Confirmations, follow
from infra.confirm.nats import NatsConfirmations
from infra.log.base import Clock, clock_covers, merge_clocks
from infra.log.regional import RegionalLog
from infra.tasks import stop_task
from infra.throttle import Throttle

__all__ = ["RegionAcks", "open_region_acks"]

log = logging.getLogger("ai_memory.confirm")


class RegionAcks:
    #: How often a waiting node asks the other regions again (inside their confirmers' eager window).
    ASK_EVERY = 1.0

    def __init__(self, own: str, channels: dict[str, Confirmations], node: str) -> None:
        self._own = own
        self._channels = channels
        self._node = node
        self._asks = Throttle(self.ASK_EVERY)
        self._asking: asyncio.Task[None] | None = None
        self._clocks: dict[str, Clock] = {}
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._listen(r, c), name=f"region-acks-{r}")
                           for r, c in self._channels.items() if r != self._own]

    async def _listen(self, region: str, channel: Confirmations) -> None:
        async def heard(confirmation: Confirmation) -> None:
            self._clocks[region] = merge_clocks(self._clocks.get(region, {}), confirmation.clock)
            async with self._changed:
                self._changed.notify_all()

        await follow(channel, heard, what=f"confirmations of region {region}")

    def ask(self) -> None:
        """Ask the other regions' nodes to confirm each commit for a while (at most once per :attr:`ASK_EVERY`).
        Called as a write starts: the asks go out in a task of their own, so the write does not wait for them."""
        if (self._asking is None or self._asking.done()) and self._asks.ready():
            self._asking = asyncio.create_task(self._ask_all(), name="region-asks")

    async def _ask_all(self) -> None:
        for region, channel in self._channels.items():
            if region != self._own:
                try:
                    await channel.publish(Confirmation(self._node, {}, asks=True))
                except Exception as exc:  # that region's nodes confirm at their next heartbeat instead
                    log.warning("could not ask region %s to confirm: %r", region, exc)

    def covering(self, clock: Clock) -> int:
        """Regions that have applied ``clock``: this one (its writer has) and every other whose nodes did."""
        return 1 + sum(1 for c in self._clocks.values() if clock_covers(c, clock))

    async def wait(self, clock: Clock, needed: int, *, timeout: float) -> int:
        """The regions covering ``clock`` once ``needed`` do, or however many do after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.covering(clock) >= needed)
        return self.covering(clock)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        asking, self._asking = self._asking, None
        for task in (*tasks, asking):
            await stop_task(task)


def open_region_acks(log: RegionalLog, node: str) -> RegionAcks:
    """Listeners on every region's confirmation subject, on the log's connection (``node``: who asks)."""
    channels: dict[str, Confirmations] = {region: NatsConfirmations(log.client, subject)
                                          for region, subject in log.region_confirm_subjects.items()}
    return RegionAcks(log.region, channels, node)
