"""A node's writers share reads of the log's end, and each still sees every append made before it asked."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from infra.log import Clock
from infra.log.embedded import EmbeddedLog
from producers.write.writer import EventWriter
from schemas import Envelope, load_or_create_node_key, now_ts, sign


class SlowEnd(EmbeddedLog):
    """The embedded log whose end takes a round trip to read, and says how often it was read."""

    reads = 0

    async def end_offsets(self) -> Clock:
        self.reads += 1
        await asyncio.sleep(0.02)
        return await super().end_offsets()


async def test_concurrent_catch_ups_share_reads_that_start_after_them(tmp_path: Path) -> None:
    log = SlowEnd(tmp_path / "log.db", partition="p")
    key = load_or_create_node_key(tmp_path / "keys", "k")
    writer = EventWriter(log, key, node_id="k", runners=[])
    ends = await asyncio.gather(*(writer.caught_up() for _ in range(20)))
    assert log.reads == 1 and all(end == {"p": 0} for end in ends)

    first = asyncio.ensure_future(writer.caught_up())  # a read in flight ...
    await asyncio.sleep(0.005)
    event = sign(Envelope(event_id=str(uuid.uuid4()), type="memory.touched", schema_version=1, namespace="p",
                          actor="a", origin="k", ts=now_ts(), payload={}, key_id=key.key_id), key)
    await log.append([event])  # ... then an append, acknowledged before the next caller asks
    later = await asyncio.gather(*(writer.caught_up() for _ in range(5)))
    await first  # it began before the append: it may or may not include it
    assert all(end == {"p": 1} for end in later)  # they waited for a read that started after they asked
    assert log.reads == 3
    await log.close()
