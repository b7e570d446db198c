"""Building blocks of the convergence tests: events of several origin partitions (regions), the interleavings a
node may read them in, and the hash of a read model's state that every node must agree on."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from infra.log import LogRecord
from projectors import MemoryReadModel, Verdict
from schemas import SCHEMA_VERSION, Envelope, Memory, SignedEvent, encode_payload, format_ts, parse_ts
from schemas.events import EventPayload

__all__ = ["Region", "apply_in_turn", "apply_interleaved", "assert_converges", "both_orders", "hash_state",
           "interleave", "model_digest", "read_orders", "shuffled_batches"]

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


def apply_interleaved(model: MemoryReadModel, regions: Sequence[Region], rng: random.Random, *,
                      before_batch: Callable[[list[LogRecord]], None] | None = None) -> None:
    """One random interleaving in batches of random size; ``before_batch`` sees each batch before it applies
    (to tune the model as a node would between batches)."""
    for batch in shuffled_batches(interleave(regions, rng), rng):
        if before_batch is not None:
            before_batch(batch)
        model.apply_batch([Verdict(r) for r in batch])


def apply_in_turn(model: MemoryReadModel, regions: Sequence[Region]) -> None:
    """Region by region, each whole in one batch: every event of a later region arrives late."""
    for region in regions:
        if region.records:
            model.apply_batch([Verdict(r) for r in region.records])


def both_orders(models: Callable[[], MemoryReadModel], regions: Sequence[Region]) -> Iterator[MemoryReadModel]:
    """Fresh models fed region by region, in both directions."""
    for order in (regions, regions[::-1]):
        model = models()
        apply_in_turn(model, order)
        yield model


def read_orders(models: Callable[[], MemoryReadModel], regions: Sequence[Region], rng: random.Random, *,
                mixed: int) -> Iterator[MemoryReadModel]:
    """Fresh models, each fed the regions in one order a node may read them: ``mixed`` random interleavings,
    then region by region in both directions."""
    for _ in range(mixed):
        model = models()
        apply_interleaved(model, regions, rng)
        yield model
    yield from both_orders(models, regions)


def assert_converges(models: Callable[[], MemoryReadModel], regions: Sequence[Region], rng: random.Random,
                     digest: Callable[[MemoryReadModel], object], *, mixed: int = 3) -> None:
    """Every order of ``read_orders`` leaves a model with the same ``digest``."""
    digests = {digest(model) for model in read_orders(models, regions, rng, mixed=mixed)}
    assert len(digests) == 1, digests


def hash_state(state: Mapping[str, Any]) -> str:
    """SHA-256 of a state as JSON with sorted keys: equal states hash the same on every node."""
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


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
    return hash_state(state)
