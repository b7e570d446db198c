"""The one log contract every backend implements (embedded SQLite, NATS JetStream, Kafka).

Positions: a log has one or more *partitions* (a stream, a topic-partition); offsets within a partition are
integers that strictly increase, starting at 1. A :data:`Clock` maps partition → offset and is the vector clock
of whoever has read up to it. Every bound is exclusive: ``after={p: 5}`` means "offsets greater than 5".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from schemas import Envelope, SignedEvent

__all__ = ["UNREADABLE_TYPE", "Clock", "EventLog", "LogPosition", "LogRecord", "clock_covers", "first_copies",
           "merge_clocks", "unreadable_record"]

#: The type of the stand-in envelope of a record whose body is not an event (see :func:`unreadable_record`).
UNREADABLE_TYPE = "log.unreadable"

Clock = dict[str, int]


@dataclass(frozen=True, slots=True)
class LogPosition:
    partition: str
    offset: int


@dataclass(frozen=True, slots=True)
class LogRecord:
    partition: str
    offset: int
    event: SignedEvent
    #: Why the stored record is not an event (corrupt bytes, not JSON, not an envelope, no signature); None
    #: for every readable record.
    unreadable: str | None = None

    @property
    def position(self) -> LogPosition:
        return LogPosition(self.partition, self.offset)


def unreadable_record(partition: str, offset: int, body: bytes, signature: bytes, reason: str) -> LogRecord:
    """A record whose stored bytes are not a signed event, as a record all the same: one bad record must not
    stop every reader of the log. Its stand-in envelope has type :data:`UNREADABLE_TYPE` and a key id no keyring
    holds, so it verifies nowhere; readers record it as rejected, report it and go on."""
    envelope = Envelope(event_id=f"unreadable:{partition}@{offset}", type=UNREADABLE_TYPE, schema_version=0,
                        namespace="", actor="", origin="", ts="1970-01-01T00:00:00Z", payload={}, key_id="")
    return LogRecord(partition, offset, SignedEvent(bytes(body), bytes(signature), envelope), unreadable=reason)


def merge_clocks(*clocks: Clock) -> Clock:
    out: Clock = {}
    for clock in clocks:
        for part, off in clock.items():
            out[part] = max(out.get(part, 0), off)
    return out


def clock_covers(clock: Clock, positions: Clock) -> bool:
    """True when ``clock`` has reached every offset in ``positions``."""
    return all(clock.get(part, 0) >= off for part, off in positions.items())


def first_copies(events: Sequence[SignedEvent]) -> tuple[list[SignedEvent], list[int]]:
    """The events with repeated ids dropped, and for each input event the index of its first copy (backends
    store a batch that names one event twice once, and answer both with its position)."""
    firsts: list[SignedEvent] = []
    where: dict[str, int] = {}
    index: list[int] = []
    for event in events:
        if event.event_id not in where:
            where[event.event_id] = len(firsts)
            firsts.append(event)
        index.append(where[event.event_id])
    return firsts, index


class EventLog(ABC):
    """An append-only, replayable log of signed events.

    Class attributes say what a backend guarantees; the contract tests read them.
    """

    #: A batch is stored all-or-nothing.
    ATOMIC_BATCHES: ClassVar[bool] = True
    #: ``append(expected=...)`` is supported (optimistic concurrency on the end of the log).
    SUPPORTS_EXPECTED: ClassVar[bool] = True
    #: The log itself refuses a second copy of an event id forever (not only within a window).
    DEDUP_FOREVER: ClassVar[bool] = True

    @property
    @abstractmethod
    def url(self) -> str:
        """Where this log lives, without secrets (for status pages and errors)."""

    def describe(self) -> dict[str, Any]:
        """What this backend is and guarantees, for stats and health pages (never secrets)."""
        return {"backend": type(self).__name__, "atomic_batches": self.ATOMIC_BATCHES,
                "supports_expected": self.SUPPORTS_EXPECTED, "dedup_forever": self.DEDUP_FOREVER}

    @property
    def partitioned(self) -> bool:
        """Whether readers may see records of several partitions interleaved (in different orders)."""
        return False

    @abstractmethod
    async def append(self, events: Sequence[SignedEvent], *, expected: Clock | None = None,
                     new: bool = False) -> list[LogPosition]:
        """Append ``events`` in order and return their positions once they are durable.

        An event whose id the log already holds is not stored again: its existing position is returned.
        With ``expected``, the append happens only if each named partition ends exactly at the given offset.
        ``new``: the caller has just signed these events and never tried to append them before, so no log
        holds them yet; a backend whose search for earlier copies costs a round trip (Kafka) may skip it. A
        retry is not new: its first try may have been stored.
        An empty batch returns ``[]`` and writes nothing.

        Raises:
            AppendConflictError: ``expected`` is stale; nothing was written.
            LogUnavailableError: the backend cannot be reached (retriable).
        """

    @abstractmethod
    async def read(self, *, after: Clock | None = None, limit: int = 1000) -> list[LogRecord]:
        """Up to ``limit`` records with offsets greater than ``after`` (all partitions, each in order)."""

    async def subscribe(self, *, after: Clock | None = None, idle: float = 0.2) -> AsyncIterator[LogRecord]:
        """Yield every record after ``after``, then block and yield new ones as they are appended.

        Resumes exactly: a record is yielded once, in offset order within its partition. ``idle`` is the
        longest a backend without push notification waits before looking again.
        """
        position: Clock = dict(after or {})
        while True:
            batch = await self.read(after=position, limit=1000)
            for record in batch:
                yield record
                position[record.partition] = record.offset
            if not batch:
                await self.wait_for_append(position, timeout=idle)

    @abstractmethod
    async def wait_for_append(self, after: Clock, *, timeout: float) -> None:
        """Return when the log may hold records after ``after``, or after ``timeout`` seconds."""

    @abstractmethod
    async def end_offsets(self) -> Clock:
        """The offset of the last record in each partition (0 when a partition is empty)."""

    @abstractmethod
    async def commit_position(self, consumer: str, clock: Clock) -> None:
        """Durably remember that ``consumer`` has processed everything up to ``clock``."""

    @abstractmethod
    async def committed_position(self, consumer: str) -> Clock:
        """What ``consumer`` last committed; ``{}`` if it never did."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent; any later call raises ``LogClosedError``."""

    async def __aenter__(self) -> EventLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
