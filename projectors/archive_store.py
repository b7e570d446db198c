"""The archive's appliers, written once for both read models over :class:`~projectors.sql.Sql`:
``archived_memories`` keeps every memory column, when and why it was archived, what a restore puts back, and
the vector.

Order matters when a memory is archived: its row (and its vector, from ``memory_vectors``) is copied first,
then the live row is deleted, which drops the live vector through the ``memory_vectors_ad`` trigger (both
backends have one).

Concurrent archive events on one memory in two regions converge (docs/regions.md, "Convergence"): two archives
show the earlier one's time and reason (merge order); a restore wins over another region's purge of the same
archived memory (the restore carries the whole memory, the purge only removed its archived copy); within one
region the log decides.
"""

from __future__ import annotations

from infra.log import LogRecord
from projectors.appliers import SqlApplier
from projectors.convergence import mark_of, set_mark
from projectors.merge_order import applying, partition_of
from projectors.rules import Inapplicable, json_column, title_clash
from projectors.sql import Sql, chunks, first, in_list
from schemas.events import ArchivePurged, MemoriesArchived, MemoryRestored

__all__ = ["APPLIERS", "MEMORY_COLUMNS", "ROW_COLUMNS"]

MEMORY_COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, "
                  "created_at, updated_at, last_accessed_at, expires_at, metadata")
ROW_COLUMNS = f"{MEMORY_COLUMNS}, archived_at, archive_reason, original_tier, original_expires_at"
_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in MEMORY_COLUMNS.split(","))
_ARCHIVE_COLUMNS = (*[c.strip() for c in ROW_COLUMNS.split(",")], "vector_model", "vector_dim", "vector")
# Archiving an id already archived (and live again under it) replaces the archived row, as INSERT OR REPLACE.
_UPSERT = "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _ARCHIVE_COLUMNS[1:])
_EXPIRED = " AND m.expires_at IS NOT NULL AND m.expires_at < :at"
#: Marks (merge keys, :func:`projectors.convergence.mark_of`) per memory: the archive whose time and reason its
#: archived row shows, and its last purge.
_ARCHIVED = "archived:"
_PURGED = "purged:"


def _archived(sql: Sql, event: MemoriesArchived, _record: LogRecord) -> None:
    cond = _EXPIRED if event.expired_only else ""
    at = applying().key
    for chunk in chunks(list(dict.fromkeys(event.ids))):
        ids, params = in_list(chunk)
        params = {**params, "at": event.at, "reason": event.reason}
        live = {r["id"] for r in sql.rows(f"SELECT m.id FROM memories m WHERE m.id IN ({ids}){cond}", params)}
        # The WHERE before ON CONFLICT is needed: SQLite reads "SELECT … ON CONFLICT" as a join constraint.
        sql.run(f"INSERT INTO archived_memories ({', '.join(_ARCHIVE_COLUMNS)}) "
                f"SELECT {_M_COLUMNS}, :at, :reason, m.tier, m.expires_at, v.model, v.dim, v.vector "
                f"FROM memories m LEFT JOIN memory_vectors v ON v.id = m.id WHERE m.id IN ({ids}){cond} {_UPSERT}",
                params)
        sql.run(f"DELETE FROM memories AS m WHERE m.id IN ({ids}){cond}", params)
        for memory_id in chunk:
            if memory_id in live:
                set_mark(sql, _ARCHIVED + memory_id, at)
            else:
                _earlier_archive(sql, memory_id, event, at)


def _earlier_archive(sql: Sql, memory_id: str, event: MemoriesArchived, at: str) -> None:
    """Two regions archived one memory concurrently: the archive earlier in merge order moved it (the other
    found it gone), so its time and reason show, whichever this node read first."""
    shown = mark_of(sql, _ARCHIVED + memory_id)
    if shown is None or shown <= at:
        return  # not archived here, or archived by this event's predecessor: nothing to move (as before)
    cond = " AND original_expires_at IS NOT NULL AND original_expires_at < :at" if event.expired_only else ""
    if sql.run(f"UPDATE archived_memories SET archived_at = :at, archive_reason = :reason WHERE id = :id{cond}",
               {"id": memory_id, "at": event.at, "reason": event.reason}):
        set_mark(sql, _ARCHIVED + memory_id, at)


def _restored(sql: Sql, event: MemoryRestored, _record: LogRecord) -> None:
    m = event.memory
    if first(sql, "SELECT 1 AS x FROM archived_memories WHERE id = :id", {"id": m.id}) is None and (
            not _purged_elsewhere(sql, m.id) or _live(sql, m.id)):
        raise Inapplicable(f"memory {m.id} is not in the archive")
    if _live(sql, m.id):
        raise Inapplicable(f"memory {m.id} is live already")
    clash = first(sql, "SELECT id FROM memories WHERE title = :t AND namespace = :n", {"t": m.title, "n": m.namespace})
    if clash is not None:
        raise title_clash(m.title, m.namespace, clash["id"])
    sql.run("DELETE FROM archived_memories WHERE id = :id", {"id": m.id})
    json_param = sql.dialect.json_param
    sql.run(f"INSERT INTO memories ({MEMORY_COLUMNS}) VALUES (:id, :tier, :namespace, :title, :content, "
            f"{json_param('tags')}, :priority, :confidence, :source, :access_count, :created_at, :updated_at, "
            f":last_accessed_at, :expires_at, {json_param('metadata')})",
            {**m.to_payload(), "tags": json_column(m.tags), "metadata": json_column(m.metadata)})


def _purged_elsewhere(sql: Sql, memory_id: str) -> bool:
    """Whether another partition purged the memory: its restore comes from a region that had not seen the purge,
    and wins (whichever a node reads first). Within one partition the log decides: a restore after a purge finds
    nothing to restore, as on a single node."""
    purge = mark_of(sql, _PURGED + memory_id)
    return purge is not None and partition_of(purge) != applying().partition


def _live(sql: Sql, memory_id: str) -> bool:
    return first(sql, "SELECT 1 AS x FROM memories WHERE id = :id", {"id": memory_id}) is not None


def _purged(sql: Sql, event: ArchivePurged, _record: LogRecord) -> None:
    at = applying().key
    for chunk in chunks(list(event.ids)):
        ids, params = in_list(chunk)
        where = f"WHERE id IN ({ids}) AND (CAST(:before AS text) IS NULL OR archived_at < :before)"
        values: dict[str, str | None] = {**params, "before": event.before}
        gone = [r["id"] for r in sql.rows(f"SELECT id FROM archived_memories {where}", values)]
        sql.run(f"DELETE FROM archived_memories {where}", values)
        for memory_id in gone:
            set_mark(sql, _PURGED + memory_id, at)  # for a concurrent restore that arrives after the purge


APPLIERS: dict[str, SqlApplier] = {
    MemoriesArchived.TYPE: _archived,
    MemoryRestored.TYPE: _restored,
    ArchivePurged.TYPE: _purged,
}
