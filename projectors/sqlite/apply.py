"""How each memory event changes the SQLite read model. Deterministic: no clock, no config, no randomness.

Each ``apply_*`` runs inside the caller's transaction. A problem that makes an event inapplicable raises
:class:`Inapplicable`; the store records it as rejected and moves on, so one bad event cannot stall the log.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from projectors import convergence
from projectors.merge_order import applying, conflict_title
from projectors.rules import (
    WRONG_DIMENSION,
    Inapplicable,
    check_daily_quota,
    json_column,
    merged_values,
    place_store,
    tier_max,
    updated_values,
    vector_bytes,
)
from projectors.sqlite.sql import SQLiteSql
from schemas import Memory, shift_ts
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
    OnConflict,
)

# Re-exported: the decisions live in projectors.rules, shared with the Postgres backend.
__all__ = ["APPLIERS", "WRONG_DIMENSION", "Inapplicable", "tier_max", "vector_bytes"]


def _insert(db: sqlite3.Connection, m: Memory) -> bool:
    """Insert ``m`` unless its id is taken or its partition already claims its (title, namespace); True when
    inserted. Another region's claim of the title does not stop it: both are kept and the claims resolved
    (:mod:`projectors.convergence`)."""
    at = applying()
    if db.execute("SELECT 1 FROM memories WHERE id = ?", (m.id,)).fetchone() is not None:
        return False
    if convergence.claim_holder(SQLiteSql(db), m.title, m.namespace, at.partition) is not None:
        return False
    shown = m if _title_holder(db, m.title, m.namespace) is None else replace(m, title=conflict_title(m.title, m.id))
    cur = db.execute(
        "INSERT OR IGNORE INTO memories (id, tier, namespace, title, content, tags, priority, confidence, source, "
        "access_count, created_at, updated_at, last_accessed_at, expires_at, metadata) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (m.id, m.tier, m.namespace, shown.title, m.content, json_column(m.tags), m.priority, m.confidence, m.source,
         m.access_count, m.created_at, m.updated_at, m.last_accessed_at, m.expires_at, json_column(m.metadata)))
    if cur.rowcount != 1:
        return False
    convergence.record_claim(SQLiteSql(db), m.id, m.title, m.namespace, at)
    convergence.resolve(SQLiteSql(db), m.namespace, m.title)
    return True


def _merge(db: sqlite3.Connection, existing: sqlite3.Row, m: Memory) -> None:
    v = merged_values(existing["tier"], existing["expires_at"], json.loads(existing["metadata"]), m)
    db.execute(
        "UPDATE memories SET content = ?, tags = ?, source = ?, priority = max(priority, ?), "
        "confidence = max(confidence, ?), tier = ?, updated_at = ?, expires_at = ?, metadata = ? WHERE id = ?",
        (v["content"], json_column(v["tags"]), v["source"], v["priority"], v["confidence"], v["tier"], v["updated_at"],
         v["expires_at"], json_column(v["metadata"]), existing["id"]))
    convergence.joins(SQLiteSql(db), existing["id"])


def _title_holder(db: sqlite3.Connection, title: str, namespace: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute("SELECT * FROM memories WHERE title = ? AND namespace = ?",
                                         (title, namespace)).fetchone()
    return row


def _claimed(db: sqlite3.Connection, title: str, namespace: str) -> sqlite3.Row | None:
    """The row a store of (namespace, title) clashes with: its own partition's claim (with one partition, the
    memory holding the title)."""
    holder = convergence.claim_holder(SQLiteSql(db), title, namespace, applying().partition)
    row: sqlite3.Row | None = None if holder is None else db.execute(
        "SELECT * FROM memories WHERE id = ?", (holder,)).fetchone()
    return row


def _store(db: sqlite3.Connection, memory: Memory, on_conflict: OnConflict | None = None) -> None:
    place_store(memory, on_conflict,
                buried_id=lambda i: db.execute("SELECT 1 FROM memory_tombstones WHERE id = ?", (i,)).fetchone()
                is not None,
                insert=lambda m: _insert(db, m), title_holder=lambda t: _claimed(db, t, memory.namespace),
                merge=lambda holder, m: _merge(db, holder, m))


def _stored_today(db: sqlite3.Connection, agent_id: str, day: str) -> int:
    row = db.execute("SELECT memories_today FROM agent_quotas WHERE agent_id = ? AND day = ?",
                     (agent_id, day)).fetchone()
    return int(row[0]) if row is not None else 0


def apply_stored(db: sqlite3.Connection, event: MemoryStored) -> None:
    check_daily_quota(event, lambda agent, day: _stored_today(db, agent, day))
    _store(db, event.memory, event.on_conflict)


def apply_imported(db: sqlite3.Connection, event: MemoryImported) -> None:
    _store(db, event.memory)


def apply_updated(db: sqlite3.Connection, event: MemoryUpdated) -> None:
    row = db.execute("SELECT * FROM memories WHERE id = ?", (event.id,)).fetchone()
    if row is None:
        raise Inapplicable(f"memory {event.id} does not exist")
    sets = updated_values(event, row["tier"], json.loads(row["metadata"]))
    settle = convergence.claim_update(SQLiteSql(db), event.id, sets, row)
    for name in ("tags", "metadata"):
        if name in sets:
            sets[name] = json_column(sets[name])
    assignments = ", ".join(f"{name} = ?" for name in sets)
    db.execute(f"UPDATE memories SET {assignments} WHERE id = ?", (*sets.values(), event.id))
    settle()


def apply_deleted(db: sqlite3.Connection, event: MemoryDeleted) -> None:
    """Delete and leave a tombstone (even for an id not present here: a copy may still arrive)."""
    db.execute("DELETE FROM memories WHERE id = ?", (event.id,))
    db.execute("INSERT OR IGNORE INTO memory_tombstones (id) VALUES (?)", (event.id,))
    # Another region's claim of its title, kept under a conflict title, takes it.
    convergence.drop_claim(SQLiteSql(db), event.id)


def apply_promoted(db: sqlite3.Connection, event: MemoryPromoted) -> None:
    db.execute("UPDATE memories SET tier = ?, expires_at = NULL, updated_at = ? WHERE id = ?",
               (event.tier, event.updated_at, event.id))


def apply_touched(db: sqlite3.Connection, event: MemoryTouched) -> None:
    """The original's three touch updates folded into one statement per memory (right-hand sides see the old
    row, so ``n`` below is the new access count): one row write, one rank-table refresh."""
    r = event.rules
    n = "min(access_count + 1, :max_count)"
    promoted = f"(tier = 'mid' AND {n} >= :promote_at)"
    db.executemany(
        f"UPDATE memories SET access_count = {n}, last_accessed_at = :at, "
        f"tier = CASE WHEN {promoted} THEN 'long' ELSE tier END, "
        f"expires_at = CASE WHEN {promoted} OR expires_at IS NULL THEN NULL WHEN tier = 'short' THEN :short_exp "
        "WHEN tier = 'mid' THEN :mid_exp ELSE expires_at END, "
        f"updated_at = CASE WHEN {promoted} THEN :at ELSE updated_at END, "
        f"priority = CASE WHEN {n} % :every = 0 AND priority < :max_priority THEN priority + 1 ELSE priority END "
        "WHERE id = :id",
        [{"id": memory_id, "at": event.at, "max_count": r.max_access_count, "promote_at": r.promote_mid_at,
          "short_exp": shift_ts(event.at, r.short_extend_secs), "mid_exp": shift_ts(event.at, r.mid_extend_secs),
          "every": r.priority_every, "max_priority": r.max_priority} for memory_id in dict.fromkeys(event.ids)])


def apply_expired(db: sqlite3.Connection, event: MemoryExpired) -> None:
    for memory_id in event.ids:
        cur = db.execute("DELETE FROM memories WHERE id = ? AND expires_at IS NOT NULL AND expires_at < ?",
                         (memory_id, event.at))
        if cur.rowcount:
            convergence.drop_claim(SQLiteSql(db), memory_id)


def apply_forgotten(db: sqlite3.Connection, event: MemoryForgotten) -> None:
    # A bulk clean-up, like GC: no tombstones (importing an export afterwards restores those memories).
    db.executemany("DELETE FROM memories WHERE id = ?", [(memory_id,) for memory_id in event.ids])
    for memory_id in event.ids:
        convergence.drop_claim(SQLiteSql(db), memory_id)


def apply_embedded(db: sqlite3.Connection, event: MemoryEmbedded) -> None:
    # Any model's vector (one per memory, with its model and dim): readers ask for their own model's.
    raw = vector_bytes(event, dim=None)
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
