"""One number for "do these read models hold the same memories": SHA-256 of every memory, sorted by id, each in
its API shape (canonical JSON). Two nodes that applied the same events agree on it whatever order their logs
delivered them in (that is the convergence the hive promises), and a rebuild from the log must give it too.

Used by ``GET /api/v1/status?hash=1`` (so a verifier can compare live nodes without opening their files) and
by the tests that compare a node with a rebuild.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra.log import Clock
from projectors import MemoryReadModel

__all__ = ["memories_hash", "read_model_hash"]


def memories_hash(model: MemoryReadModel) -> str:
    """SHA-256 of a read model's memories, sorted by id, each in its API shape (canonical JSON)."""
    rows = sorted(model.queries.all_memories(), key=lambda m: m.id)
    text = json.dumps([m.to_api() for m in rows], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_model_hash(model: MemoryReadModel, position: Clock) -> dict[str, Any]:
    """The hash with the log position it was taken at. Call it with no ``await`` between reading ``position``
    and here: the projector runs on the same event loop, so nothing is applied in between."""
    return {"memories": memories_hash(model), "position": dict(position)}
