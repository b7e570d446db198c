"""The Kafka log (aiokafka): one topic, partitioned by namespace; for shops that already run Kafka.

What it guarantees, and what it does not:

- **Partitions.** The topic has N partitions (``?partitions=N``, default 8, fixed at creation: adding partitions
  later would move namespaces). An event goes to ``murmur2(namespace) % N`` with the namespace as the record
  key, the same choice as Kafka's default partitioner, so each namespace keeps its order and Kafka-native
  producers keyed by namespace agree with us. Clock entries are named ``<topic>-<n>``.
- **Offsets.** Kafka offsets start at 0; the log contract's start at 1 with exclusive bounds. Ours are
  ``kafka offset + 1`` everywhere, which makes a Kafka consumer group's committed offset ("next to read")
  equal to our "last processed" offset, and a partition's high watermark equal to our end offset.
- **Reads across partitions** merge the partitions deterministically: repeatedly the head record with the
  smallest ``(envelope ts, partition)``. Any page size gives the same sequence from the same clock, so a replay
  is reproducible, and causally ordered as far as the writers' clocks are (a namespace move, a global forget).
- **Appends** are acknowledged with ``acks=all`` (by every in-sync replica; with replication factor 1, as on
  tansu, that is the one broker). The idempotent producer is used when the broker grants it; when it refuses
  (tansu does) we say so in the log and in :meth:`KafkaLog.describe`, and a producer retry may then store a copy.
- **No expected offsets** (``SUPPORTS_EXPECTED = False``): Kafka cannot append conditionally; ``expected``
  raises :class:`LogError` rather than being ignored. **Batches are not atomic** (``ATOMIC_BATCHES = False``):
  no transactions (tansu refuses them), so a failed batch may be partly stored; re-sending it is safe (below).
- **Dedup is a window, not forever** (``DEDUP_FOREVER = False``). Kafka stores every copy it is sent. Before
  appending, this log indexes the last :attr:`KafkaLog.DEDUP_WINDOW` records of each partition it writes to
  (an event's partition follows from its body, so a copy can only be there), and an event id found there, or
  appended by this process meanwhile, is not sent again: its stored position is returned. Not caught: two
  processes sending the same id at the same moment, a copy older than the window, a producer retry without
  idempotence. Those copies reach readers, and projectors apply an event id once (the read model's
  ``applied_events``), which is the guarantee that holds forever.
- **Consumer positions** are Kafka consumer-group commits (group ``<topic>.<consumer>``), as durable as the
  broker's ``__consumer_offsets`` (tansu: memory only, lost on restart).
- **A broker that lost acknowledged records** (a memory-only broker restarted) is noticed: an end offset below
  one this instance saw raises :class:`LogCorruptError` instead of silently reusing offsets, once a fetch shows
  the record is gone too.
- **A watermark that lags its records.** tansu 0.6 can answer a high watermark below records it has stored and
  acknowledged (concurrent produces race on its cached watermark) until the next produce to that partition. So
  an end offset counts what is known to be stored (our acknowledged appends, and what a fetch returned), and a
  waiting reader whose partitions stay quiet for :attr:`KafkaLog.TAIL_PROBE_AFTER` fetches once past the
  watermark: another writer's last records are applied within about a second rather than at the next write.

Every aiokafka error is translated in :meth:`KafkaLog._mapped_errors`, the one boundary: connection errors,
timeouts and errors aiokafka marks retriable become :class:`LogUnavailableError`; anything else :class:`LogError`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import heapq
import itertools
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import aiokafka.errors as kerr
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2
from aiokafka.structs import OffsetAndMetadata

from infra.log.base import Clock, EventLog, LogPosition, LogRecord, first_copies, unreadable_record
from infra.log.errors import (
    LogClosedError,
    LogCorruptError,
    LogError,
    LogUnavailableError,
)
from schemas import SchemaError, SignedEvent, parse_ts

__all__ = ["Header", "KafkaLog", "KafkaTarget", "parse_kafka_url", "partition_for"]

logger = logging.getLogger(__name__)

DEFAULT_TOPIC = "ai-memory"
_TOPIC_OK = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    kerr.KafkaConnectionError, kerr.KafkaTimeoutError, kerr.NoBrokersAvailable, kerr.NodeNotReadyError,
    kerr.KafkaUnavailableError, kerr.BrokerNotAvailableError, kerr.RequestTimedOutError, TimeoutError, OSError)


class Header:
    """Record headers this backend writes (values are UTF-8 text, so any Kafka tool can show them)."""

    EVENT_ID = "Ai-Memory-Event-Id"
    SIGNATURE = "Ai-Memory-Signature"  # base64 of the 64-byte Ed25519 signature over the record value
    TYPE = "Ai-Memory-Type"


@dataclass(frozen=True)
class KafkaTarget:
    bootstrap: list[str]
    topic: str
    partitions: int
    replication: int
    dedup_window: int
    batch_bytes: int


def parse_kafka_url(url: str, *, topic: str = DEFAULT_TOPIC, partitions: int = 8, replication: int = 1,
                    dedup_window: int = 10_000, batch_bytes: int = 1) -> KafkaTarget:
    """``kafka://h1:p1[,h2:p2][/topic][?partitions=&replication=&dedup_window=&batch_bytes=]`` → where, what.

    ``batch_bytes`` is the producer's batch size. The default, 1, sends one record per batch: tansu 0.6 reports
    the high watermark of a multi-record batch as its first offset + 1, which would hide records from
    ``end_offsets``. On a real Kafka, ``batch_bytes=16384`` (aiokafka's default) is safe and faster.
    """
    split = urlsplit(url)
    if split.scheme != "kafka":
        msg = f"not a kafka:// URL: {url!r}"
        raise LogError(msg)
    if "@" in split.netloc:
        raise LogError("kafka:// URLs with credentials are not supported (no SASL configured)")
    bootstrap = [h.strip() for h in split.netloc.split(",") if h.strip()]
    if not bootstrap:
        raise LogError("kafka:// URL names no broker")
    topic = split.path.strip("/") or topic
    if not _TOPIC_OK.match(topic):
        msg = f"invalid Kafka topic name {topic!r} (letters, digits, '.', '_', '-'; at most 249)"
        raise LogError(msg)
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    try:
        partitions = int(query.pop("partitions", partitions))
        replication = int(query.pop("replication", replication))
        dedup_window = int(query.pop("dedup_window", dedup_window))
        batch_bytes = int(query.pop("batch_bytes", batch_bytes))
    except ValueError:
        raise LogError(f"kafka:// URL options must be integers: {split.query!r}") from None
    if query:
        msg = f"unknown kafka:// URL options: {', '.join(sorted(query))}"
        raise LogError(msg)
    if partitions < 1 or replication < 1 or batch_bytes < 1 or dedup_window < 0:
        raise LogError("partitions, replication and batch_bytes must be at least 1, dedup_window at least 0")
    return KafkaTarget(bootstrap, topic, partitions, replication, dedup_window, batch_bytes)


def partition_for(namespace: str, partitions: int) -> int:
    """The partition of a namespace: Kafka's default partitioner (murmur2 of the key), so tools agree."""
    return (int(murmur2(namespace.encode())) & 0x7FFFFFFF) % partitions


def _headers(event: SignedEvent) -> list[tuple[str, bytes]]:
    return [(Header.EVENT_ID, event.event_id.encode()),
            (Header.SIGNATURE, base64.b64encode(event.signature)),
            (Header.TYPE, event.envelope.type.encode())]


def _timestamp_ms(event: SignedEvent) -> int | None:
    """The event's own time as the record timestamp, so Kafka tools show when it happened."""
    try:
        return int(parse_ts(event.envelope.ts).timestamp() * 1000)
    except ValueError:
        return None  # an unusual ts is still a valid event: the broker stamps it instead


class _RecentIds:
    """For each partition, the ids of its recent records (a bounded window) and how far it is indexed."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._ids: dict[int, OrderedDict[str, int]] = {}
        self.upto: dict[int, int] = {}  # every record with an offset <= upto[p] has been indexed

    def get(self, partition: int, event_id: str) -> int | None:
        ids = self._ids.get(partition)
        return None if ids is None else ids.get(event_id)

    def add(self, partition: int, event_id: str, offset: int) -> None:
        ids = self._ids.setdefault(partition, OrderedDict())
        ids.setdefault(event_id, offset)
        while len(ids) > self._window:
            ids.popitem(last=False)
        if offset == self.upto.get(partition, 0) + 1:
            self.upto[partition] = offset


class KafkaLog(EventLog):
    ATOMIC_BATCHES = False
    SUPPORTS_EXPECTED = False
    DEDUP_FOREVER = False
    #: How long one call waits for the broker before it raises :class:`LogUnavailableError`.
    TIMEOUT: ClassVar[float] = 5.0
    #: How often ``wait_for_append`` looks at the end offsets for other processes' appends.
    POLL_INTERVAL: ClassVar[float] = 0.05
    #: How long a record this instance knows was stored may stay unreadable before we call it lost: a broker
    #: under load may answer a fetch late; true loss (a memory-only broker restarted) stays lost, so waiting
    #: longer only delays that report.
    TRUNCATION_GRACE: ClassVar[float] = 5.0
    #: How long ``wait_for_append`` sees a partition's end unchanged before it fetches once past it (a watermark
    #: that lags its records: the module notes).
    TAIL_PROBE_AFTER: ClassVar[float] = 1.0
    #: How long one look past the watermark waits for the broker (the reader's ``fetch_max_wait_ms`` is 100).
    PROBE_WAIT: ClassVar[float] = 0.15

    def __init__(self, target: KafkaTarget, producer: AIOKafkaProducer, reader: AIOKafkaConsumer, *,
                 partitions: int, idempotent: bool, timeout: float) -> None:
        self._target = target
        self._topic = target.topic
        self._producer = producer
        self._reader = reader
        self._partitions = partitions
        self._idempotent = idempotent
        self._timeout = timeout
        self._tps = [TopicPartition(self._topic, p) for p in range(partitions)]
        self._closed = False
        self._read_lock = asyncio.Lock()  # one reader consumer: seek + fetch must not interleave
        self._append_lock = asyncio.Lock()
        self._recent = _RecentIds(target.dedup_window)
        self._pending: dict[str, asyncio.Future[LogPosition]] = {}
        self._ahead: dict[int, tuple[int, list[LogRecord]]] = {}  # partition → (from offset, records fetched)
        self._seen_end: dict[int, int] = {}  # partition → our highest offset known stored (acked, fetched, marked)
        self._held: dict[int, tuple[int, int]] = {}  # partition → (watermark, end): a fetch found end stored above it
        self._quiet: dict[int, tuple[int, float]] = {}  # partition → (end, when last looked past it)
        self._groups: dict[str, AIOKafkaConsumer] = {}
        self._appended = asyncio.Event()

    # ---- connecting -------------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, *, topic: str = DEFAULT_TOPIC, replication: int = 1,
                      timeout: float | None = None, idempotent: bool = True) -> KafkaLog:
        """Connect to ``url`` and create the topic if it is absent.

        An existing topic keeps its partition count and replication factor (:meth:`describe` reports them).

        Raises:
            LogUnavailableError: no broker answered within ``timeout``.
            LogError: the URL is invalid, or the topic cannot be created.
        """
        target = parse_kafka_url(url, topic=topic, replication=replication)
        wait = timeout or cls.TIMEOUT
        partitions, replication = await cls.ensure_topic(target, wait)
        target = dataclasses.replace(target, replication=replication)
        producer, granted = await cls._start_producer(target, wait, idempotent)
        try:
            reader = AIOKafkaConsumer(bootstrap_servers=target.bootstrap, client_id="ai-memory-reader",
                                      group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                      request_timeout_ms=int(wait * 1000), fetch_max_wait_ms=100)
            await _started(reader, target, wait)
        except BaseException:
            await producer.stop()
            raise
        log = cls(target, producer, reader, partitions=partitions, idempotent=granted, timeout=wait)
        reader.assign(log._tps)
        reader.pause(*log._tps)  # fetch only when asked: read() resumes the partitions it needs
        return log

    @staticmethod
    async def ensure_topic(target: KafkaTarget, timeout: float) -> tuple[int, int]:
        """Create the topic, or adopt an existing one; its partition count and replication factor."""
        admin = AIOKafkaAdminClient(bootstrap_servers=target.bootstrap, client_id="ai-memory-admin",
                                    request_timeout_ms=int(timeout * 1000))
        with _translated(target.topic):
            try:
                await asyncio.wait_for(admin.start(), timeout)
                new = NewTopic(target.topic, num_partitions=target.partitions,
                               replication_factor=target.replication)
                response = await asyncio.wait_for(admin.create_topics([new]), timeout)
                for _topic, code, message in response.topic_errors:
                    if code not in (0, kerr.TopicAlreadyExistsError.errno):
                        raise kerr.for_code(code)(message)
                (described,) = await asyncio.wait_for(admin.describe_topics([target.topic]), timeout)
            finally:
                await admin.close()
        partitions = described["partitions"]
        if len(partitions) != target.partitions:
            logger.info("kafka topic %s exists with %d partitions (not %d): using %d", target.topic,
                        len(partitions), target.partitions, len(partitions))
        return len(partitions), len(partitions[0]["replicas"]) if partitions else target.replication

    @staticmethod
    async def _start_producer(target: KafkaTarget, timeout: float,
                              idempotent: bool) -> tuple[AIOKafkaProducer, bool]:
        """An ``acks=all`` producer, idempotent if the broker grants it; whether it did."""
        options: dict[str, Any] = {"bootstrap_servers": target.bootstrap, "client_id": "ai-memory",
                                   "acks": "all", "request_timeout_ms": int(timeout * 1000), "linger_ms": 0,
                                   "max_batch_size": target.batch_bytes}
        if idempotent:
            producer = AIOKafkaProducer(enable_idempotence=True, **options)
            try:
                with _quiet_refusal():
                    await _started(producer, target, timeout)
                return producer, True
            except LogUnavailableError:
                raise
            except LogError as exc:
                await producer.stop()
                logger.warning("kafka %s refuses the idempotent producer (%s): appending with acks=all only; a "
                               "producer retry may store a copy, which projectors skip by event id",
                               ",".join(target.bootstrap), exc)
        producer = AIOKafkaProducer(**options)
        await _started(producer, target, timeout)
        return producer, False

    # ---- the one error boundary -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """The one place aiokafka errors become log errors."""
        self._check_open()
        try:
            yield
        except LogError:
            raise
        except (kerr.KafkaError, kerr.ConsumerStoppedError, TimeoutError, OSError) as exc:
            if self._closed:
                raise LogClosedError(f"Kafka log {self._topic!r} is closed") from exc
            raise _translate(exc, self._topic) from exc

    def _check_open(self) -> None:
        if self._closed:
            msg = f"Kafka log {self._topic!r} is closed"
            raise LogClosedError(msg)

    # ---- names ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"kafka://{','.join(self._target.bootstrap)}/{self._topic}"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def partitions(self) -> int:
        return self._partitions

    @property
    def partitioned(self) -> bool:
        return self._partitions > 1

    @property
    def target(self) -> KafkaTarget:
        return self._target

    @property
    def producer(self) -> AIOKafkaProducer:
        """The log's producer, shared with the confirmation channel."""
        return self._producer

    @property
    def idempotent(self) -> bool:
        """Whether the broker granted the idempotent producer (tansu does not)."""
        return self._idempotent

    def partition_name(self, partition: int) -> str:
        return f"{self._topic}-{partition}"

    def _partition_number(self, name: str) -> int | None:
        prefix, _, number = name.rpartition("-")
        if prefix != self._topic or not number.isdigit() or int(number) >= self._partitions:
            return None
        return int(number)

    def _starts(self, after: Clock | None) -> dict[int, int]:
        """``after`` as {partition number → our offset}; names of other logs are ignored."""
        out = dict.fromkeys(range(self._partitions), 0)
        for name, offset in (after or {}).items():
            number = self._partition_number(name)
            if number is not None:
                out[number] = offset
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "topic": self._topic, "partitions": self._partitions,
                "replication": self._target.replication, "idempotent_producer": self._idempotent,
                "dedup_window": self._target.dedup_window, "batch_bytes": self._target.batch_bytes}

    # ---- append -----------------------------------------------------------------------------------------

    async def append(self, events: Sequence[SignedEvent], *, expected: Clock | None = None,
                     new: bool = False) -> list[LogPosition]:
        self._check_open()
        if expected is not None:
            raise LogError("the Kafka log cannot append conditionally (SUPPORTS_EXPECTED is False)")
        if not events:
            return []
        firsts, index = first_copies(events)
        if not new:  # copies other writers stored: a round trip, so outside the lock
            await self._index_tails({self.partition_of(e) for e in firsts})
        async with self._append_lock:  # local work: this process's copies, and the order handed to the producer
            sends = [await self._position_or_send(e) for e in firsts]
        positions = await _acknowledged(sends)
        self._appended.set()
        self._appended = asyncio.Event()
        return [positions[i] for i in index]

    def partition_of(self, event: SignedEvent) -> int:
        return partition_for(event.envelope.namespace, self._partitions)

    async def _position_or_send(self, event: SignedEvent) -> asyncio.Future[LogPosition]:
        """The future of the event's position: already known, in flight, or sent now."""
        partition = self.partition_of(event)
        known = self._recent.get(partition, event.event_id)
        if known is not None:
            done: asyncio.Future[LogPosition] = asyncio.get_running_loop().create_future()
            done.set_result(LogPosition(self.partition_name(partition), known))
            return done
        if event.event_id in self._pending:
            return self._pending[event.event_id]
        return await self._send(event, partition)

    async def _send(self, event: SignedEvent, partition: int) -> asyncio.Future[LogPosition]:
        """Hand the record to the producer (ordered per partition) and return the future of its position."""
        with self._mapped_errors():
            sent = await asyncio.wait_for(self._producer.send(
                self._topic, value=event.body, key=event.envelope.namespace.encode(), partition=partition,
                headers=_headers(event), timestamp_ms=_timestamp_ms(event)), self._timeout)
        position = asyncio.ensure_future(self._position_of(sent, event))
        self._pending[event.event_id] = position
        return position

    async def _position_of(self, sent: asyncio.Future[Any], event: SignedEvent) -> LogPosition:
        try:
            with self._mapped_errors():
                metadata = await asyncio.wait_for(sent, self._timeout)
        finally:
            self._pending.pop(event.event_id, None)
        offset = int(metadata.offset) + 1
        self._recent.add(metadata.partition, event.event_id, offset)
        self._seen_end[metadata.partition] = max(self._seen_end.get(metadata.partition, 0), offset)
        return LogPosition(self.partition_name(metadata.partition), offset)

    async def _index_tails(self, partitions: set[int]) -> None:
        """Index the ids of records other writers appended to ``partitions`` since we last looked."""
        if self._target.dedup_window == 0:
            return
        ends = await self._kafka_ends()
        wanted = {}
        for p in partitions:
            start = max(self._recent.upto.get(p, 0), ends[p] - self._target.dedup_window)
            if ends[p] > start:
                wanted[p] = (start, ends[p] - start)
        for p, records in (await self._fetch(wanted, ends)).items():
            for record in records:
                self._recent.add(p, record.event.event_id, record.offset)
            self._recent.upto[p] = max(self._recent.upto.get(p, 0), ends[p])

    # ---- read -------------------------------------------------------------------------------------------

    async def read(self, *, after: Clock | None = None, limit: int = 1000) -> list[LogRecord]:
        self._check_open()
        if limit <= 0:
            return []
        starts = self._starts(after)
        ends = await self._kafka_ends()
        runs: dict[int, list[LogRecord]] = {}
        wanted: dict[int, tuple[int, int]] = {}
        for p, start in starts.items():
            run = self._cached(p, start)
            runs[p] = run
            last = run[-1].offset if run else start
            if len(run) < limit and ends[p] > last:
                wanted[p] = (last, min(limit - len(run), ends[p] - last))
        for p, more in (await self._fetch(wanted, ends)).items():
            runs[p] = runs[p] + more
        return self._merge(runs, starts, limit)

    def _cached(self, partition: int, start: int) -> list[LogRecord]:
        """Records after ``start`` left over from an earlier fetch (valid only if they continue ``start``)."""
        first, records = self._ahead.pop(partition, (0, []))
        if first > start + 1:
            return []
        return [r for r in records if r.offset > start]

    def _merge(self, runs: dict[int, list[LogRecord]], starts: dict[int, int], limit: int) -> list[LogRecord]:
        """The first ``limit`` records of the deterministic merge; the rest is kept for the next read."""
        keyed = [[(r.event.envelope.ts, p, r) for r in run] for p, run in runs.items()]
        merged = list(itertools.islice(heapq.merge(*keyed, key=lambda item: item[:2]), limit))
        taken: dict[int, int] = {}
        for _ts, p, record in merged:
            taken[p] = record.offset
        for p, run in runs.items():
            last = taken.get(p, starts[p])
            rest = [r for r in run if r.offset > last]
            if rest:
                self._ahead[p] = (last + 1, rest)
        return [record for _ts, _p, record in merged]

    async def _fetch(self, wanted: dict[int, tuple[int, int]], ends: dict[int, int]) -> dict[int, list[LogRecord]]:
        """For each partition, the records after our offset ``start`` (``wanted[p] = (start, count)``), in order.

        A partition is done when it has ``count`` records or reached its end (``ends``, our offsets); it may hold
        more than ``count`` (what one fetch brought), which ``read`` keeps for the next call.
        """
        out: dict[int, list[LogRecord]] = {p: [] for p in wanted}
        if not wanted:
            return out
        loop = asyncio.get_running_loop()
        async with self._positioned({p: start for p, (start, _count) in wanted.items()}) as tps:
            deadline = loop.time() + self._timeout
            while need := [p for p in wanted if not await self._fetched(p, out[p], wanted[p], ends[p])]:
                if loop.time() > deadline:
                    raise LogUnavailableError(f"Kafka {self._topic!r}: fetch timed out")
                # Keep all: records past ``count`` are the next reads' (``_ahead``), not waste.
                await self._take(out, [tps[p] for p in need], timeout=0.2)
        return out

    @contextlib.asynccontextmanager
    async def _positioned(self, starts: dict[int, int]) -> AsyncIterator[dict[int, TopicPartition]]:
        """The reader, alone, fetching each partition ``p`` from our offset ``starts[p]`` (the kafka offset after
        it) until the block ends; yields the partitions' topic-partitions."""
        tps = {p: self._tps[p] for p in starts}
        async with self._read_lock:
            with self._mapped_errors():
                for p, start in starts.items():
                    self._reader.seek(tps[p], start)
                self._reader.resume(*tps.values())
                try:
                    yield tps
                finally:
                    self._reader.pause(*tps.values())

    async def _take(self, out: dict[int, list[LogRecord]], tps: list[TopicPartition], *, timeout: float) -> None:
        """Add to ``out`` what one wait of up to ``timeout`` seconds brings from ``tps``."""
        batch = await self._reader.getmany(*tps, timeout_ms=max(1, int(timeout * 1000)))
        for tp, messages in batch.items():
            out[tp.partition].extend(self._record(m) for m in messages)

    async def _fetched(self, p: int, got: list[LogRecord], want: tuple[int, int], end: int) -> bool:
        """Whether partition ``p`` has what was asked: ``count`` records, or everything up to ``end``."""
        start, count = want
        if len(got) >= count or (got[-1].offset if got else start) >= end:
            return True
        # Offsets may have gaps (transaction markers, compaction): the fetch position says we are past them.
        return int(await self._reader.position(self._tps[p])) >= end

    def _record(self, message: Any) -> LogRecord:
        partition = self.partition_name(message.partition)
        offset = int(message.offset) + 1
        headers = {k: v for k, v in (message.headers or ())}
        body = bytes(message.value or b"")
        try:
            signature = base64.b64decode(headers[Header.SIGNATURE], validate=True)
            event = SignedEvent.from_parts(body, signature)
        except KeyError:
            return unreadable_record(partition, offset, body, b"", "no signature header")
        except (binascii.Error, SchemaError) as exc:
            return unreadable_record(partition, offset, body, b"", str(exc))
        return LogRecord(partition, offset, event)

    # ---- positions and waiting --------------------------------------------------------------------------

    async def _kafka_ends(self) -> dict[int, int]:
        """Each partition's end: its high watermark, or the last record this instance knows is stored there.

        A watermark below a record this instance saw acknowledged or fetched is checked with a fetch of that
        record. Stored: the watermark lags (tansu), and the record counts. Gone, still after
        :attr:`TRUNCATION_GRACE` seconds: raises :class:`LogCorruptError`, the broker lost acknowledged records.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.TRUNCATION_GRACE
        while True:
            with self._mapped_errors():
                answer = await asyncio.wait_for(self._reader.end_offsets(self._tps), self._timeout)
            marks = {tp.partition: int(off) for tp, off in answer.items()}
            lagging = {p: self._seen_end[p] for p, mark in marks.items() if mark < self._seen_end.get(p, 0)}
            unsure = {p: end for p, end in lagging.items() if self._held.get(p) != (marks[p], end)}
            if unsure:
                found = await self._probe({p: end - 1 for p, end in unsure.items()}, timeout=min(1.0, self._timeout))
                for p, end in list(unsure.items()):
                    if any(r.offset == end for r in found[p]):
                        self._held[p] = (marks[p], end)
                        del unsure[p]
            if not unsure:
                break
            if loop.time() > deadline:
                p = next(iter(unsure))
                msg = (f"the broker now ends at {marks[p]}: acknowledged records are gone (a memory-only broker "
                       "restarted?); rebuild from a copy of the log")
                raise LogCorruptError(self.partition_name(p), self._seen_end[p], msg)
            await asyncio.sleep(0.02)
        ends = {p: max(mark, self._seen_end.get(p, 0)) for p, mark in marks.items()}
        self._seen_end.update(ends)
        return ends

    async def _probe(self, after: dict[int, int], *, timeout: float) -> dict[int, list[LogRecord]]:
        """What fetches from our offset ``after[p]`` bring within ``timeout``: nothing there is an answer here,
        not an error (unlike :meth:`_fetch`). A broker that lost the offset resets the reader to its earliest
        record, so callers check the offsets they get."""
        out: dict[int, list[LogRecord]] = {p: [] for p in after}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._positioned(after) as tps:
            while (need := [tps[p] for p in after if not out[p]]) and (left := deadline - loop.time()) > 0:
                await self._take(out, need, timeout=left)
        return out

    async def _look_past(self, ends: dict[int, int]) -> bool:
        """Fetch once past the end of each partition quiet for :attr:`TAIL_PROBE_AFTER`; whether it found records
        (another writer's, under a lagging watermark), which then count in the ends."""
        now = asyncio.get_running_loop().time()
        quiet = []
        for p, end in ends.items():
            seen, since = self._quiet.get(p, (-1, now))
            if seen != end:
                self._quiet[p] = (end, now)
            elif now - since >= self.TAIL_PROBE_AFTER:
                quiet.append(p)
                self._quiet[p] = (end, now)
        if not quiet:
            return False
        found = await self._probe({p: ends[p] for p in quiet}, timeout=self.PROBE_WAIT)
        grown = False
        for p, records in found.items():
            past = [r.offset for r in records if r.offset > ends[p]]
            if past:
                logger.debug("kafka %s: records past the watermark up to %d", self.partition_name(p), max(past))
                self._seen_end[p] = max(self._seen_end.get(p, 0), max(past))
                grown = True
        return grown

    async def end_offsets(self) -> Clock:
        return {self.partition_name(p): end for p, end in (await self._kafka_ends()).items()}

    async def wait_for_append(self, after: Clock, *, timeout: float) -> None:
        """Return when a partition holds records after ``after``: at once for this process's appends, else
        within :attr:`POLL_INTERVAL` of another writer's, or after ``timeout``."""
        starts = self._starts(after)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ends = await self._kafka_ends()
            remaining = deadline - loop.time()
            if any(ends[p] > starts[p] for p in ends) or await self._look_past(ends) or remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appended.wait(), min(self.POLL_INTERVAL, remaining))

    async def commit_position(self, consumer: str, clock: Clock) -> None:
        """Commit ``clock`` as consumer group ``<topic>.<consumer>``; other partitions keep their commits.

        Raises:
            LogError: ``clock`` names a partition that is not one of this topic's.
        """
        offsets = {}
        for name, offset in clock.items():
            number = self._partition_number(name)
            if number is None:
                msg = f"{name!r} is not a partition of Kafka topic {self._topic!r}"
                raise LogError(msg)
            offsets[self._tps[number]] = OffsetAndMetadata(offset, "")
        group = await self._group(consumer)
        with self._mapped_errors():
            await asyncio.wait_for(group.commit(offsets), self._timeout)

    async def committed_position(self, consumer: str) -> Clock:
        group = await self._group(consumer)
        out: Clock = {}
        with self._mapped_errors():
            for tp in self._tps:
                offset = await asyncio.wait_for(group.committed(tp), self._timeout)
                if offset is not None:
                    out[self.partition_name(tp.partition)] = int(offset)
        return out

    async def _group(self, consumer: str) -> AIOKafkaConsumer:
        """A consumer in group ``<topic>.<consumer>`` that never fetches: it only commits and reads commits."""
        self._check_open()
        if consumer not in self._groups:
            group = AIOKafkaConsumer(bootstrap_servers=self._target.bootstrap, group_id=f"{self._topic}.{consumer}",
                                     client_id="ai-memory-positions", enable_auto_commit=False,
                                     request_timeout_ms=int(self._timeout * 1000))
            await _started(group, self._target, self._timeout)
            group.assign(self._tps)
            group.pause(*self._tps)
            self._groups[consumer] = group
        return self._groups[consumer]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        clients: list[Any] = [self._producer, self._reader, *self._groups.values()]
        for client in clients:
            with contextlib.suppress(kerr.KafkaError, TimeoutError, OSError):
                await asyncio.wait_for(client.stop(), self._timeout)


