"""Appends from one node pipeline: concurrent writes on a node are appended together (group commit).

A write hands its envelopes to :meth:`AppendPipeline.submit` and waits. One flush at a time takes every write
waiting then (up to ``max_events`` events), signs them in that order, appends them as one batch (one round trip,
atomic where the log's batches are) and offers the records to the local projectors in one go (one read-model
transaction); the writes that arrive meanwhile form the next batch. So a node with C concurrent writers makes
about one append per round trip instead of C, and its events reach the log in the order they were signed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from infra.log import LogPosition, LogRecord
from schemas import Envelope, SignedEvent

__all__ = ["AppendPipeline"]

#: Appends ``signed`` as one batch and returns their positions (retrying while the log is unavailable).
AppendFn = Callable[[Sequence[SignedEvent]], Awaitable[list[LogPosition]]]


@dataclass(frozen=True)
class _Waiting:
    envelopes: list[Envelope]
    done: asyncio.Future[list[LogRecord]]


class AppendPipeline:
    def __init__(self, append: AppendFn, seal: Callable[[Sequence[Envelope]], list[SignedEvent]],
                 offer: Callable[[list[LogRecord]], None], *, max_events: int = 256) -> None:
        self._append = append
        self._seal = seal
        self._offer = offer
        self._max_events = max_events
        self._waiting: deque[_Waiting] = deque()
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, envelopes: Sequence[Envelope]) -> list[LogRecord]:
        """Append ``envelopes`` (signed on the way) with whatever else is waiting; their records, in order.
        The events of one write are never split across batches."""
        waiting = _Waiting(list(envelopes), asyncio.get_running_loop().create_future())
        waiting.done.add_done_callback(_retrieved)  # a caller cancelled meanwhile never reads the outcome
        self._waiting.append(waiting)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="append-pipeline")
        return await asyncio.shield(waiting.done)  # a cancelled caller does not cancel the others' append

    def _next_batch(self) -> list[_Waiting]:
        batch = [self._waiting.popleft()]
        size = len(batch[0].envelopes)
        while self._waiting and size + len(self._waiting[0].envelopes) <= self._max_events:
            size += len(self._waiting[0].envelopes)
            batch.append(self._waiting.popleft())
        return batch

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._next_batch()
            try:
                sealed = [self._seal(w.envelopes) for w in batch]
                positions = await self._append([event for events in sealed for event in events])
            except BaseException as exc:
                for w in batch:
                    if not w.done.done():
                        w.done.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
                if not isinstance(exc, Exception):
                    self._fail_waiting()
                    raise
                continue
            records = [LogRecord(p.partition, p.offset, e)
                       for p, e in zip(positions, (e for events in sealed for e in events), strict=True)]
            self._offer(records)
            start = 0
            for w in batch:
                if not w.done.done():
                    w.done.set_result(records[start:start + len(w.envelopes)])
                start += len(w.envelopes)

    def _fail_waiting(self) -> None:
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.done.done():
                waiting.done.set_exception(asyncio.CancelledError())


def _retrieved(done: asyncio.Future[list[LogRecord]]) -> None:
    """Mark the outcome read, so a failure nobody waits for any more is not reported as never retrieved."""
    if not done.cancelled():
        done.exception()
