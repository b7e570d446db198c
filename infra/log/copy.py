"""Copy every event of one log into another (any backend to any backend), e.g. to move from NATS to Kafka.

Events travel as they are stored: the same body bytes, signature and event id, so every signature still
verifies and consumers dedupe across the move. Offsets are not kept (each log numbers its own records);
the order is the source's read order, so a read model rebuilt from the copy equals one built from the source.

Re-running a copy is safe: the event ids already in the target are read first and skipped, so an interrupted
copy resumes and a finished one copies nothing, whatever dedup window the target's backend has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infra.log.base import Clock, EventLog

__all__ = ["CopyResult", "copy_log"]


@dataclass(frozen=True, slots=True)
class CopyResult:
    copied: int
    skipped: int
    source_end: Clock
    target_end: Clock
    #: Source records that are not events (corrupt bytes): left behind, since no reader could use them.
    unreadable: int = 0


async def _ids_in(log: EventLog, *, batch: int) -> set[str]:
    ids: set[str] = set()
    position: Clock = {}
    while records := await log.read(after=position, limit=batch):
        for record in records:
            ids.add(record.event.event_id)
            position[record.partition] = record.offset
    return ids


async def copy_log(source: EventLog, target: EventLog, *, batch: int = 500,
                   progress: Callable[[int], None] | None = None) -> CopyResult:
    """Append to ``target`` every event of ``source`` that it does not hold yet, in ``source`` order.

    ``progress(n)`` is called with the number of source events handled so far (copied or skipped). Events
    appended to ``source`` while the copy runs are copied too if the read reaches them.

    Raises:
        LogError: from either log; what was appended before the error stays, and a re-run continues.
    """
    present = await _ids_in(target, batch=batch)
    copied = skipped = unreadable = 0
    position: Clock = {}
    while records := await source.read(after=position, limit=batch):
        readable = [r.event for r in records if r.unreadable is None]
        fresh = [e for e in readable if e.event_id not in present]
        if fresh:
            await target.append(fresh)
            present.update(e.event_id for e in fresh)
        copied += len(fresh)
        skipped += len(readable) - len(fresh)
        unreadable += len(records) - len(readable)
        for record in records:
            position[record.partition] = record.offset
        if progress is not None:
            progress(copied + skipped + unreadable)
    return CopyResult(copied, skipped, await source.end_offsets(), await target.end_offsets(), unreadable)
