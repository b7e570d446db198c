"""The JetStream log on a real nats-server: the shared contract, then what only this backend can get wrong."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import nats
import nats.js.errors
import pytest

from infra.cluster import NatsCluster, NatsServer
from infra.log import (
    AppendConflictError,
    EventLog,
    LogClosedError,
    LogConfig,
    LogError,
    LogRecord,
    LogUnavailableError,
    open_log,
)
from infra.log.jetstream import Header, JetStreamLog, _translate, parse_nats_url, positions_bucket, subject_for
from schemas import NodeKey
from tests.contract.log_contract import LogContract, RawAppend, read_all
from tests.factories import node_key, signed

pytestmark = pytest.mark.nats
T = TypeVar("T")


def _stream_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def _drop_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url.split(","))
    js = nc.jetstream()
    for name in (stream, f"KV_{positions_bucket(stream)}"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await nc.close()


@contextlib.asynccontextmanager
async def _fresh_log(url: str, *, replicas: int = 1) -> AsyncIterator[JetStreamLog]:
    stream = _stream_name()
    log = await JetStreamLog.connect(url, stream=stream, replicas=replicas)
    try:
        yield log
    finally:
        await log.close()
        await _drop_stream(url, stream)


async def check_mixed_batch(log: EventLog, key: NodeKey) -> None:
    """A batch repeating stored events stores only the new ones, contiguously, and returns the old positions."""
    old = [signed(key) for _ in range(2)]
    stored = await log.append(old)
    new = [signed(key) for _ in range(3)]
    positions = await log.append([old[0], new[0], new[1], old[1], new[2], new[0]])
    assert positions[0] == stored[0] and positions[3] == stored[1]
    new_offsets = [positions[i].offset for i in (1, 2, 4)]
    assert new_offsets == [stored[1].offset + 1, stored[1].offset + 2, stored[1].offset + 3]
    assert positions[5] == positions[1]
    assert [r.event.event_id for r in await read_all(log)] == [e.event_id for e in old + new]


async def check_contiguous_batches(log: EventLog, key: NodeKey) -> None:
    """Concurrent atomic batches never interleave."""
    async def writer() -> list[list[int]]:
        out = []
        for _ in range(5):
            out.append([p.offset for p in await log.append([signed(key) for _ in range(7)])])
        return out

    batches = [b for chunk in await asyncio.gather(*(writer() for _ in range(6))) for b in chunk]
    for offsets in batches:
        assert offsets == list(range(offsets[0], offsets[0] + 7))
    assert sorted(o for b in batches for o in b) == list(range(1, 211))


@pytest.fixture
def raw_append(log: EventLog) -> RawAppend:
    """Publish straight to the stream's subjects, past the adapter (any NATS client can)."""
    assert isinstance(log, JetStreamLog)

    async def append(body: bytes, signature: bytes | None) -> None:
        nc = await nats.connect(log.url.rsplit("/", 1)[0].split(","))
        headers = {Header.MSG_ID: uuid.uuid4().hex}
        if signature is not None:
            headers[Header.SIGNATURE] = base64.b64encode(signature).decode()
        await nc.jetstream().publish(subject_for(f"aimem.{log.stream}", "raw"), body, headers=headers)
        await nc.close()

    return append


class TestJetStreamLog(LogContract):
    @pytest.fixture
    async def log(self, nats_server: NatsServer) -> AsyncIterator[EventLog]:
        async with _fresh_log(nats_server.url) as log:
            yield log


@pytest.mark.slow
class TestJetStreamClusterLog(LogContract):
    """The same contract on three nodes with three replicas (the server's clustered code paths differ)."""

    @pytest.fixture
    async def log(self, nats_cluster: NatsCluster) -> AsyncIterator[EventLog]:
        async with _fresh_log(nats_cluster.url, replicas=3) as log:
            yield log

    async def test_batch_mixing_stored_and_new_events_stores_only_the_new(self, log: EventLog,
                                                                        key: NodeKey) -> None:
        await check_mixed_batch(log, key)

    async def test_concurrent_batches_are_contiguous(self, log: EventLog, key: NodeKey) -> None:
        await check_contiguous_batches(log, key)


