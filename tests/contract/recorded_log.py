"""One recorded log for the read-model contract: every memory event type, the awkward cases included (an
upsert by title, a title clash, a re-sent event id, a vector of the wrong dimension). Timestamps are fixed, so
the same log gives the same answers on every backend, on any day."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from infra.log import LogRecord
from schemas import VECTOR_DIM, Memory, encode_payload, encode_vector
from schemas.events import (
    MemoryChanges,
    MemoryDeleted,
    MemoryEmbedded,
    MemoryExpired,
    MemoryForgotten,
    MemoryImported,
    MemoryPromoted,
    MemoryStored,
    MemoryTouched,
    MemoryUpdated,
    TouchRules,
)
from tests.factories import node_key, signed

NOW = "2026-06-01T12:00:00+00:00"
SOON = "2026-06-08T12:00:00+00:00"
_DAY = "2026-05-{:02d}T08:00:00+00:00"

# (id, title, content, namespace, tier, priority, tags, scope, expires_at, day)
_MEMORIES: list[tuple[str, str, str, str, str, int, list[str], str, str | None, int]] = [
    ("m01", "postgres deploy notes", "the database runs pgvector with hnsw", "proj/a", "long", 9, ["db", "ops"],
     "collective", None, 1),
    ("m02", "deploy checklist", "run migrations before the deploy", "proj/a", "mid", 7, ["ops"], "collective",
     None, 2),
    ("m03", "café menu", "espresso and croissant", "proj/b", "short", 3, ["food"], "collective",
     "2026-06-20T00:00:00+00:00", 3),
    ("m04", "private diary", "nobody else reads this deploy diary", "agents/alice", "mid", 5, [], "private",
     None, 4),
    ("m05", "team plan", "the team ships the deploy on friday", "org/team", "mid", 6, ["plan"], "team", None, 5),
    ("m06", "stale note", "will expire soon", "proj/a", "short", 2, [], "collective",
     "2026-05-20T00:00:00+00:00", 6),
    ("m07", "to forget", "scratch text about deploy", "scratch", "short", 1, ["tmp"], "collective",
     "2026-07-01T00:00:00+00:00", 7),
    ("m08", "equal one", "tie breaker words", "ties", "mid", 5, [], "collective", None, 8),
    ("m09", "equal two", "tie breaker words", "ties", "mid", 5, [], "collective", None, 8),
    ("m10", "vector holder", "has a vector and a deploy word", "proj/c", "long", 8, ["vec"], "collective",
     None, 9),
]


def memory(row: tuple[str, str, str, str, str, int, list[str], str, str | None, int]) -> Memory:
    mid, title, content, ns, tier, prio, tags, scope, expires, day = row
    ts = _DAY.format(day)
    return Memory(id=mid, tier=cast(Any, tier), namespace=ns, title=title, content=content, tags=tags, priority=prio,
                  confidence=0.9, source="api", access_count=0, created_at=ts, updated_at=ts, expires_at=expires,
                  metadata={"agent_id": f"agent-{mid}", "scope": scope})


def unit_vector(seed: int, dim: int = VECTOR_DIM) -> bytes:
    v = np.random.default_rng(seed).standard_normal(dim).astype("<f4")
    unit: bytes = (v / np.linalg.norm(v)).astype("<f4").tobytes()
    return unit


def _events() -> list[tuple[Any, str | None]]:
    out: list[tuple[Any, str | None]] = [(MemoryStored(memory(r)), None) for r in _MEMORIES]
    upsert = memory(_MEMORIES[1])
    out += [
        # Same title and namespace, another id: the original's upsert (m02 keeps its id and author).
        (MemoryStored(Memory(**{**upsert.to_payload(), "id": "m02-again", "content": "run migrations, then deploy",
                                "priority": 4, "tier": "long", "updated_at": _DAY.format(10),
                                "metadata": {"agent_id": "intruder", "scope": "collective"}})), None),
        (MemoryUpdated("m05", MemoryChanges(title="team plan v2", tags=["plan", "friday"]), _DAY.format(11)), None),
        (MemoryUpdated("m08", MemoryChanges(title="equal two", namespace="ties"), _DAY.format(11)), None),  # clash
        (MemoryUpdated("nope", MemoryChanges(content="x"), _DAY.format(11)), None),  # no such memory
        (MemoryTouched(["m01", "m02", "m01"], _DAY.format(12), TouchRules()), None),
        (MemoryPromoted("m03", "mid", _DAY.format(13)), None),
        (MemoryEmbedded("m10", "test-model", VECTOR_DIM, encode_vector(unit_vector(10))), None),
        (MemoryEmbedded("m01", "test-model", VECTOR_DIM, encode_vector(unit_vector(1))), None),
        (MemoryEmbedded("m02", "test-model", 3, encode_vector(np.ones(3, dtype="<f4").tobytes())), None),  # dim
        (MemoryUpdated("m01", MemoryChanges(content="the database runs pgvector with an hnsw index"),
                       _DAY.format(14)), None),  # drops m01's vector
        (MemoryExpired(["m06", "m03"], "2026-05-25T00:00:00+00:00"), None),  # m03 is not expired yet
        (MemoryForgotten(["m07"], pattern="scratch"), None),
        (MemoryDeleted("m09"), None),
        (MemoryStored(memory(("m11", "late", "refused by signature", "proj/a", "mid", 5, [], "collective", None,
                              15))), "signature does not verify"),
    ]
    return out


def recorded_log(tmp: Path) -> list[LogRecord]:
    """The records, offsets 1..n on partition ``p``; the last-but-one event is re-sent at the end."""
    key = node_key(tmp, "recorder")
    records = []
    for offset, (payload, _) in enumerate(_events(), start=1):
        records.append(LogRecord("p", offset, signed(key, event_type=payload.TYPE, payload=encode_payload(payload))))
    resent = records[-2].event
    records.append(LogRecord("p", len(records) + 1, resent))
    return records


def revivals(tmp: Path, start: int) -> list[LogRecord]:
    """Copies of the memories the log removed, arriving later (from offset ``start``): m09 (deleted) stored
    again, m07 (forgotten: no tombstone) imported again, m06 (expired: no tombstone) stored again."""
    key = node_key(tmp, "late-peer")
    rows = {r[0]: r for r in _MEMORIES}
    payloads: list[Any] = [MemoryStored(memory(rows["m09"])), MemoryImported(memory(rows["m07"])),
                           MemoryStored(Memory(**{**memory(rows["m06"]).to_payload(), "expires_at": None}))]
    return [LogRecord("p", start + i, signed(key, event_type=p.TYPE, payload=encode_payload(p)))
            for i, p in enumerate(payloads)]


def rejected_offsets() -> dict[int, str]:
    """Offsets the runner itself refuses (bad signatures), with the reason it gives."""
    return {i: reason for i, (_, reason) in enumerate(_events(), start=1) if reason is not None}
