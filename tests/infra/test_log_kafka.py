"""The Kafka log on a real broker (tansu): the shared contract, then what only this backend can get wrong.

What tansu cannot show, and so these tests do not claim: replication across brokers (it is one broker),
durability across broker restarts (it keeps everything in memory: the test below checks that the loss is
*noticed*), and the idempotent producer (it refuses it: the test checks that we say so).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from infra.cluster import KafkaBroker
from infra.log import (
    EventLog,
    LogClosedError,
    LogConfig,
    LogCorruptError,
    LogError,
    LogRecord,
    LogUnavailableError,
    open_log,
)
from infra.log.kafka import Header, KafkaLog, parse_kafka_url, partition_for
from projectors import ProjectionRunner, SQLiteReadModel
from schemas import Keyring, NodeKey
from tests.contract.log_contract import LogContract, RawAppend, read_all
from tests.factories import node_key, signed


def _topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def _connect(broker: KafkaBroker, query: str = "", **options: float) -> KafkaLog:
    return await KafkaLog.connect(f"{broker.url}/{_topic()}{query}", **options)  # type: ignore[arg-type]


class TestKafkaLog(LogContract):
    @pytest.fixture
    async def log(self, kafka_broker: KafkaBroker) -> AsyncIterator[EventLog]:
        log = await _connect(kafka_broker)
        yield log
        await log.close()

    @pytest.fixture
    def raw_append(self, log: EventLog) -> RawAppend:
        """Produce straight to the topic, past the adapter, into the partition of the contract's events."""
        assert isinstance(log, KafkaLog)

        async def append(body: bytes, signature: bytes | None) -> None:
            producer = AIOKafkaProducer(bootstrap_servers=log.target.bootstrap)
            await producer.start()
            headers = [(Header.EVENT_ID, uuid.uuid4().hex.encode())]
            if signature is not None:
                headers.append((Header.SIGNATURE, base64.b64encode(signature)))
            try:
                await producer.send_and_wait(log.topic, body, key=b"global", headers=headers,
                                             partition=partition_for("global", log.partitions))
            finally:
                await producer.stop()

        return append


@pytest.fixture
async def klog(kafka_broker: KafkaBroker) -> AsyncIterator[KafkaLog]:
    log = await _connect(kafka_broker)
    yield log
    await log.close()


@pytest.fixture
def key(tmp_path: Path) -> NodeKey:
    return node_key(tmp_path)


async def _raw_records(broker: KafkaBroker, topic: str, partition: int) -> list[object]:
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        batch = await consumer.getmany(tp, timeout_ms=2000)
        return list(batch.get(tp, []))
    finally:
        await consumer.stop()