@pytest.fixture
async def jlog(nats_server: NatsServer) -> AsyncIterator[JetStreamLog]:
    async with _fresh_log(nats_server.url) as log:
        yield log


@pytest.fixture
def key(tmp_path: Path) -> NodeKey:
    return node_key(tmp_path)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server of this test's own, to kill and restart."""
    with NatsServer(store_dir=tmp_path / "nats") as server:
        yield server


class TestJetStreamLogBehaviour:
    async def test_messages_carry_id_signature_and_typed_subject(self, jlog: JetStreamLog, key: NodeKey,
                                                                 nats_server: NatsServer) -> None:
        event = signed(key, event_type="memory.deleted")
        (pos,) = await jlog.append([event])
        nc = await nats.connect(nats_server.url)
        msg = await nc.jetstream().get_msg(jlog.stream, pos.offset)
        await nc.close()
        assert msg.subject == f"aimem.{jlog.stream}.memory.deleted"
        assert msg.data == event.body
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == event.event_id

    async def test_dedup_across_connections_returns_first_position(self, jlog: JetStreamLog, key: NodeKey,
                                                                   nats_server: NatsServer) -> None:
        event = signed(key)
        (first,) = await jlog.append([event])
        other = await JetStreamLog.connect(nats_server.url, stream=jlog.stream)
        assert await other.append([event]) == [first]
        await other.close()
        assert [r.event.event_id for r in await read_all(jlog)] == [event.event_id]

    async def test_batch_mixing_stored_and_new_events_stores_only_the_new(self, jlog: JetStreamLog,
                                                                        key: NodeKey) -> None:
        await check_mixed_batch(jlog, key)

    async def test_mixed_batch_with_stale_expected_conflicts(self, jlog: JetStreamLog, key: NodeKey) -> None:
        old = signed(key)
        await jlog.append([old, signed(key)])
        with pytest.raises(AppendConflictError) as info:
            await jlog.append([old, signed(key)], expected={jlog.stream: 1})
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert len(await read_all(jlog)) == 2

    async def test_concurrent_batches_are_contiguous(self, jlog: JetStreamLog, key: NodeKey) -> None:
        await check_contiguous_batches(jlog, key)

    async def test_batch_over_the_limit_is_refused_whole(self, jlog: JetStreamLog, key: NodeKey) -> None:
        events = [signed(key) for _ in range(JetStreamLog.MAX_BATCH + 1)]
        with pytest.raises(LogError, match="atomic batch limit"):
            await jlog.append(events)
        assert await jlog.end_offsets() == {jlog.stream: 0}
        positions = await jlog.append(events[: JetStreamLog.MAX_BATCH])
        assert positions[-1].offset == JetStreamLog.MAX_BATCH

    async def test_wait_for_append_wakes_on_another_writers_append(self, jlog: JetStreamLog, key: NodeKey,
                                                                  nats_server: NatsServer) -> None:
        started = time.monotonic()
        await jlog.wait_for_append({jlog.stream: 0}, timeout=0.3)
        assert time.monotonic() - started >= 0.25
        other = await JetStreamLog.connect(nats_server.url, stream=jlog.stream)
        waiter = asyncio.create_task(jlog.wait_for_append({jlog.stream: 0}, timeout=10))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await other.append([signed(key)])
        await asyncio.wait_for(waiter, timeout=5)
        assert time.monotonic() - started < 2
        await other.close()

    async def test_waiters_starting_together_share_one_consumer(self, jlog: JetStreamLog, key: NodeKey,
                                                               nats_server: NatsServer) -> None:
        # A node's projectors all wait at once when it starts; one consumer must follow the stream for them all,
        # or the node receives every record once per projector.
        other = await JetStreamLog.connect(nats_server.url, stream=jlog.stream)
        try:
            await other.append([signed(key)])  # stored before jlog follows: every waiter returns at once
            await asyncio.wait_for(asyncio.gather(
                *(jlog.wait_for_append({jlog.stream: 0}, timeout=10) for _ in range(5))), timeout=5)
            waiters = [asyncio.create_task(jlog.wait_for_append({jlog.stream: 1}, timeout=10)) for _ in range(3)]
            await asyncio.sleep(0.1)
            await other.append([signed(key)])
            await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
            assert (await jlog._js.stream_info(jlog.stream)).state.consumer_count == 1
        finally:
            await other.close()

    async def test_a_follower_reads_another_writers_records_from_the_pushed_tail(
            self, jlog: JetStreamLog, key: NodeKey, nats_server: NatsServer) -> None:
        await jlog.append([signed(key)])
        await jlog.wait_for_append({jlog.stream: 1}, timeout=0.05)  # starts following after record 1
        other = await JetStreamLog.connect(nats_server.url, stream=jlog.stream)
        try:
            events = [signed(key) for _ in range(3)]
            await other.append(events)
            await jlog.wait_for_append({jlog.stream: 1}, timeout=5)
            direct_gets: list[int] = []
            real = jlog._direct_get

            async def counted(start: int, limit: int) -> list[LogRecord]:
                direct_gets.append(start)
                return await real(start, limit)

            jlog._direct_get = counted  # type: ignore[method-assign]
            for _ in range(50):  # the three arrive one by one; each read answers what is held so far
                records = await jlog.read(after={jlog.stream: 1})
                if len(records) == 3:
                    break
                await jlog.wait_for_append({jlog.stream: 1 + len(records)}, timeout=1)
            assert [r.event.event_id for r in records] == [e.event_id for e in events]
            assert [r.offset for r in records] == [2, 3, 4]
            assert direct_gets == []  # served from the records pushed to this instance
            assert await jlog.read(after={jlog.stream: 0}, limit=1)  # before the tail: from the stream
            assert direct_gets == [1]
        finally:
            await other.close()

    async def test_positions_merge_per_partition(self, jlog: JetStreamLog) -> None:
        await jlog.commit_position("p/ü x", {jlog.stream: 3, "other": 1})
        await jlog.commit_position("p/ü x", {jlog.stream: 5})
        assert await jlog.committed_position("p/ü x") == {jlog.stream: 5, "other": 1}

    async def test_every_call_after_close_raises_closed(self, jlog: JetStreamLog, key: NodeKey) -> None:
        await jlog.close()
        with pytest.raises(LogClosedError):
            await jlog.append([signed(key)])
        with pytest.raises(LogClosedError):
            await jlog.read()
        with pytest.raises(LogClosedError):
            await jlog.committed_position("x")
        with pytest.raises(LogClosedError):
            await anext(aiter(jlog.subscribe()))

    async def test_subscriber_sees_close_as_closed(self, jlog: JetStreamLog) -> None:
        async def follow() -> None:
            async for _ in jlog.subscribe(idle=0.05):
                pass

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.2)
        await jlog.close()
        with pytest.raises(LogClosedError):
            await asyncio.wait_for(task, timeout=5)

    async def test_existing_stream_with_other_subjects_is_refused(self, nats_server: NatsServer) -> None:
        stream = _stream_name()
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().add_stream(name=stream, subjects=[f"elsewhere-{stream}.>"])
        await nc.close()
        try:
            with pytest.raises(LogError, match="subjects"):
                await JetStreamLog.connect(nats_server.url, stream=stream)
        finally:
            await _drop_stream(nats_server.url, stream)

    async def test_factory_opens_jetstream_and_hides_password(self, nats_server: NatsServer) -> None:
        stream = _stream_name()
        url = nats_server.url.replace("nats://", "nats://agent:s3cret@") + f"/{stream}"
        log = await open_log(LogConfig(url=url))
        try:
            assert isinstance(log, JetStreamLog)
            assert log.stream == stream
            assert "s3cret" not in log.url and stream in log.url
        finally:
            await log.close()
            await _drop_stream(nats_server.url, stream)

    async def test_reads_are_fast(self, jlog: JetStreamLog, key: NodeKey) -> None:
        for start in range(0, 20_000, 1000):
            await jlog.append([signed(key) for _ in range(1000)])
            assert (await jlog.end_offsets())[jlog.stream] == start + 1000
        started = time.monotonic()
        records = await read_all_fast(jlog)
        rate = len(records) / (time.monotonic() - started)
        assert [r.offset for r in records] == list(range(1, 20_001))
        assert rate > 5_000, f"read only {rate:.0f} records/s"


