"""Appends from one node pipeline: concurrent writes become one batch, in order, each answered with its own
records; a failed batch fails only its own writes; a cancelled caller does not cancel the others."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra.log import LogError, LogPosition, LogRecord
from infra.log.embedded import EmbeddedLog
from producers.write.pipeline import AppendPipeline
from schemas import Envelope, SignedEvent, load_or_create_node_key, now_ts, sign


def _envelope(n: int) -> Envelope:
    return Envelope(event_id=str(uuid.uuid4()), type="memory.touched", schema_version=1, namespace="p", actor="a",
                    origin="o", ts=now_ts(), payload={"n": n}, key_id="k")


async def test_concurrent_writes_share_one_batch(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log.db")
    key = load_or_create_node_key(tmp_path / "keys", "k")
    batches: list[int] = []
    offered: list[LogRecord] = []

    async def append(signed: Sequence[SignedEvent]) -> list[LogPosition]:
        batches.append(len(signed))
        await asyncio.sleep(0.01)  # a round trip: the writes arriving meanwhile form the next batch
        return await log.append(signed)

    pipeline = AppendPipeline(append, lambda envs: [sign(e, key) for e in envs], offered.extend)
    writes = [[_envelope(i), _envelope(i)] for i in range(10)]
    results = await asyncio.gather(*(pipeline.submit(w) for w in writes))
    assert batches == [20]  # all ten writes arrived before the first flush: one batch, one round trip
    for write, records in zip(writes, results, strict=True):
        assert [r.event.event_id for r in records] == [e.event_id for e in write]
        assert records[1].offset == records[0].offset + 1  # one write's events stay together
    assert [r.offset for r in offered] == list(range(1, 21))  # offered once, in log order
    await log.close()


async def test_a_failed_batch_fails_its_writes_only(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path / "keys", "k")
    calls = 0

    async def append(signed: Sequence[SignedEvent]) -> list[LogPosition]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise LogError("broken batch")
        return [LogPosition("p", i + 1) for i in range(len(signed))]

    pipeline = AppendPipeline(append, lambda envs: [sign(e, key) for e in envs], lambda _records: None)
    first = asyncio.ensure_future(pipeline.submit([_envelope(0)]))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(pipeline.submit([_envelope(i)])) for i in range(1, 4)]
    with pytest.raises(LogError, match="broken batch"):
        await first
    assert [len(await w) for w in later] == [1, 1, 1]


async def test_a_cancelled_caller_leaves_the_batch_alone(tmp_path: Path) -> None:
    key = load_or_create_node_key(tmp_path / "keys", "k")
    appended: list[int] = []

    async def append(signed: Sequence[SignedEvent]) -> list[LogPosition]:
        await asyncio.sleep(0.02)
        appended.append(len(signed))
        return [LogPosition("p", i + 1) for i in range(len(signed))]

    pipeline = AppendPipeline(append, lambda envs: [sign(e, key) for e in envs], lambda _records: None)
    impatient = asyncio.ensure_future(pipeline.submit([_envelope(0)]))
    patient = asyncio.ensure_future(pipeline.submit([_envelope(1)]))
    await asyncio.sleep(0.005)
    impatient.cancel()
    assert len(await patient) == 1
    assert sum(appended) == 2  # the cancelled write was still appended (as a write cut off mid-flight may be)
