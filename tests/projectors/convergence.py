"""Building blocks of the convergence tests: events of several origin partitions (regions), the interleavings a
node may read them in, and the hash of a read model's state that every node must agree on."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Sequence
from typing import Any

from infra.log import LogRecord
from projectors import MemoryReadModel, Verdict
from schemas import SCHEMA_VERSION, Envelope, Memory, SignedEvent, encode_payload, format_ts, parse_ts
from schemas.events import EventPayload

__all__ = ["Region", "apply_interleaved", "interleave", "model_digest", "shuffled_batches"]

T0 = parse_ts("2026-12-01T10:00:00Z")


def memory(memory_id: str, title: str, content: str, *, at: int, namespace: str = "hive", agent: str = "a",
           priority: int = 5) -> Memory:
    ts = format_ts(T0.replace(second=0) + _seconds(at))
    return Memory(id=memory_id, tier="mid", namespace=namespace, title=title, content=content, tags=[],
                  priority=priority, confidence=1.0, source="api", access_count=0, created_at=ts, updated_at=ts,
                  metadata={"agent_id": agent})


def _seconds(n: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)


class Region:
    """One origin partition: its events in log order, each stamped with its writer's clock (seconds after T0,
    not necessarily increasing: writers' clocks disagree)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.records: list[LogRecord] = []

    def add(self, payload: EventPayload, *, at: int, namespace: str = "hive", cause: str | None = None) -> LogRecord:
        """Append ``payload``; ``cause``: the event id of the decision it carries out."""
        ts = format_ts(T0 + _seconds(at))
        envelope = Envelope(event_id=f"{self.name}-{len(self.records) + 1}", type=payload.TYPE,
                            schema_version=SCHEMA_VERSION, namespace=namespace, actor="agent", origin=self.name,
                            ts=ts, payload=encode_payload(payload), key_id=self.name, cause=cause)
        record = LogRecord(self.name, len(self.records) + 1, SignedEvent(envelope.body(), b"unsigned", envelope))
        self.records.append(record)
        return record


def interleave(regions: Sequence[Region], rng: random.Random) -> list[LogRecord]:
    """One order a node may read the regions in: each region's records in their order, the regions mixed."""
    cursors = [0] * len(regions)
    out: list[LogRecord] = []
    while len(out) < sum(len(r.records) for r in regions):
        live = [i for i, r in enumerate(regions) if cursors[i] < len(r.records)]
        i = rng.choice(live)
        out.append(regions[i].records[cursors[i]])
        cursors[i] += 1
    return out


def shuffled_batches(records: list[LogRecord], rng: random.Random) -> list[list[LogRecord]]:
    batches: list[list[LogRecord]] = []
    start = 0
    while start < len(records):
        size = rng.randint(1, 5)
        batches.append(records[start:start + size])
        start += size
    return batches


def apply_interleaved(model: MemoryReadModel, regions: Sequence[Region], rng: random.Random) -> None:
    for batch in shuffled_batches(interleave(regions, rng), rng):
        model.apply_batch([Verdict(r) for r in batch])


def model_digest(model: MemoryReadModel, ids: Sequence[str]) -> str:
    """SHA-256 of the state every node must agree on: its memories sorted by id (as the cluster tests hash
    them), which of ``ids`` are tombstoned, the title conflicts an operator sees, the namespace standards, the
    pending actions."""
    state: dict[str, Any] = {
        "memories": [m.to_payload() for m in model.queries.all_memories()],
        "tombstones": sorted(model.queries.tombstoned(list(ids))),
        "conflicts": model.title_conflicts(),
        "standards": [dataclasses.asdict(s) for s in model.governance.standards()],
        "pending": [p.to_api() for p in model.governance.list_pending(status=None, limit=1000)],
    }
    text = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