async def read_all_fast(log: EventLog) -> list[LogRecord]:
    out: list[LogRecord] = []
    position: dict[str, int] = {}
    while batch := await log.read(after=position, limit=1000):
        out.extend(batch)
        position[batch[-1].partition] = batch[-1].offset
    return out


class TestJetStreamLogFaults:
    async def test_kill_and_restart_loses_nothing_acknowledged(self, own_server: NatsServer, key: NodeKey) -> None:
        log = await JetStreamLog.connect(own_server.url, timeout=2.0)
        events = [signed(key) for _ in range(40)]
        await log.append(events[:10])
        for event in events[10:20]:
            await log.append([event])
        await log.append(events[20:])
        await log.commit_position("projector", {log.stream: 40})
        own_server.kill()
        await asyncio.to_thread(own_server.restart)
        assert [r.event.event_id for r in await _retrying(lambda: read_all(log))] == [e.event_id for e in events]
        assert await log.committed_position("projector") == {log.stream: 40}
        (pos,) = await log.append([signed(key)])
        assert pos.offset == 41
        await log.close()

    async def test_append_during_outage_fails_fast_then_recovers_without_copies(
            self, own_server: NatsServer, key: NodeKey) -> None:
        log = await JetStreamLog.connect(own_server.url, timeout=1.0)
        await log.append([signed(key)])
        own_server.kill()
        event = signed(key)
        with pytest.raises(LogUnavailableError):
            await asyncio.wait_for(log.append([event]), timeout=10)
        with pytest.raises(LogUnavailableError):
            await asyncio.wait_for(log.end_offsets(), timeout=10)
        await asyncio.to_thread(own_server.restart)
        (pos,) = await _retrying(lambda: log.append([event]))
        assert pos.offset == 2
        assert [r.offset for r in await read_all(log)] == [1, 2]
        await log.close()

    async def test_connect_to_nothing_is_unavailable(self, tmp_path: Path) -> None:
        server = NatsServer(store_dir=tmp_path / "nats")
        server.start()
        url = server.url
        server.stop()
        with pytest.raises(LogUnavailableError):
            await asyncio.wait_for(JetStreamLog.connect(url, timeout=1.0), timeout=10)

    async def test_subscriber_survives_restart(self, own_server: NatsServer, key: NodeKey) -> None:
        log = await JetStreamLog.connect(own_server.url, timeout=1.0)
        before = await log.append([signed(key) for _ in range(3)])
        seen: list[int] = []

        async def follow() -> None:
            async for record in log.subscribe(after={log.stream: 1}, idle=0.05):
                seen.append(record.offset)
                if len(seen) == 5:
                    return

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.2)
        own_server.kill()
        await asyncio.to_thread(own_server.restart)
        after = await _retrying(lambda: log.append([signed(key) for _ in range(3)]))
        await asyncio.wait_for(task, timeout=15)
        assert seen == [p.offset for p in before[1:]] + [p.offset for p in after]
        await log.close()


