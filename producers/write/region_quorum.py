"""Quorum across regions (``--quorum-regions K``, issue #16): after W nodes of the writer's region, wait until
K regions (the writer's included) have applied the write. Off by default: a regional write never waits on
another region unless asked to.

Kept apart from :mod:`producers.write.quorum` (the regional W) so that the two rules change independently: this
tracker is that one plus a wait on :class:`infra.confirm.regions.RegionAcks`.
"""

from __future__ import annotations

from collections.abc import Callable

from infra.confirm import Confirmations
from infra.confirm.regions import RegionAcks, open_region_acks
from infra.log import Clock, EventLog
from infra.log.regional import RegionalLog
from producers.errors import QuorumNotMetError, ValidationError
from producers.write.quorum import QuorumConfig, QuorumTracker

__all__ = ["RegionQuorumTracker", "quorum_tracker"]


class RegionQuorumTracker(QuorumTracker):
    def __init__(self, node: str, channel: Confirmations, config: QuorumConfig, regions: RegionAcks, *,
                 ask: Callable[[], None] | None = None, asked: Callable[[], None] | None = None) -> None:
        super().__init__(node, channel, config, ask=ask, asked=asked)
        self._regions = regions

    def start(self) -> None:
        super().start()
        self._regions.start()

    def ask(self) -> None:
        """Ask this region's nodes (with W > 1) and the other regions' nodes to confirm each commit for a while:
        called as a write starts and again as it waits."""
        super().ask()
        self._regions.ask()

    async def wait(self, clock: Clock) -> int:
        """The region's acks once W nodes and K regions have applied ``clock``.

        Raises:
            QuorumNotMetError: W nodes, or K regions, not within the timeout (``got`` / ``needed`` count
                regions in the second case; the reason stays the original's ``timeout``).
        """
        acks = await super().wait(clock)  # it asks, through this tracker's ask: this region's and the others'
        got = await self._regions.wait(clock, self.config.regions, timeout=self.config.timeout_ms / 1000)
        if got < self.config.regions:
            raise QuorumNotMetError(got=got, needed=self.config.regions, reason="timeout")
        return acks

    async def stop(self) -> None:
        await super().stop()
        await self._regions.stop()


def quorum_tracker(node: str, channel: Confirmations, config: QuorumConfig, log: EventLog, *,
                   ask: Callable[[], None] | None = None, asked: Callable[[], None] | None = None) -> QuorumTracker:
    """The tracker ``config`` asks for: across regions with ``regions > 1`` (a regional log only). ``ask`` and
    ``asked`` wire it to the node's confirmer (:class:`QuorumTracker`)."""
    if config.regions <= 1:
        return QuorumTracker(node, channel, config, ask=ask, asked=asked)
    if not isinstance(log, RegionalLog):
        raise ValidationError("--quorum-regions needs a regional log (?region=…&regions=… in the log URL)")
    if config.regions > len(log.regions):
        raise ValidationError(f"--quorum-regions {config.regions} but the hive has {len(log.regions)} regions")
    return RegionQuorumTracker(node, channel, config, open_region_acks(log, node), ask=ask, asked=asked)
