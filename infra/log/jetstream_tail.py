"""The stream's newest records, pushed to this process as the stream stores them.

Followers used to learn of a new event from a core subscription on the stream's subjects, which hears a publish
*before* the stream stores it: each wake-up then polled with direct gets (every 2 ms for 20 ms) until the record
was there, for each of a node's read models. One ordered push consumer instead delivers every record once it
is stored, with its sequence: the records are kept here, a read that starts inside them is answered without a
round trip, and a waiter wakes when the stream holds something beyond its position.

Only an accelerator: a read this tail cannot answer (older records, a consumer being re-created after a lost
server) goes to the stream as before, and the client re-creates a consumer that missed two heartbeats.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import islice

from nats.aio.msg import Msg

from infra.log.base import LogRecord

__all__ = ["StoredTail"]

#: A record from a pushed message (its stream sequence, body and headers).
ToRecord = Callable[[int, Msg], LogRecord]


class StoredTail:
    """The last ``capacity`` records pushed, contiguous from :attr:`first` to :attr:`last`."""

    def __init__(self, to_record: ToRecord, *, capacity: int = 4096) -> None:
        self._to_record = to_record
        self._capacity = capacity
        self._records: deque[LogRecord] = deque()
        self._grown = asyncio.Event()
        self.last = 0

    @property
    def first(self) -> int:
        """The oldest sequence held (0 when empty)."""
        return self._records[0].offset if self._records else 0

    def handler(self) -> Callable[[Msg], Awaitable[None]]:
        """The subscription's callback."""

        async def on_stored(msg: Msg) -> None:
            self.add(self._to_record(msg.metadata.sequence.stream, msg))

        return on_stored

    def add(self, record: LogRecord) -> None:
        if record.offset <= self.last:
            return  # a re-created consumer replays from the last sequence it knew: held already
        if record.offset != self.last + 1:
            self._records.clear()  # a gap (the consumer started later, or was re-created further on): restart
        self._records.append(record)
        if len(self._records) > self._capacity:
            self._records.popleft()
        self.last = record.offset
        self._grown.set()
        self._grown = asyncio.Event()  # the waiters of this growth wake; later ones wait for the next

    def take(self, start: int, limit: int) -> list[LogRecord]:
        """Up to ``limit`` records from sequence ``start`` on, or ``[]`` when ``start`` is not held."""
        if not self._records or not self.first <= start <= self.last:
            return []
        begin = start - self.first
        return list(islice(self._records, begin, begin + limit))

    async def wait_beyond(self, seq: int, timeout: float) -> None:
        """Return once a record after ``seq`` was pushed, or after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last <= seq and (left := deadline - loop.time()) > 0:
            try:
                await asyncio.wait_for(self._grown.wait(), left)
            except TimeoutError:
                return
