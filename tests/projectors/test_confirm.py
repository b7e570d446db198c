"""Confirmations on demand: a node confirms once a heartbeat, and after every commit only while a peer waits for
a quorum and asks (``projectors/confirm.py``, ``producers/write/quorum.py``, ``infra/confirm/regions.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.confirm import Confirmation, Confirmations, LocalConfirmations
from infra.confirm.regions import RegionAcks
from infra.log import Clock, LogPosition
from infra.log.embedded import EmbeddedLog
from producers.write.quorum import QuorumConfig, QuorumTracker
from producers.write.region_quorum import RegionQuorumTracker
from producers.write.writer import EventWriter
from projectors import ProjectionRunner, SQLiteReadModel
from projectors.confirm import Confirmer
from schemas import Keyring, SignedEvent
from schemas.events import MemoryDeleted
from tests.factories import node_key, signed


@dataclass
class Heard:
    """Every confirmation published on a channel, collected by a task."""

    messages: list[Confirmation]
    task: asyncio.Task[None]

    async def settle(self) -> list[Confirmation]:
        await asyncio.sleep(0.05)  # the confirmer's task and the collector run
        return list(self.messages)


@contextlib.asynccontextmanager
async def heard(channel: Confirmations) -> AsyncIterator[Heard]:
    messages: list[Confirmation] = []

    async def collect() -> None:
        async for confirmation in channel.subscribe():
            messages.append(confirmation)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    try:
        yield Heard(messages, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_node_confirms_each_commit_only_while_a_peer_asks(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Confirmer, "HEARTBEAT", 30.0)  # no heartbeat within this test
    monkeypatch.setattr(Confirmer, "EAGER_FOR", 0.3)
    key = node_key(tmp_path)
    log = EmbeddedLog(tmp_path / "log.db")
    model = SQLiteReadModel(tmp_path / "rm.db")
    runner = ProjectionRunner(log, model, Keyring({key.key_id: key.public_bytes}))
    channel = LocalConfirmations()
    confirmer = Confirmer("me", [runner], channel)
    runner.start()
    confirmer.start()

    async def applied() -> int:
        (pos,) = await log.append([signed(key)])
        await runner.wait({pos.partition: pos.offset}, timeout=5)
        return pos.offset

    try:
        async with heard(channel) as out:
            for _ in range(3):
                await applied()
            assert await out.settle() == []  # nobody asked: commits are not confirmed one by one
            confirmer.asked()
            (first,) = await out.settle()  # an ask is answered at once, with the clock applied
            assert (first.node, list(first.clock.values()), first.asks) == ("me", [3], False)
            offset = await applied()
            assert [list(c.clock.values()) for c in await out.settle()][-1] == [offset]
            await asyncio.sleep(0.35)  # the eager window closes
            sent = len(await out.settle())
            await applied()
            assert len(await out.settle()) == sent
            confirmer.ask()
            confirmer.ask()  # within ASK_EVERY: one ask goes out
            asks = [c for c in await out.settle() if c.asks]
            assert len(asks) == 1 and list(asks[0].clock.values()) == [offset + 1]
    finally:
        await confirmer.stop()
        await runner.stop()
        await channel.close()
        model.close()
        await log.close()


async def test_a_quorum_wait_asks_and_a_peers_ask_is_passed_on() -> None:
    channel = LocalConfirmations()
    asks: list[str] = []
    tracker = QuorumTracker("me", channel, QuorumConfig(writes=2, nodes=2, timeout_ms=2000),
                            ask=lambda: asks.append("ask"), asked=lambda: asks.append("asked"))
    tracker.start()
    try:
        await asyncio.sleep(0)
        await channel.publish(Confirmation("other-region-node", {}, asks=True))
        await asyncio.sleep(0)
        assert asks == ["asked"] and tracker.peers == {}  # an ask with no clock counts for nothing
        waiting = asyncio.create_task(tracker.wait({"p": 4}))
        await asyncio.sleep(0.01)
        assert asks == ["asked", "ask"]
        await channel.publish(Confirmation("peer", {"p": 4}))
        assert await asyncio.wait_for(waiting, 2) == 2
        assert await tracker.wait({"p": 4}) == 2 and asks.count("ask") == 2  # the confirmer rate-limits asks
    finally:
        await tracker.stop()
        await channel.close()


async def test_a_wait_for_other_regions_asks_their_nodes() -> None:
    own, far = LocalConfirmations(), LocalConfirmations()
    acks = RegionAcks("r1", {"r1": own, "r2": far}, node="me")
    async with heard(own) as here, heard(far) as there:
        acks.ask()
        acks.ask()  # within ASK_EVERY
        assert await here.settle() == []
        assert await there.settle() == [Confirmation("me", {}, asks=True)]
    await acks.stop()


def test_a_peer_that_predates_asking_is_read_as_asking() -> None:
    assert Confirmation.decode(b'{"node": "old", "clock": {"p": 2}}') == Confirmation("old", {"p": 2}, asks=True)
    for message in (Confirmation("n", {"p": 1}), Confirmation("n", {}, asks=True)):
        assert Confirmation.decode(message.encode()) == message
    assert Confirmation.decode(b'{"node": "n", "clock": {}, "asks": "yes"}') is None


async def test_a_write_that_needs_a_quorum_asks_before_it_appends(tmp_path: Path) -> None:
    """The ask goes out before the append, so the other nodes confirm its commit as they make it; at W = 1
    nobody is asked."""
    order: list[str] = []

    class Recording(EmbeddedLog):
        async def append(self, events: Sequence[SignedEvent], *, expected: Clock | None = None,
                         new: bool = False) -> list[LogPosition]:
            order.append("append")
            return await super().append(events, expected=expected, new=new)

    log = Recording(tmp_path / "log.db")
    key = node_key(tmp_path)
    channel = LocalConfirmations()
    for writes, expected in ((2, ["ask", "append"]), (1, ["append"])):
        order.clear()
        tracker = QuorumTracker("me", channel, QuorumConfig(writes=writes, nodes=3), ask=lambda: order.append("ask"))
        writer = EventWriter(log, key, node_id=key.key_id, runners=[], quorum=tracker)
        await writer.append([(MemoryDeleted(id=str(uuid.uuid4())), "ns")], actor="agent")
        assert order == expected
    # A write that waits for other regions asks their nodes as it starts too (even at W = 1 in its region).
    order.clear()

    class Far(LocalConfirmations):
        async def publish(self, confirmation: Confirmation) -> None:
            order.append("region ask")
            await super().publish(confirmation)

    regions = RegionAcks("r1", {"r1": LocalConfirmations(), "r2": Far()}, node="me")
    tracker = RegionQuorumTracker("me", channel, QuorumConfig(writes=1, nodes=3, regions=2), regions)
    writer = EventWriter(log, key, node_id=key.key_id, runners=[], quorum=tracker)
    await writer.append([(MemoryDeleted(id=str(uuid.uuid4())), "ns")], actor="agent")
    assert order == ["region ask", "append"]
    await regions.stop()
    await log.close()
