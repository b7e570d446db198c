"""The stream's newest records, pushed to this process as the stream stores them.

Followers used to learn of a new event from a core subscription on the stream's subjects, which hears a publish
*before* the stream stores it: each wake-up then polled with direct gets (every 2 ms for 20 ms) until the record
was there, for each of a node's read models. One ordered push consumer instead delivers every record once it
is stored, with its sequence: the records are kept here, a read that starts inside them is answered without a
round trip, and a waiter wakes when the stream holds something beyond its position.

A pushed message is parsed into a record only when a read asks for it (then kept): a node never reads back the
events it appended itself (its projectors were handed them), so it does not decode them a second time.

Only an accelerator: a read this tail cannot answer (older records, a consumer being re-created after a lost
server) goes to the stream as before, and the client re-creates a consumer that missed two heartbeats.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from infra.log.base import LogRecord

__all__ = ["StoredTail"]

#: The header in which a stream's republished message carries its sequence in the stream.
REPUBLISHED_SEQUENCE = "Nats-Sequence"

#: A record from a pushed message (its stream sequence, body and headers).
ToRecord = Callable[[int, Msg], LogRecord]


class _Pushed:
    """One pushed message, parsed on first use."""

    __slots__ = ("msg", "offset", "record")

    def __init__(self, offset: int, msg: Msg | None, record: LogRecord | None) -> None:
        self.offset = offset
        self.msg = msg
        self.record = record


class StoredTail:
    """The last ``capacity`` records pushed, contiguous from :attr:`first` to :attr:`last`."""

    def __init__(self, to_record: ToRecord, *, capacity: int = 4096) -> None:
        self._to_record = to_record
        self._capacity = capacity
        self._held: deque[_Pushed] = deque()
        self._grown = asyncio.Event()
        self.last = 0

    @property
    def first(self) -> int:
        """The oldest sequence held (0 when empty)."""
        return self._held[0].offset if self._held else 0

    def handler(self, *, republished: bool = False) -> Callable[[Msg], Awaitable[None]]:
        """The subscription's callback: for a consumer's messages, or (``republished``) for what a stream
        republishes, whose sequence travels in a header."""

        async def on_stored(msg: Msg) -> None:
            self._hold(_Pushed(msg.metadata.sequence.stream, msg, None))

        async def on_republished(msg: Msg) -> None:
            self._hold(_Pushed(int((msg.headers or {}).get(REPUBLISHED_SEQUENCE, "0")), msg, None))

        return on_republished if republished else on_stored

    def add(self, record: LogRecord) -> None:
        """Hold a record already parsed."""
        self._hold(_Pushed(record.offset, None, record))

    def _hold(self, pushed: _Pushed) -> None:
        if pushed.offset <= self.last:
            return  # a re-created consumer replays from the last sequence it knew: held already
        if pushed.offset != self.last + 1:
            self._held.clear()  # a gap (the consumer started later, or was re-created further on): restart
        self._held.append(pushed)
        if len(self._held) > self._capacity:
            self._held.popleft()
        self.last = pushed.offset
        self._grown.set()
        self._grown = asyncio.Event()  # the waiters of this growth wake; later ones wait for the next

    def take(self, start: int, limit: int) -> list[LogRecord]:
        """Up to ``limit`` records from sequence ``start`` on, or ``[]`` when ``start`` is not held."""
        if not self._held or not self.first <= start <= self.last:
            return []
        begin = start - self.first
        end = min(begin + limit, len(self._held))
        # By index, not islice: islice walks the deque from its left end, and a follower reads near the right
        # end of a full tail (4,096 records) every batch; a deque index walks from the nearer end.
        return [self._parsed(self._held[i]) for i in range(begin, end)]

    def _parsed(self, pushed: _Pushed) -> LogRecord:
        if pushed.record is None:
            assert pushed.msg is not None
            pushed.record, pushed.msg = self._to_record(pushed.offset, pushed.msg), None
        return pushed.record

    async def wait_beyond(self, seq: int, timeout: float) -> None:
        """Return once a record after ``seq`` was pushed, or after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last <= seq and (left := deadline - loop.time()) > 0:
            try:
                await asyncio.wait_for(self._grown.wait(), left)
            except TimeoutError:
                return