async def _acknowledged(sends: Sequence[asyncio.Future[LogPosition]]) -> list[LogPosition]:
    """Every position, once all are acknowledged; else the first failure, after all have settled (so the
    acknowledged ones are indexed and a retry of the batch does not store them twice)."""
    results = await asyncio.gather(*sends, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, LogPosition)]


def _translate(exc: BaseException, topic: str) -> LogError:
    """The log error for an aiokafka (or socket) error: unavailable when trying again may help."""
    if isinstance(exc, _UNAVAILABLE) or getattr(exc, "retriable", False):
        return LogUnavailableError(f"Kafka {topic!r} unavailable: {type(exc).__name__} {exc}")
    if isinstance(exc, kerr.ConsumerStoppedError | kerr.ProducerClosed):
        return LogUnavailableError(f"Kafka {topic!r}: client stopped: {exc}")
    return LogError(f"Kafka {topic!r}: {type(exc).__name__} {exc}")


@contextlib.contextmanager
def _translated(topic: str) -> Iterator[None]:
    """The boundary for the moments before a :class:`KafkaLog` exists (connecting, creating the topic)."""
    try:
        yield
    except LogError:
        raise
    except (kerr.KafkaError, TimeoutError, OSError) as exc:
        raise _translate(exc, topic) from exc


async def _started(client: Any, target: KafkaTarget, timeout: float) -> None:
    """``client.start()`` within ``timeout``; stopped again if it fails (aiokafka leaves sockets otherwise)."""
    try:
        with _translated(target.topic):
            await asyncio.wait_for(client.start(), timeout)
    except BaseException:
        with contextlib.suppress(kerr.KafkaError, TimeoutError, OSError):
            await client.stop()
        raise


class _DropProducerIdErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "InitProducerIdRequest" not in record.getMessage()


@contextlib.contextmanager
def _quiet_refusal() -> Iterator[None]:
    """While probing for idempotence, drop aiokafka's own ERROR line about it: we report the refusal once."""
    sender = logging.getLogger("aiokafka.producer.sender")
    quiet = _DropProducerIdErrors()
    sender.addFilter(quiet)
    try:
        yield
    finally:
        sender.removeFilter(quiet)


