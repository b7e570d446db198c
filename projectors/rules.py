"""How memory events change a memory, as pure functions shared by every read-model backend.

The SQLite and Postgres appliers differ only in SQL; what a merge keeps, what an update sets and when an event
is inapplicable is decided here once, so the two backends cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from schemas import VECTOR_DIM, Memory, PayloadError, decode_vector
from schemas.events import MemoryEmbedded, MemoryUpdated

__all__ = ["DIM_RANGE", "WRONG_DIMENSION", "Inapplicable", "buried", "json_column", "merged_values", "tier_max",
           "title_clash", "updated_values", "vector_bytes"]


def json_column(value: Any) -> str:
    """How both read models store a JSON column (tags, metadata): compact, keys sorted, UTF-8 as is."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson cannot write (integers beyond 64 bits): the stdlib can
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

_TIER_RANK = {"short": 0, "mid": 1, "long": 2}
WRONG_DIMENSION = "wrong dimension"
#: Dimensions a read model keeping several models' vectors accepts: every embedding model in use lies inside
#: (384 MiniLM … 3,072 OpenAI large); a fixed rule, not a setting, so every node applies the same events.
DIM_RANGE = (16, 4096)


class Inapplicable(Exception):
    """The event is valid but cannot be applied to the current state (recorded as rejected)."""


def tier_max(old: str, new: str) -> str:
    """Tiers never go down."""
    return old if _TIER_RANK[old] >= _TIER_RANK[new] else new


def _keep_author(new_metadata: Mapping[str, Any], old_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The first author of a memory stays its author, whatever later writers send."""
    metadata = dict(new_metadata)
    old_agent = old_metadata.get("agent_id")
    if old_agent is not None:
        metadata["agent_id"] = old_agent
    return metadata


def merged_values(tier: str, expires_at: str | None, metadata: Mapping[str, Any], m: Memory) -> dict[str, Any]:
    """The original's upsert on (title, namespace), given the existing row's tier, expiry and metadata.

    The existing row keeps its id, creation time, access count and author; content, tags and source are
    replaced; the tier never goes down; a long tier clears the expiry. Priority and confidence take the maximum
    (``priority``/``confidence`` here are the incoming values: the backend takes the max in SQL).
    """
    new_tier = tier_max(tier, m.tier)
    return {"content": m.content, "tags": list(m.tags), "source": m.source, "priority": m.priority,
            "confidence": m.confidence, "tier": new_tier, "updated_at": m.updated_at,
            "expires_at": None if new_tier == "long" else (m.expires_at or expires_at),
            "metadata": _keep_author(m.metadata, metadata)}


def updated_values(event: MemoryUpdated, tier: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a ``memory.updated`` event sets, given the row's current tier and metadata.

    ``tags`` and ``metadata`` come back as Python values; the backend encodes them for its column types.
    """
    c = event.changes
    sets: dict[str, Any] = {"updated_at": event.updated_at}
    for name in ("title", "content", "namespace", "priority", "confidence", "source", "expires_at"):
        value = getattr(c, name)
        if value is not None:
            sets[name] = value
    if c.clear_expiry:
        sets["expires_at"] = None
    if c.tier is not None:
        sets["tier"] = tier_max(tier, c.tier)
    if c.tags is not None:
        sets["tags"] = list(c.tags)
    if c.metadata is not None:
        sets["metadata"] = _keep_author(c.metadata, metadata)
    return sets


def buried(memory_id: str) -> Inapplicable:
    """A stored or imported memory whose id has a tombstone: a deleted memory never comes back."""
    return Inapplicable(f"memory {memory_id} was deleted (tombstone): a deleted memory is never restored")


def title_clash(title: str, namespace: str, other_id: str) -> Inapplicable:
    return Inapplicable(f"title {title!r} already exists in namespace {namespace!r} (memory {other_id})")


def vector_bytes(event: MemoryEmbedded, dim: int | None = VECTOR_DIM) -> bytes:
    """The vector's float32 bytes, or :class:`Inapplicable` when it is malformed or not ``dim`` long (the
    reason starts with ``WRONG_DIMENSION`` then, so such refusals can be counted). ``dim=None`` takes any
    dimension in :data:`DIM_RANGE` (a read model that keeps vectors of several models: SQLite)."""
    # The range first, for every read model: the same malformed event gets the same reason on each backend.
    if not DIM_RANGE[0] <= event.dim <= DIM_RANGE[1]:
        msg = f"{WRONG_DIMENSION}: {event.dim} from {event.model}, outside {DIM_RANGE[0]}..{DIM_RANGE[1]}"
        raise Inapplicable(msg)
    if dim is not None and event.dim != dim:
        raise Inapplicable(f"{WRONG_DIMENSION}: {event.dim} from {event.model}, the index holds {dim}")
    try:
        return decode_vector(event.vector, event.dim)
    except PayloadError as exc:
        raise Inapplicable(str(exc)) from None
