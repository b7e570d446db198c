"""How each memory event changes the SQLite read model. Deterministic: no clock, no config, no randomness.

Each ``apply_*`` runs inside the caller's transaction. A problem that makes an event inapplicable raises
:class:`Inapplicable`; the store records it as rejected and moves on, so one bad event cannot stall the log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from schemas import VECTOR_DIM, Memory, PayloadError, decode_vector, shift_ts
from schemas.events import (
    MemoryDeleted,
    MemoryEmbedded,
    MemoryExpired,
    MemoryForgotten,
    MemoryImported,
    MemoryPromoted,
    MemoryStored,
    MemoryTouched,
    MemoryUpdated,
)

__all__ = ["APPLIERS", "WRONG_DIMENSION", "Inapplicable", "tier_max", "vector_bytes"]

_TIER_RANK = {"short": 0, "mid": 1, "long": 2}
WRONG_DIMENSION = "wrong dimension"


class Inapplicable(Exception):
    """The event is valid but cannot be applied to the current state (recorded as rejected)."""


def tier_max(old: str, new: str) -> str:
    """Tiers never go down."""
    return old if _TIER_RANK[old] >= _TIER_RANK[new] else new


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _insert(db: sqlite3.Connection, m: Memory) -> bool:
    """Insert ``m`` unless its id or its (title, namespace) is taken; True when inserted. Trying the insert
    first keeps the common case to one statement."""
    cur = db.execute(
        "INSERT OR IGNORE INTO memories (id, tier, namespace, title, content, tags, priority, confidence, source, "
        "access_count, created_at, updated_at, last_accessed_at, expires_at, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (m.id, m.tier, m.namespace, m.title, m.content, _dumps(m.tags), m.priority, m.confidence, m.source,
         m.access_count, m.created_at, m.updated_at, m.last_accessed_at, m.expires_at, _dumps(m.metadata)))
    return cur.rowcount == 1


def _merge(db: sqlite3.Connection, existing: sqlite3.Row, m: Memory) -> None:
    """The original's upsert on (title, namespace): the existing row keeps its id, creation time,
    access count and author; content, tags and source are replaced; priority and confidence take the
    maximum; the tier never goes down; a long tier clears the expiry."""
    tier = tier_max(existing["tier"], m.tier)
    expires = None if tier == "long" else (m.expires_at or existing["expires_at"])
    metadata = dict(m.metadata)
    old_agent = json.loads(existing["metadata"]).get("agent_id")
    if old_agent is not None:
        metadata["agent_id"] = old_agent
    db.execute(
        "UPDATE memories SET content = ?, tags = ?, source = ?, priority = max(priority, ?), "
        "confidence = max(confidence, ?), tier = ?, updated_at = ?, expires_at = ?, metadata = ? WHERE id = ?",
        (m.content, _dumps(m.tags), m.source, m.priority, m.confidence, tier, m.updated_at, expires,
         _dumps(metadata), existing["id"]))


def _store(db: sqlite3.Connection, memory: Memory) -> None:
    if _insert(db, memory):
        return
    same_title = db.execute("SELECT * FROM memories WHERE title = ? AND namespace = ?",
                            (memory.title, memory.namespace)).fetchone()
    if same_title is not None:
        _merge(db, same_title, memory)
        return
    msg = f"memory {memory.id} already exists under another title or namespace"
    raise Inapplicable(msg)


def apply_stored(db: sqlite3.Connection, event: MemoryStored) -> None:
    _store(db, event.memory)


def apply_imported(db: sqlite3.Connection, event: MemoryImported) -> None:
    _store(db, event.memory)


def apply_updated(db: sqlite3.Connection, event: MemoryUpdated) -> None:
    row = db.execute("SELECT * FROM memories WHERE id = ?", (event.id,)).fetchone()
    if row is None:
        raise Inapplicable(f"memory {event.id} does not exist")
    c = event.changes
    sets: dict[str, Any] = {"updated_at": event.updated_at}
    for name in ("title", "content", "namespace", "priority", "confidence", "source", "expires_at"):
        value = getattr(c, name)
        if value is not None:
            sets[name] = value
    if c.clear_expiry:
        sets["expires_at"] = None
    if c.tier is not None:
        sets["tier"] = tier_max(row["tier"], c.tier)
    if c.tags is not None:
        sets["tags"] = _dumps(c.tags)
    if c.metadata is not None:
        metadata = dict(c.metadata)
        old_agent = json.loads(row["metadata"]).get("agent_id")
        if old_agent is not None:
            metadata["agent_id"] = old_agent
        sets["metadata"] = _dumps(metadata)
    title, namespace = sets.get("title", row["title"]), sets.get("namespace", row["namespace"])
    clash = db.execute("SELECT id FROM memories WHERE title = ? AND namespace = ? AND id != ?",
                       (title, namespace, event.id)).fetchone()
    if clash is not None:
        msg = f"title {title!r} already exists in namespace {namespace!r} (memory {clash['id']})"
        raise Inapplicable(msg)
    assignments = ", ".join(f"{name} = ?" for name in sets)
    db.execute(f"UPDATE memories SET {assignments} WHERE id = ?", (*sets.values(), event.id))


def apply_deleted(db: sqlite3.Connection, event: MemoryDeleted) -> None:
    db.execute("DELETE FROM memories WHERE id = ?", (event.id,))


def apply_promoted(db: sqlite3.Connection, event: MemoryPromoted) -> None:
    db.execute("UPDATE memories SET tier = ?, expires_at = NULL, updated_at = ? WHERE id = ?",
               (event.tier, event.updated_at, event.id))


def apply_touched(db: sqlite3.Connection, event: MemoryTouched) -> None:
    r = event.rules
    short_exp = shift_ts(event.at, r.short_extend_secs)
    mid_exp = shift_ts(event.at, r.mid_extend_secs)
    for memory_id in dict.fromkeys(event.ids):
        db.execute(
            "UPDATE memories SET access_count = min(access_count + 1, ?), last_accessed_at = ?, "
            "expires_at = CASE WHEN expires_at IS NULL THEN NULL WHEN tier = 'short' THEN ? "
            "WHEN tier = 'mid' THEN ? ELSE expires_at END WHERE id = ?",
            (r.max_access_count, event.at, short_exp, mid_exp, memory_id))
        db.execute("UPDATE memories SET tier = 'long', expires_at = NULL, updated_at = ? "
                   "WHERE id = ? AND tier = 'mid' AND access_count >= ?", (event.at, memory_id, r.promote_mid_at))
        db.execute("UPDATE memories SET priority = min(priority + 1, ?) WHERE id = ? AND access_count > 0 "
                   "AND access_count % ? = 0 AND priority < ?",
                   (r.max_priority, memory_id, r.priority_every, r.max_priority))


def apply_expired(db: sqlite3.Connection, event: MemoryExpired) -> None:
    db.executemany("DELETE FROM memories WHERE id = ? AND expires_at IS NOT NULL AND expires_at < ?",
                   [(memory_id, event.at) for memory_id in event.ids])


def apply_forgotten(db: sqlite3.Connection, event: MemoryForgotten) -> None:
    db.executemany("DELETE FROM memories WHERE id = ?", [(memory_id,) for memory_id in event.ids])


def vector_bytes(event: MemoryEmbedded, dim: int = VECTOR_DIM) -> bytes:
    """The vector's float32 bytes, or :class:`Inapplicable` when it is malformed or not ``dim`` long (the
    reason starts with ``WRONG_DIMENSION`` then, so such refusals can be counted)."""
    if event.dim != dim:
        raise Inapplicable(f"{WRONG_DIMENSION}: {event.dim} from {event.model}, the index holds {dim}")
    try:
        return decode_vector(event.vector, event.dim)
    except PayloadError as exc:
        raise Inapplicable(str(exc)) from None


def apply_embedded(db: sqlite3.Connection, event: MemoryEmbedded) -> None:
    raw = vector_bytes(event)
    if db.execute("SELECT 1 FROM memories WHERE id = ?", (event.id,)).fetchone() is None:
        raise Inapplicable(f"memory {event.id} does not exist")
    db.execute("INSERT OR REPLACE INTO memory_vectors (id, model, dim, vector) VALUES (?, ?, ?, ?)",
               (event.id, event.model, event.dim, raw))


APPLIERS: dict[str, Callable[[sqlite3.Connection, Any], None]] = {
    MemoryStored.TYPE: apply_stored,
    MemoryImported.TYPE: apply_imported,
    MemoryUpdated.TYPE: apply_updated,
    MemoryDeleted.TYPE: apply_deleted,
    MemoryPromoted.TYPE: apply_promoted,
    MemoryTouched.TYPE: apply_touched,
    MemoryExpired.TYPE: apply_expired,
    MemoryForgotten.TYPE: apply_forgotten,
    MemoryEmbedded.TYPE: apply_embedded,
}
