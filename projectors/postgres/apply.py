"""How each memory event changes the Postgres read model: the same decisions as the SQLite backend
(:mod:`projectors.rules`), in Postgres SQL. Deterministic: no clock, no config, no randomness.

Each ``apply_*`` runs inside the caller's transaction and raises :class:`Inapplicable` for an event that cannot
apply to the current state; the store records it as rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection, RowMapping, text

from projectors import convergence
from projectors.merge_order import applying, conflict_title
from projectors.postgres.sql import PostgresSql
from projectors.rules import (
    Inapplicable,
    check_daily_quota,
    json_column,
    merged_values,
    place_store,
    updated_values,
    vector_bytes,
)
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

__all__ = ["APPLIERS", "vector_literal"]


def vector_literal(raw: bytes) -> str:
    """pgvector's text form of little-endian float32 bytes. Python's shortest repr of each float32 (as a double)
    parses back to the same float32, so the stored vector is bit-identical to the event's."""
    return "[" + ",".join(repr(x) for x in np.frombuffer(raw, dtype="<f4").tolist()) + "]"


_INSERT = text(
    "INSERT INTO memories (id, tier, namespace, title, content, tags, priority, confidence, source, access_count, "
    "created_at, updated_at, last_accessed_at, expires_at, metadata) VALUES (:id, :tier, :namespace, :title, "
    ":content, CAST(:tags AS jsonb), :priority, :confidence, :source, :access_count, :created_at, :updated_at, "
    ":last_accessed_at, :expires_at, CAST(:metadata AS jsonb)) ON CONFLICT DO NOTHING")
_MERGE = text(
    "UPDATE memories SET content = :content, tags = CAST(:tags AS jsonb), source = :source, "
    "priority = greatest(priority, :priority), confidence = greatest(confidence, :confidence), tier = :tier, "
    "updated_at = :updated_at, expires_at = :expires_at, metadata = CAST(:metadata AS jsonb) WHERE id = :id")


def _row(db: Connection, sql: str, params: dict[str, Any]) -> RowMapping | None:
    return db.execute(text(sql), params).mappings().first()


def _insert(db: Connection, m: Memory) -> bool:
    """Insert ``m`` unless its id is taken or its partition already claims its (title, namespace); True when
    inserted. Another region's claim of the title does not stop it: both are kept and the claims resolved
    (:mod:`projectors.convergence`)."""
    at, sql = applying(), PostgresSql(db)
    if _row(db, "SELECT 1 AS x FROM memories WHERE id = :id", {"id": m.id}) is not None:
        return False
    if convergence.claim_holder(sql, m.title, m.namespace, at.partition) is not None:
        return False
    shown = m.title if _title_holder(db, m.title, m.namespace) is None else conflict_title(m.title, m.id)
    inserted = db.execute(_INSERT, {**m.to_payload(), "title": shown, "tags": json_column(m.tags),
                                    "metadata": json_column(m.metadata), "last_accessed_at": m.last_accessed_at,
                                    "expires_at": m.expires_at})
    if inserted.rowcount != 1:
        return False
    convergence.record_claim(sql, m.id, m.title, m.namespace, at)
    convergence.resolve(sql, m.namespace, m.title)
    return True


def _title_holder(db: Connection, title: str, namespace: str) -> RowMapping | None:
    return _row(db, "SELECT id, tier, expires_at, metadata FROM memories WHERE title = :t AND namespace = :n",
                {"t": title, "n": namespace})


def _merge(db: Connection, existing: RowMapping, m: Memory) -> None:
    v = merged_values(existing["tier"], existing["expires_at"], existing["metadata"], m)
    db.execute(_MERGE, {**v, "tags": json_column(v["tags"]), "metadata": json_column(v["metadata"]),
                        "id": existing["id"]})
    convergence.joins(PostgresSql(db), existing["id"])


def _claimed(db: Connection, title: str, namespace: str) -> RowMapping | None:
    """The row a store of (namespace, title) clashes with: its own partition's claim (with one partition, the
    memory holding the title)."""
    holder = convergence.claim_holder(PostgresSql(db), title, namespace, applying().partition)
    return None if holder is None else _row(db, "SELECT id, tier, expires_at, metadata FROM memories WHERE id = :id",
                                            {"id": holder})


def _store(db: Connection, m: Memory, on_conflict: OnConflict | None = None) -> None:
    place_store(m, on_conflict,
                buried_id=lambda i: _row(db, "SELECT 1 AS x FROM memory_tombstones WHERE id = :id", {"id": i})
                is not None,
                insert=lambda memory: _insert(db, memory), title_holder=lambda t: _claimed(db, t, m.namespace),
                merge=lambda holder, memory: _merge(db, holder, memory))


def _stored_today(db: Connection, agent_id: str, day: str) -> int:
    row = _row(db, "SELECT memories_today FROM agent_quotas WHERE agent_id = :a AND day = :d",
               {"a": agent_id, "d": day})
    return int(row["memories_today"]) if row is not None else 0


