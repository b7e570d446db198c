"""The confirmations contract: a node publishes ``(node, clock applied)``; every node hears everyone's.

Confirmations are *latest-wins* facts ("node n has applied up to clock c"), so a lost or repeated message is
harmless: the publisher repeats its latest clock periodically, and a receiver keeps the maximum per node.
That is what lets the transport be cheap (NATS core pub/sub; a compacted Kafka topic later).

A confirmation that ``asks`` comes from a node waiting for a quorum: it asks every node to confirm after each
commit for a while (:class:`projectors.confirm.Confirmer`); otherwise nodes confirm once a heartbeat. A peer's
message without the field predates asking and is read as asking, since such a node may wait at any time.
"""

from __future__ import annotations

import asyncio
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from infra.log.base import Clock

__all__ = ["Confirmation", "Confirmations", "LocalConfirmations", "follow"]

log = logging.getLogger("ai_memory.confirm")


@dataclass(frozen=True, slots=True)
class Confirmation:
    node: str
    clock: Clock
    #: The node waits for a quorum now: confirm after every commit (the module notes).
    asks: bool = False

    def encode(self) -> bytes:
        return json.dumps({"node": self.node, "clock": self.clock, "asks": self.asks}, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Confirmation | None:
        """The confirmation in ``data``, or None when it is not one (never raises: peers may be newer)."""
        try:
            raw = json.loads(data)
            node, clock, asks = raw["node"], raw["clock"], raw.get("asks", True)
            if not isinstance(node, str) or not isinstance(clock, dict) or not isinstance(asks, bool):
                return None
            return cls(node, {str(k): int(v) for k, v in clock.items()}, asks)
        except (ValueError, KeyError, TypeError):
            return None


class Confirmations(ABC):
    """One node's view of the confirmation channel shared by all nodes on a log."""

    @abstractmethod
    async def publish(self, confirmation: Confirmation) -> None:
        """Send ``confirmation`` to every node (best effort; callers repeat it, so a loss is harmless).

        Never raises for a transport outage: a confirmation that cannot be sent now is simply not sent.
        """

    @abstractmethod
    def subscribe(self) -> AsyncIterator[Confirmation]:
        """Every confirmation published from now on, by any node (this one included)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop; idempotent. Subscriptions end."""


class LocalConfirmations(Confirmations):
    """Confirmations within one process: for the embedded log (one node) and for tests."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[Confirmation | None]] = []

    async def publish(self, confirmation: Confirmation) -> None:
        for queue in self._queues:
            queue.put_nowait(confirmation)

    async def subscribe(self) -> AsyncIterator[Confirmation]:
        queue: asyncio.Queue[Confirmation | None] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self._queues.remove(queue)

    async def close(self) -> None:
        for queue in self._queues:
            queue.put_nowait(None)


async def follow(channel: Confirmations, handle: Callable[[Confirmation], Awaitable[None]], *, what: str) -> None:
    """Hand every confirmation heard on ``channel`` to ``handle``, for as long as the task runs: when the channel
    fails (an outage of the log's servers) it is listened to again, a little later."""
    while True:
        try:
            async for confirmation in channel.subscribe():
                await handle(confirmation)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the channel came back from an outage: listen again
            log.warning("%s: %r; listening again", what, exc)
        await asyncio.sleep(0.2)
