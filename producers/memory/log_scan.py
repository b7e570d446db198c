"""Read every event of some types from the log, in log order: for the tools that answer from the log itself
(recall observations, confidence calibration) rather than from a read model."""

from __future__ import annotations

from collections.abc import AsyncIterator

from infra.log import Clock, EventLog
from schemas.envelope import Envelope

__all__ = ["envelopes_of"]

_PAGE = 500


async def envelopes_of(log: EventLog, *types: str) -> AsyncIterator[Envelope]:
    position: Clock = {}
    while records := await log.read(after=position, limit=_PAGE):
        for record in records:
            position[record.partition] = record.offset
            envelope = record.event.envelope
            if envelope.type in types:
                yield envelope
