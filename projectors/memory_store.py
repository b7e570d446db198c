"""How each memory event changes a read model, written once over :class:`~projectors.sql.Sql` for every backend.

Deterministic: no clock, no config, no randomness. Each ``apply_*`` runs inside the caller's transaction; an
event that cannot apply to the current state raises :class:`Inapplicable` and the store records it as rejected,
so one bad event cannot stall the log. The decisions themselves live in :mod:`projectors.rules`; what differs
between backends is asked of the :class:`~projectors.sql.Dialect` (JSON and vector columns, ``max``/``greatest``)
or passed in by the backend (how a vector is encoded for its column: :func:`bind`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from projectors import convergence
from projectors.merge_order import applying, conflict_title
from projectors.rules import (
    Inapplicable,
    check_daily_quota,
    json_column,
    merged_values,
    place_store,
    updated_values,
)
from projectors.sql import Sql, first
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

__all__ = ["VectorEncoder", "bind"]

DB = TypeVar("DB")
#: A backend's value for its vector column from a ``memory.embedded`` event; raises :class:`Inapplicable` for a
#: vector that column cannot hold (a malformed one, or one of another dimension where the column has one).
VectorEncoder = Callable[[MemoryEmbedded], object]

# What the stores and merges need of a row: the id, what merged_values reads, the title it shows.
_HOLDER = "SELECT id, tier, expires_at, metadata, title, namespace FROM memories"
_JSON_COLUMNS = ("tags", "metadata")


def _exists(sql: Sql, table: str, memory_id: str) -> bool:
    return first(sql, f"SELECT 1 AS found FROM {table} WHERE id = :id", {"id": memory_id}) is not None


def _holder(sql: Sql, where: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    row = first(sql, f"{_HOLDER} WHERE {where}", params)
    return None if row is None else {**row, "metadata": sql.dialect.json_value(row["metadata"])}


def _insert(sql: Sql, m: Memory) -> bool:
    """Insert ``m`` unless its id is taken or buried, or its partition already claims its (title, namespace);
    True when inserted. Another region's claim of the title does not stop it: both are kept and the claims
    resolved (:mod:`projectors.convergence`).

    The common case, a new memory under a free title, is one statement: the insert itself refuses a taken id,
    a buried one and a title shown by another memory; only when it refuses does a lookup tell a taken id
    (refused) from a title shown by a memory of no claim here (kept under its conflict title)."""
    at = applying()
    if convergence.claim_holder(sql, m.title, m.namespace, at.partition) is not None:
        return False
    inserted = _insert_row(sql, m, m.title)
    if not inserted:
        if _exists(sql, "memories", m.id):
            return False
        inserted = _insert_row(sql, m, conflict_title(m.title, m.id))
        if not inserted:
            return False
    convergence.record_claim(sql, m.id, m.title, m.namespace, at)
    if inserted == _UNDER_CONFLICT_TITLE or convergence.several_partitions(sql, at):
        # With one partition, a memory inserted under its own title is the only live claim of it, which already
        # shows it: nothing to resolve.
        convergence.resolve(sql, m.namespace, m.title)
    return True


_UNDER_CONFLICT_TITLE = 2


def _insert_row(sql: Sql, m: Memory, title: str) -> int:
    """Insert ``m`` under ``title`` unless its id or that title is taken or its id buried: 0 when refused, 1 when
    inserted under its own title, :data:`_UNDER_CONFLICT_TITLE` under another."""
    d = sql.dialect
    inserted = sql.run(
        "INSERT INTO memories (id, tier, namespace, title, content, tags, priority, confidence, source, "
        "access_count, created_at, updated_at, last_accessed_at, expires_at, metadata) SELECT :id, :tier, "
        f":namespace, :title, :content, {d.json_param('tags')}, :priority, :confidence, :source, :access_count, "
        f":created_at, :updated_at, :last_accessed_at, :expires_at, {d.json_param('metadata')} "
        "WHERE NOT EXISTS (SELECT 1 FROM memory_tombstones WHERE id = :id) ON CONFLICT DO NOTHING",
        {"id": m.id, "tier": m.tier, "namespace": m.namespace, "title": title, "content": m.content,
         "tags": json_column(m.tags), "priority": m.priority, "confidence": m.confidence, "source": m.source,
         "access_count": m.access_count, "created_at": m.created_at, "updated_at": m.updated_at,
         "last_accessed_at": m.last_accessed_at, "expires_at": m.expires_at, "metadata": json_column(m.metadata)})
    if inserted != 1:
        return 0
    return 1 if title == m.title else _UNDER_CONFLICT_TITLE


def _merge(sql: Sql, existing: Mapping[str, Any], m: Memory) -> None:
    d = sql.dialect
    v = merged_values(existing["tier"], existing["expires_at"], existing["metadata"], m)
    sql.run(f"UPDATE memories SET content = :content, tags = {d.json_param('tags')}, source = :source, "
            f"priority = {d.greatest('priority', ':priority')}, "
            f"confidence = {d.greatest('confidence', ':confidence')}, tier = :tier, updated_at = :updated_at, "
            f"expires_at = :expires_at, metadata = {d.json_param('metadata')} WHERE id = :id",
            {**v, "tags": json_column(v["tags"]), "metadata": json_column(v["metadata"]), "id": existing["id"]})
    convergence.joins(sql, existing["id"])


def _claimed(sql: Sql, title: str, namespace: str) -> dict[str, Any] | None:
    """The row a store of (namespace, title) clashes with: its own partition's claim (with one partition, the
    memory holding the title)."""
    holder = convergence.claim_holder(sql, title, namespace, applying().partition)
    return None if holder is None else _holder(sql, "id = :id", {"id": holder})


def _store(sql: Sql, memory: Memory, on_conflict: OnConflict | None = None) -> None:
    place_store(memory, on_conflict, buried_id=lambda i: _exists(sql, "memory_tombstones", i),
                insert=lambda m: _insert(sql, m), title_holder=lambda t: _claimed(sql, t, memory.namespace),
                merge=lambda holder, m: _merge(sql, holder, m))


def _stored_today(sql: Sql, agent_id: str, day: str) -> int:
    row = first(sql, "SELECT memories_today FROM agent_quotas WHERE agent_id = :a AND day = :d",
                {"a": agent_id, "d": day})
    return int(row["memories_today"]) if row is not None else 0


def apply_stored(sql: Sql, event: MemoryStored) -> None:
    check_daily_quota(event, lambda agent, day: _stored_today(sql, agent, day))
    _store(sql, event.memory, event.on_conflict)


def apply_imported(sql: Sql, event: MemoryImported) -> None:
    _store(sql, event.memory)


def apply_updated(sql: Sql, event: MemoryUpdated) -> None:
    row = _holder(sql, "id = :id", {"id": event.id})
    if row is None:
        raise Inapplicable(f"memory {event.id} does not exist")
    sets = updated_values(event, row["tier"], row["metadata"])
    settle = convergence.claim_update(sql, event.id, sets, row)
    assignments = ", ".join(f"{name} = {sql.dialect.json_param(name)}" if name in _JSON_COLUMNS else f"{name} = :{name}"
                            for name in sets)
    encoded = {name: json_column(value) if name in _JSON_COLUMNS else value for name, value in sets.items()}
    sql.run(f"UPDATE memories SET {assignments} WHERE id = :memory_id", {**encoded, "memory_id": event.id})
    settle()


def apply_deleted(sql: Sql, event: MemoryDeleted) -> None:
    """Delete and leave a tombstone (even for an id not present here: a copy may still arrive)."""
    sql.run("DELETE FROM memories WHERE id = :id", {"id": event.id})
    sql.run("INSERT INTO memory_tombstones (id) VALUES (:id) ON CONFLICT (id) DO NOTHING", {"id": event.id})
    # Another region's claim of its title, kept under a conflict title, takes it.
    convergence.drop_claim(sql, event.id)


def apply_promoted(sql: Sql, event: MemoryPromoted) -> None:
    sql.run("UPDATE memories SET tier = :tier, expires_at = NULL, updated_at = :at WHERE id = :id",
            {"tier": event.tier, "at": event.updated_at, "id": event.id})


def _touch_statement(sql: Sql) -> str:
    """The original's three touch updates folded into one statement per memory (right-hand sides see the old
    row, so ``n`` below is the new access count): one row write, one rank-table refresh."""
    d = sql.dialect
    n = d.least("access_count + 1", ":max_count")
    promoted = f"(tier = 'mid' AND {n} >= :promote_at)"
    return (f"UPDATE memories SET access_count = {n}, last_accessed_at = :at, "
            f"tier = CASE WHEN {promoted} THEN 'long' ELSE tier END, "
            f"expires_at = CASE WHEN {promoted} OR expires_at IS NULL THEN NULL WHEN tier = 'short' THEN :short_exp "
            "WHEN tier = 'mid' THEN :mid_exp ELSE expires_at END, "
            f"updated_at = CASE WHEN {promoted} THEN :at ELSE updated_at END, "
            f"priority = CASE WHEN {n} % :every = 0 AND priority < :max_priority THEN priority + 1 ELSE priority END "
            "WHERE id = :id")


def apply_touched(sql: Sql, event: MemoryTouched) -> None:
    r = event.rules
    statement = _touch_statement(sql)
    params = {"at": event.at, "max_count": r.max_access_count, "promote_at": r.promote_mid_at,
              "short_exp": shift_ts(event.at, r.short_extend_secs), "mid_exp": shift_ts(event.at, r.mid_extend_secs),
              "every": r.priority_every, "max_priority": r.max_priority}
    for memory_id in dict.fromkeys(event.ids):
        sql.run(statement, {**params, "id": memory_id})


def apply_expired(sql: Sql, event: MemoryExpired) -> None:
    for memory_id in event.ids:
        if sql.run("DELETE FROM memories WHERE id = :id AND expires_at IS NOT NULL AND expires_at < :at",
                   {"id": memory_id, "at": event.at}):
            convergence.drop_claim(sql, memory_id)


def apply_forgotten(sql: Sql, event: MemoryForgotten) -> None:
    # A bulk clean-up, like GC: no tombstones (importing an export afterwards restores those memories).
    for memory_id in event.ids:
        sql.run("DELETE FROM memories WHERE id = :id", {"id": memory_id})
        convergence.drop_claim(sql, memory_id)


def apply_embedded(encode: VectorEncoder, sql: Sql, event: MemoryEmbedded) -> None:
    """One vector per memory (readers ask for their own model's), going in only if its memory exists."""
    vector = encode(event)
    done = sql.run("INSERT INTO memory_vectors (id, model, dim, vector) SELECT :id, :model, :dim, "
                   f"{sql.dialect.vector_param('vector')} WHERE EXISTS (SELECT 1 FROM memories WHERE id = :id) "
                   "ON CONFLICT (id) DO UPDATE SET model = excluded.model, dim = excluded.dim, "
                   "vector = excluded.vector",
                   {"id": event.id, "model": event.model, "dim": event.dim, "vector": vector})
    if done == 0:
        raise Inapplicable(f"memory {event.id} does not exist")


def bind(adapter: Callable[[DB], Sql], encode_vector: VectorEncoder) -> dict[str, Callable[[DB, Any], None]]:
    """A backend's memory appliers (event type → ``apply(db, payload)``): each call wraps its connection in its
    :class:`Sql`; ``encode_vector`` makes the value its vector column holds."""
    appliers: dict[str, Callable[[Sql, Any], None]] = {
        MemoryStored.TYPE: apply_stored,
        MemoryImported.TYPE: apply_imported,
        MemoryUpdated.TYPE: apply_updated,
        MemoryDeleted.TYPE: apply_deleted,
        MemoryPromoted.TYPE: apply_promoted,
        MemoryTouched.TYPE: apply_touched,
        MemoryExpired.TYPE: apply_expired,
        MemoryForgotten.TYPE: apply_forgotten,
        MemoryEmbedded.TYPE: partial(apply_embedded, encode_vector),
    }

    def over(fn: Callable[[Sql, Any], None]) -> Callable[[DB, Any], None]:
        return lambda db, payload: fn(adapter(db), payload)

    return {event_type: over(fn) for event_type, fn in appliers.items()}