async def _retrying(call: Callable[[], Awaitable[T]], *, within: float = 15.0) -> T:
    """``call()`` retried while the log is unavailable (a client reconnecting), for at most ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except LogUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


class TestUrls:
    def test_several_servers_and_a_stream_path(self) -> None:
        target = parse_nats_url("nats://u:p@h1:1,h2:2/mystream", stream="ignored")
        assert target.servers == ["nats://u:p@h1:1", "nats://h2:2"]
        assert target.stream == "mystream"

    def test_default_stream(self) -> None:
        assert parse_nats_url("tls://h:4222").stream == "ai-memory"

    def test_bad_stream_name(self) -> None:
        with pytest.raises(LogError):
            parse_nats_url("nats://h:1/a.b")

    def test_subjects_are_legal(self) -> None:
        assert subject_for("aimem.s", "memory.stored") == "aimem.s.memory.stored"
        assert subject_for("aimem.s", "a b..*>") == "aimem.s.a_b._.__"


def test_a_duplicate_still_in_process_is_transient() -> None:
    # An append sent again after a timeout while the server still proposes the first copy (a frozen leader):
    # retried by the writer (503 if it persists), never a storage error (500).
    exc = nats.js.errors.APIError(code=409, err_code=10158, description="duplicate message id is in process")
    assert isinstance(_translate(exc, "s", None, closed=False), LogUnavailableError)
