"""The log contract: every backend's test class subclasses :class:`LogContract` and provides ``log``.

Not collected itself (no ``Test`` prefix). Backends declare what they guarantee with class attributes
(``ATOMIC_BATCHES``, ``SUPPORTS_EXPECTED``, ``DEDUP_FOREVER``) and the tests check it either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from infra.log import UNREADABLE_TYPE, AppendConflictError, EventLog, LogClosedError, LogRecord
from schemas import NodeKey
from tests.factories import node_key, signed

#: Store a record past the adapter, as a damaged disk or a hostile writer could: (body, signature or None).
RawAppend = Callable[[bytes, "bytes | None"], Awaitable[None]]


async def read_all(log: EventLog) -> list[LogRecord]:
    out: list[LogRecord] = []
    position: dict[str, int] = {}
    while batch := await log.read(after=position, limit=7):
        out.extend(batch)
        for record in batch:
            position[record.partition] = record.offset
    return out


class LogContract:
    @pytest.fixture
    def key(self, tmp_path: Path) -> NodeKey:
        return node_key(tmp_path)

    async def test_empty_append_writes_nothing(self, log: EventLog) -> None:
        assert await log.append([]) == []
        assert await read_all(log) == []
        assert set((await log.end_offsets()).values()) <= {0}

    async def test_bytes_and_signatures_round_trip(self, log: EventLog, key: NodeKey) -> None:
        events = [signed(key, payload={"id": f"m{i}", "text": "héllo ☃ \u0000"}) for i in range(3)]
        positions = await log.append(events)
        records = await read_all(log)
        assert [r.event.body for r in records] == [e.body for e in events]
        assert [r.event.signature for r in records] == [e.signature for e in events]
        assert [r.position for r in records] == positions
        assert records[0].event.envelope == events[0].envelope

    async def test_offsets_strictly_increase(self, log: EventLog, key: NodeKey) -> None:
        for _ in range(3):
            await log.append([signed(key) for _ in range(4)])
        records = await read_all(log)
        assert len(records) == 12
        offsets = [r.offset for r in records]
        assert offsets == sorted(offsets) and len(set(offsets)) == 12
        end = await log.end_offsets()
        assert end[records[-1].partition] == offsets[-1]

    async def test_read_after_and_limit_are_exact(self, log: EventLog, key: NodeKey) -> None:
        positions = await log.append([signed(key) for _ in range(10)])
        part = positions[0].partition
        page = await log.read(after={part: positions[3].offset}, limit=4)
        assert [r.offset for r in page] == [p.offset for p in positions[4:8]]
        assert await log.read(after={part: positions[-1].offset}) == []

    async def test_same_event_id_is_stored_once(self, log: EventLog, key: NodeKey) -> None:
        event = signed(key)
        first = await log.append([event])
        again = await log.append([event])
        assert again == first
        assert len(await read_all(log)) == 1

    async def test_stale_expected_raises_and_writes_nothing(self, log: EventLog, key: NodeKey) -> None:
        if not log.SUPPORTS_EXPECTED:
            pytest.skip("backend declares no expected-offset appends")
        await log.append([signed(key)])
        end = await log.end_offsets()
        stale = {part: off - 1 for part, off in end.items()}
        with pytest.raises(AppendConflictError) as info:
            await log.append([signed(key), signed(key)], expected=stale)
        assert info.value.actual == next(iter(end.values()))
        assert len(await read_all(log)) == 1
        ok = await log.append([signed(key)], expected=end)
        assert ok[0].offset > next(iter(end.values()))

    async def test_batch_semantics_as_declared(self, log: EventLog, key: NodeKey) -> None:
        if not log.SUPPORTS_EXPECTED:
            pytest.skip("needs expected offsets to make a batch fail")
        await log.append([signed(key)])
        stale = {p: 0 for p in (await log.end_offsets())}
        with pytest.raises(AppendConflictError):
            await log.append([signed(key) for _ in range(5)], expected=stale)
        stored = len(await read_all(log))
        if log.ATOMIC_BATCHES:
            assert stored == 1
        else:
            assert 1 <= stored <= 6

    async def test_concurrent_appenders_no_gaps_no_duplicates(self, log: EventLog, key: NodeKey) -> None:
        async def writer(n: int) -> list[int]:
            out = []
            for _ in range(n):
                (pos,) = await log.append([signed(key)])
                out.append(pos.offset)
            return out

        results = await asyncio.gather(*(writer(15) for _ in range(4)))
        offsets = sorted(o for chunk in results for o in chunk)
        assert len(offsets) == len(set(offsets)) == 60
        assert offsets == list(range(offsets[0], offsets[0] + 60))
        assert [r.offset for r in await read_all(log)] == offsets

    async def test_subscribe_resumes_exactly_and_sees_new_appends(self, log: EventLog, key: NodeKey) -> None:
        positions = await log.append([signed(key) for _ in range(5)])
        part = positions[0].partition
        seen: list[int] = []

        async def follow() -> None:
            async for record in log.subscribe(after={part: positions[1].offset}, idle=0.05):
                seen.append(record.offset)
                if len(seen) == 6:
                    return

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.1)
        later = await log.append([signed(key) for _ in range(3)])
        await asyncio.wait_for(task, timeout=10)
        assert seen == [p.offset for p in positions[2:]] + [p.offset for p in later]

    async def test_consumer_positions_are_durable(self, log: EventLog, key: NodeKey) -> None:
        assert await log.committed_position("projector-a") == {}
        (pos,) = await log.append([signed(key)])
        await log.commit_position("projector-a", {pos.partition: pos.offset})
        assert await log.committed_position("projector-a") == {pos.partition: pos.offset}
        assert await log.committed_position("projector-b") == {}

    async def test_close_is_idempotent_and_final(self, log: EventLog) -> None:
        await log.close()
        await log.close()
        with pytest.raises(LogClosedError):
            await log.end_offsets()

    async def test_unreadable_record_is_read_as_such_not_raised(self, log: EventLog, key: NodeKey,
                                                                raw_append: RawAppend) -> None:
        """A record that is not an event (corrupt bytes, not an envelope, no signature) must not stop readers:
        it comes back marked ``unreadable``, in its place, and the records after it come back too."""
        before, after = signed(key), signed(key)
        await log.append([before])
        await raw_append(b"\xff\x00 not json", None)
        await raw_append(b'{"not": "an envelope"}', b"s" * 64)
        await log.append([after])
        records = await read_all(log)
        assert [r.unreadable is not None for r in records] == [False, True, True, False]
        assert [records[0].event.event_id, records[3].event.event_id] == [before.event_id, after.event_id]
        bad = records[1:3]
        assert all(r.event.envelope.type == UNREADABLE_TYPE and r.unreadable for r in bad)
        assert len({r.event.event_id for r in bad}) == 2  # each stand-in names its own position