class TestKafkaLogBehaviour:
    async def test_records_carry_exact_body_headers_key_and_event_time(self, klog: KafkaLog, key: NodeKey,
                                                                       kafka_broker: KafkaBroker) -> None:
        event = signed(key, namespace="team/a", event_type="memory.deleted")
        (pos,) = await klog.append([event])
        partition = partition_for("team/a", klog.partitions)
        assert pos.partition == f"{klog.topic}-{partition}" and pos.offset == 1
        (raw,) = await _raw_records(kafka_broker, klog.topic, partition)
        headers = dict(raw.headers)  # type: ignore[attr-defined]
        assert raw.value == event.body and raw.key == b"team/a" and raw.offset == 0  # type: ignore[attr-defined]
        assert headers[Header.EVENT_ID] == event.event_id.encode()
        assert base64.b64decode(headers[Header.SIGNATURE]) == event.signature
        assert headers[Header.TYPE] == b"memory.deleted"
        assert abs(raw.timestamp / 1000 - time.time()) < 60  # type: ignore[attr-defined]

    async def test_each_namespace_keeps_its_order_in_its_partition(self, klog: KafkaLog, key: NodeKey) -> None:
        events = [signed(key, namespace=f"ns{i % 5}") for i in range(40)]
        positions = await klog.append(events)
        for ns in {e.envelope.namespace for e in events}:
            mine = [p for e, p in zip(events, positions, strict=True) if e.envelope.namespace == ns]
            assert {p.partition for p in mine} == {f"{klog.topic}-{partition_for(ns, klog.partitions)}"}
            assert [p.offset for p in mine] == sorted(p.offset for p in mine)

    async def test_reads_merge_partitions_the_same_way_for_any_page_size(self, klog: KafkaLog,
                                                                         key: NodeKey) -> None:
        events = [signed(key, namespace=f"ns{i % 7}") for i in range(60)]
        await klog.append(events)
        pages: list[list[str]] = []
        for limit in (1, 7, 1000):
            out: list[LogRecord] = []
            position: dict[str, int] = {}
            while batch := await klog.read(after=position, limit=limit):
                out.extend(batch)
                position.update({r.partition: r.offset for r in batch})
            pages.append([r.event.event_id for r in out])
        assert pages[0] == pages[1] == pages[2]
        assert pages[0] == [e.event_id for e in events]  # one writer's timestamps: the order it appended in

    async def test_dedup_across_connections_returns_first_position(self, klog: KafkaLog, key: NodeKey,
                                                                   kafka_broker: KafkaBroker) -> None:
        event = signed(key)
        (first,) = await klog.append([event])
        other = await KafkaLog.connect(f"{kafka_broker.url}/{klog.topic}")
        assert await other.append([event, event]) == [first, first]
        await other.close()
        assert [r.event.event_id for r in await read_all(klog)] == [event.event_id]

    async def test_only_an_append_that_is_not_new_looks_for_copies(self, klog: KafkaLog, key: NodeKey,
                                                                   kafka_broker: KafkaBroker) -> None:
        """Looking at the partitions' tails costs round trips; events their writer has just signed and never
        tried before cannot be there, and a retry (not new) finds the copy its first try stored."""
        looks = 0
        index_tails = klog._index_tails

        async def counted(partitions: set[int]) -> None:
            nonlocal looks
            looks += 1
            await index_tails(partitions)

        klog._index_tails = counted  # type: ignore[method-assign]
        event = signed(key)
        other = await KafkaLog.connect(f"{kafka_broker.url}/{klog.topic}")
        (stored,) = await other.append([event], new=True)  # a first try whose acknowledgement was lost
        await other.close()
        fresh = await klog.append([signed(key)], new=True)
        assert looks == 0 and fresh[0].offset == stored.offset + 1
        assert await klog.append([event]) == [stored] and looks == 1
        assert len(await read_all(klog)) == 2

    async def test_batch_mixing_stored_and_new_events_stores_only_the_new(self, klog: KafkaLog,
                                                                        key: NodeKey) -> None:
        old = [signed(key) for _ in range(2)]
        stored = await klog.append(old)
        new = [signed(key) for _ in range(3)]
        positions = await klog.append([old[0], new[0], new[1], old[1], new[2], new[0]])
        assert positions[0] == stored[0] and positions[3] == stored[1] and positions[5] == positions[1]
        assert [positions[i].offset for i in (1, 2, 4)] == [3, 4, 5]
        assert [r.event.event_id for r in await read_all(klog)] == [e.event_id for e in old + new]

    async def test_copy_beyond_the_window_is_stored_but_applied_once(self, kafka_broker: KafkaBroker,
                                                                     key: NodeKey, tmp_path: Path) -> None:
        """The weaker guarantee, stated: outside the window Kafka keeps the copy; the projector skips it."""
        topic = _topic()
        first = await KafkaLog.connect(f"{kafka_broker.url}/{topic}?dedup_window=3")
        event = signed(key, event_type="memory.deleted", payload={"id": "m1"})
        await first.append([event])
        await first.append([signed(key, payload={"id": f"x{i}"}) for i in range(5)])
        await first.close()
        other = await KafkaLog.connect(f"{kafka_broker.url}/{topic}?dedup_window=3")
        (copy,) = await other.append([event])
        assert copy.offset == 7
        records = await read_all(other)
        assert [r.event.event_id for r in records].count(event.event_id) == 2
        model = SQLiteReadModel(tmp_path / "rm.db")
        runner = ProjectionRunner(other, model, Keyring.from_dirs(tmp_path / "keys"))
        await runner.catch_up()
        assert model.applied_count() == 6
        model.close()
        await other.close()

    async def test_expected_is_refused_not_ignored(self, klog: KafkaLog, key: NodeKey) -> None:
        with pytest.raises(LogError, match="conditionally"):
            await klog.append([signed(key)], expected={})
        assert await read_all(klog) == []

    async def test_refused_idempotent_producer_is_reported(self, kafka_broker: KafkaBroker,
                                                           caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="infra.log.kafka"):
            log = await _connect(kafka_broker)
        assert log.idempotent is False
        facts = log.describe()
        assert facts["idempotent_producer"] is False and facts["atomic_batches"] is False
        assert any("idempotent" in r.getMessage() for r in caplog.records)
        await log.close()

    async def test_positions_merge_per_partition_and_survive_reconnect(self, klog: KafkaLog,
                                                                       kafka_broker: KafkaBroker) -> None:
        p0, p3 = f"{klog.topic}-0", f"{klog.topic}-3"
        await klog.commit_position("proj ü/x", {p0: 3, p3: 1})
        await klog.commit_position("proj ü/x", {p3: 5})
        assert await klog.committed_position("proj ü/x") == {p0: 3, p3: 5}
        other = await KafkaLog.connect(f"{kafka_broker.url}/{klog.topic}")
        assert await other.committed_position("proj ü/x") == {p0: 3, p3: 5}
        await other.close()
        with pytest.raises(LogError, match="not a partition"):
            await klog.commit_position("proj", {"elsewhere-0": 1})

    async def test_wait_for_append_wakes_on_another_writers_append(self, klog: KafkaLog, key: NodeKey,
                                                                  kafka_broker: KafkaBroker) -> None:
        started = time.monotonic()
        await klog.wait_for_append({}, timeout=0.3)
        assert time.monotonic() - started >= 0.25
        other = await KafkaLog.connect(f"{kafka_broker.url}/{klog.topic}")
        waiter = asyncio.create_task(klog.wait_for_append({}, timeout=10))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await other.append([signed(key)])
        await asyncio.wait_for(waiter, timeout=5)
        assert time.monotonic() - started < 1
        await other.close()

    async def test_concurrent_writers_ends_cover_every_acknowledged_append(self, klog: KafkaLog, key: NodeKey,
                                                                           kafka_broker: KafkaBroker) -> None:
        """Produces racing from two producers make tansu's watermark lag its records (seen in CI): the ends
        still cover every acknowledged append, and nothing is called lost."""
        other = await KafkaLog.connect(f"{kafka_broker.url}/{klog.topic}")

        async def writer(log: KafkaLog) -> list[int]:
            return [(await log.append([signed(key, namespace="race")]))[0].offset for _ in range(40)]

        offsets = [o for run in await asyncio.gather(*(writer(log) for log in (klog, other) for _ in range(4)))
                   for o in run]
        partition = f"{klog.topic}-{partition_for('race', klog.partitions)}"
        for log in (klog, other):
            assert (await log.end_offsets())[partition] >= max(offsets)
        assert sorted(offsets) == list(range(1, len(offsets) + 1))
        await other.close()

    async def test_a_watermark_behind_stored_records_is_not_a_loss(self, klog: KafkaLog, key: NodeKey,
                                                                   kafka_broker: KafkaBroker,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        """The broker answers a watermark one below what it stores, as tansu does after racing produces: the
        writer's ends keep its acknowledged record; another reader finds it by looking past the watermark."""
        other = await KafkaLog.connect(f"{kafka_broker.url}/{klog.topic}")
        for log in (klog, other):
            real = log._reader.end_offsets

            async def lagging(tps: list[TopicPartition], real: object = real) -> dict[TopicPartition, int]:
                return {tp: max(0, off - 1) for tp, off in (await real(tps)).items()}  # type: ignore[operator]

            monkeypatch.setattr(log._reader, "end_offsets", lagging)
        monkeypatch.setattr(KafkaLog, "TAIL_PROBE_AFTER", 0.2)
        positions = await klog.append([signed(key, namespace="lag") for _ in range(3)])
        partition = positions[0].partition
        assert (await klog.end_offsets())[partition] == 3  # not 2, and no LogCorruptError
        assert await other.read(after={partition: 2}) == []  # the lagging watermark hides record 3
        started = time.monotonic()
        await other.wait_for_append({partition: 2}, timeout=5)
        assert time.monotonic() - started < 3
        assert [r.offset for r in await other.read(after={partition: 2})] == [3]
        assert (await other.end_offsets())[partition] == 3
        await other.close()

    async def test_every_call_after_close_raises_closed(self, klog: KafkaLog, key: NodeKey) -> None:
        await klog.close()
        for call in (klog.append([signed(key)]), klog.read(), klog.committed_position("x"),
                     klog.wait_for_append({}, timeout=0.1)):
            with pytest.raises(LogClosedError):
                await call

    async def test_factory_opens_kafka_with_stream_as_default_topic(self, kafka_broker: KafkaBroker) -> None:
        topic = _topic()
        log = await open_log(LogConfig(url=kafka_broker.url, stream=topic))
        try:
            assert isinstance(log, KafkaLog) and log.topic == topic
            assert log.url == f"{kafka_broker.url}/{topic}"
            assert set(await log.end_offsets()) == {f"{topic}-{n}" for n in range(8)}
        finally:
            await log.close()

    async def test_existing_topic_keeps_its_partition_count(self, kafka_broker: KafkaBroker) -> None:
        topic = _topic()
        first = await KafkaLog.connect(f"{kafka_broker.url}/{topic}?partitions=3")
        second = await KafkaLog.connect(f"{kafka_broker.url}/{topic}?partitions=12")
        assert first.partitions == second.partitions == 3
        await first.close()
        await second.close()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own, to kill and restart."""
    with KafkaBroker(log_path=tmp_path / "tansu.log") as broker:
        yield broker


class TestKafkaLogFaults:
    async def test_connect_to_nothing_is_unavailable(self, tmp_path: Path) -> None:
        broker = KafkaBroker(log_path=tmp_path / "tansu.log")
        started = time.monotonic()
        with pytest.raises(LogUnavailableError):
            await KafkaLog.connect(f"{broker.url}/t", timeout=1.0)
        assert time.monotonic() - started < 10

    async def test_append_during_outage_fails_fast(self, own_broker: KafkaBroker, key: NodeKey) -> None:
        log = await KafkaLog.connect(f"{own_broker.url}/t", timeout=1.0)
        await log.append([signed(key)])
        own_broker.kill()
        started = time.monotonic()
        with pytest.raises(LogUnavailableError):
            await log.append([signed(key)])
        with pytest.raises(LogUnavailableError):
            await log.end_offsets()
        assert time.monotonic() - started < 10
        await log.close()

    async def test_broker_that_lost_acknowledged_records_is_noticed(self, own_broker: KafkaBroker,
                                                                   key: NodeKey) -> None:
        """tansu keeps data in memory: after a restart the log must not quietly reuse offsets."""
        topic = _topic()
        log = await KafkaLog.connect(f"{own_broker.url}/{topic}", timeout=2.0)
        await log.append([signed(key) for _ in range(3)])
        own_broker.kill()
        await asyncio.to_thread(own_broker.restart)
        recreated = await KafkaLog.connect(f"{own_broker.url}/{topic}", timeout=2.0)  # an empty topic again
        await recreated.close()
        deadline = time.monotonic() + 15
        while True:
            try:
                await log.end_offsets()
            except LogCorruptError as exc:
                assert "gone" in str(exc)
                break
            except LogUnavailableError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            else:
                pytest.fail("a log that lost acknowledged records answered as if nothing happened")
        await log.close()


class TestKafkaUrls:
    def test_several_brokers_topic_and_options(self) -> None:
        target = parse_kafka_url("kafka://h1:1,h2:2/mytopic?partitions=3&replication=2&dedup_window=5")
        assert target.bootstrap == ["h1:1", "h2:2"]
        assert (target.topic, target.partitions, target.replication, target.dedup_window) == ("mytopic", 3, 2, 5)

    def test_default_topic_comes_from_the_stream_setting(self) -> None:
        assert parse_kafka_url("kafka://h:9092", topic="events").topic == "events"

    @pytest.mark.parametrize("url", ["kafka://h:1/bad topic", "kafka://h:1/t?partitions=0", "kafka://h:1/t?x=1",
                                     "kafka://u:p@h:1/t", "kafka:///t", "kafka://h:1/t?partitions=two"])
    def test_bad_urls_are_refused(self, url: str) -> None:
        with pytest.raises(LogError):
            parse_kafka_url(url)

    def test_partitioner_matches_kafkas_default(self) -> None:
        """A Kafka-native producer keyed by namespace (default partitioner) picks the same partition."""
        default = DefaultPartitioner()
        for ns in ("global", "team/a", "ü", *(f"ns{i}" for i in range(50))):
            assert partition_for(ns, 8) == default(ns.encode(), list(range(8)), list(range(8)))