def apply_stored(db: Connection, event: MemoryStored) -> None:
    check_daily_quota(event, lambda agent, day: _stored_today(db, agent, day))
    _store(db, event.memory, event.on_conflict)


def apply_imported(db: Connection, event: MemoryImported) -> None:
    _store(db, event.memory)


def apply_updated(db: Connection, event: MemoryUpdated) -> None:
    row = _row(db, "SELECT tier, title, namespace, metadata FROM memories WHERE id = :id", {"id": event.id})
    if row is None:
        raise Inapplicable(f"memory {event.id} does not exist")
    sets = updated_values(event, row["tier"], row["metadata"])
    settle = convergence.claim_update(PostgresSql(db), event.id, sets, dict(row))
    assignments = []
    for name in sets:
        cast = name in ("tags", "metadata")
        assignments.append(f"{name} = CAST(:{name} AS jsonb)" if cast else f"{name} = :{name}")
        if cast:
            sets[name] = json_column(sets[name])
    db.execute(text(f"UPDATE memories SET {', '.join(assignments)} WHERE id = :memory_id"),
               {**sets, "memory_id": event.id})
    settle()


def apply_deleted(db: Connection, event: MemoryDeleted) -> None:
    """Delete and leave a tombstone (even for an id not present here: a copy may still arrive)."""
    db.execute(text("DELETE FROM memories WHERE id = :id"), {"id": event.id})
    db.execute(text("INSERT INTO memory_tombstones (id) VALUES (:id) ON CONFLICT (id) DO NOTHING"), {"id": event.id})
    # Another region's claim of its title, kept under a conflict title, takes it.
    convergence.drop_claim(PostgresSql(db), event.id)


def apply_promoted(db: Connection, event: MemoryPromoted) -> None:
    db.execute(text("UPDATE memories SET tier = :tier, expires_at = NULL, updated_at = :at WHERE id = :id"),
               {"tier": event.tier, "at": event.updated_at, "id": event.id})


_TOUCH = (
    text("UPDATE memories SET access_count = least(access_count + 1, :max_access), last_accessed_at = :at, "
         "expires_at = CASE WHEN expires_at IS NULL THEN NULL WHEN tier = 'short' THEN :short_exp "
         "WHEN tier = 'mid' THEN :mid_exp ELSE expires_at END WHERE id = :id"),
    text("UPDATE memories SET tier = 'long', expires_at = NULL, updated_at = :at "
         "WHERE id = :id AND tier = 'mid' AND access_count >= :promote_at"),
    text("UPDATE memories SET priority = least(priority + 1, :max_priority) WHERE id = :id AND access_count > 0 "
         "AND access_count % :every = 0 AND priority < :max_priority"),
)


def apply_touched(db: Connection, event: MemoryTouched) -> None:
    r = event.rules
    params = {"max_access": r.max_access_count, "at": event.at, "short_exp": shift_ts(event.at, r.short_extend_secs),
              "mid_exp": shift_ts(event.at, r.mid_extend_secs), "promote_at": r.promote_mid_at,
              "max_priority": r.max_priority, "every": r.priority_every}
    for memory_id in dict.fromkeys(event.ids):
        for statement in _TOUCH:
            db.execute(statement, {**params, "id": memory_id})


def apply_expired(db: Connection, event: MemoryExpired) -> None:
    gone = db.execute(text("DELETE FROM memories WHERE id = ANY(:ids) AND expires_at IS NOT NULL "
                           "AND expires_at < :at RETURNING id"), {"ids": list(event.ids), "at": event.at})
    for (memory_id,) in gone.all():
        convergence.drop_claim(PostgresSql(db), memory_id)


def apply_forgotten(db: Connection, event: MemoryForgotten) -> None:
    # A bulk clean-up, like GC: no tombstones (importing an export afterwards restores those memories).
    db.execute(text("DELETE FROM memories WHERE id = ANY(:ids)"), {"ids": list(event.ids)})
    for memory_id in event.ids:
        convergence.drop_claim(PostgresSql(db), memory_id)


def apply_embedded(db: Connection, event: MemoryEmbedded) -> None:
    raw = vector_bytes(event)
    # One statement: the vector goes in only if its memory exists.
    done = db.execute(text("INSERT INTO memory_vectors (id, model, dim, vector) SELECT :id, :model, :dim, "
                           "CAST(:vector AS vector) WHERE EXISTS (SELECT 1 FROM memories WHERE id = :id) "
                           "ON CONFLICT (id) DO UPDATE SET model = excluded.model, dim = excluded.dim, "
                           "vector = excluded.vector"),
                      {"id": event.id, "model": event.model, "dim": event.dim, "vector": vector_literal(raw)})
    if done.rowcount == 0:
        raise Inapplicable(f"memory {event.id} does not exist")


APPLIERS: dict[str, Callable[[Connection, Any], None]] = {
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
