"""The archive in the SQLite read model: ``archived_memories`` (every memory column, when and why it was
archived, what a restore puts back, and the vector), its appliers and its queries.

Order matters when a memory is archived: its row (and its vector, from ``memory_vectors``) is copied first,
then the live row is deleted, which drops the live vector through the ``memory_vectors_ad`` trigger.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from infra.log import LogRecord
from projectors.archive_queries import ArchivedMemory, ArchivedVector, ArchiveQueries, ArchiveStats
from projectors.rules import Inapplicable, json_column, title_clash
from projectors.sqlite.queries import row_to_memory
from schemas.events import ArchivePurged, MemoriesArchived, MemoryRestored

__all__ = ["APPLIERS", "DDL", "SQLiteArchiveQueries"]

DDL = """
CREATE TABLE IF NOT EXISTS archived_memories (
    id                  TEXT PRIMARY KEY,
    tier                TEXT NOT NULL,
    namespace           TEXT NOT NULL,
    title               TEXT NOT NULL,
    content             TEXT NOT NULL,
    tags                TEXT NOT NULL DEFAULT '[]',
    priority            INTEGER NOT NULL,
    confidence          REAL NOT NULL,
    source              TEXT NOT NULL,
    access_count        INTEGER NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    last_accessed_at    TEXT,
    expires_at          TEXT,
    metadata            TEXT NOT NULL DEFAULT '{}',
    archived_at         TEXT NOT NULL,
    archive_reason      TEXT NOT NULL,
    original_tier       TEXT NOT NULL,
    original_expires_at TEXT,
    vector_model        TEXT,
    vector_dim          INTEGER,
    vector              BLOB
);
CREATE INDEX IF NOT EXISTS archived_memories_listing ON archived_memories (archived_at DESC, id);
CREATE INDEX IF NOT EXISTS archived_memories_namespace ON archived_memories (namespace);
"""

_MEMORY_COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, "
                   "created_at, updated_at, last_accessed_at, expires_at, metadata")
_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in _MEMORY_COLUMNS.split(","))
_ROW_COLUMNS = f"{_MEMORY_COLUMNS}, archived_at, archive_reason, original_tier, original_expires_at"
_EXPIRED = " AND m.expires_at IS NOT NULL AND m.expires_at < :at"


def apply_archived(db: sqlite3.Connection, event: MemoriesArchived, _record: LogRecord) -> None:
    cond = _EXPIRED if event.expired_only else ""
    params = [{"id": memory_id, "at": event.at, "reason": event.reason} for memory_id in dict.fromkeys(event.ids)]
    db.executemany(
        f"INSERT OR REPLACE INTO archived_memories ({_ROW_COLUMNS}, vector_model, vector_dim, vector) "
        f"SELECT {_M_COLUMNS}, :at, :reason, m.tier, m.expires_at, v.model, v.dim, v.vector "
        f"FROM memories m LEFT JOIN memory_vectors v ON v.id = m.id WHERE m.id = :id{cond}", params)
    db.executemany(f"DELETE FROM memories AS m WHERE m.id = :id{cond}", params)


def apply_restored(db: sqlite3.Connection, event: MemoryRestored, _record: LogRecord) -> None:
    m = event.memory
    if db.execute("SELECT 1 FROM archived_memories WHERE id = ?", (m.id,)).fetchone() is None:
        raise Inapplicable(f"memory {m.id} is not in the archive")
    if db.execute("SELECT 1 FROM memories WHERE id = ?", (m.id,)).fetchone() is not None:
        raise Inapplicable(f"memory {m.id} is live already")
    clash = db.execute("SELECT id FROM memories WHERE title = ? AND namespace = ?", (m.title, m.namespace)).fetchone()
    if clash is not None:
        raise title_clash(m.title, m.namespace, clash["id"])
    db.execute("DELETE FROM archived_memories WHERE id = ?", (m.id,))
    db.execute(
        f"INSERT INTO memories ({_MEMORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (m.id, m.tier, m.namespace, m.title, m.content, json_column(m.tags), m.priority, m.confidence, m.source,
         m.access_count, m.created_at, m.updated_at, m.last_accessed_at, m.expires_at, json_column(m.metadata)))


def apply_purged(db: sqlite3.Connection, event: ArchivePurged, _record: LogRecord) -> None:
    db.executemany("DELETE FROM archived_memories WHERE id = :id AND (:before IS NULL OR archived_at < :before)",
                   [{"id": memory_id, "before": event.before} for memory_id in event.ids])


APPLIERS: dict[str, Callable[[sqlite3.Connection, Any, LogRecord], None]] = {
    MemoriesArchived.TYPE: apply_archived,
    MemoryRestored.TYPE: apply_restored,
    ArchivePurged.TYPE: apply_purged,
}


def _archived(row: sqlite3.Row) -> ArchivedMemory:
    return ArchivedMemory(row_to_memory(row), row["archived_at"], row["archive_reason"], row["original_tier"],
                          row["original_expires_at"])


class SQLiteArchiveQueries(ArchiveQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def list_archived(self, *, namespace: str | None = None, limit: int = 50, offset: int = 0
                      ) -> list[ArchivedMemory]:
        where = "WHERE namespace = :ns" if namespace is not None else ""
        rows = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM archived_memories {where} "
                                "ORDER BY archived_at DESC, id LIMIT :limit OFFSET :offset",
                                {"ns": namespace, "limit": limit, "offset": offset})
        return [_archived(r) for r in rows]

    def get(self, memory_id: str) -> ArchivedMemory | None:
        row = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM archived_memories WHERE id = ?", (memory_id,)).fetchone()
        return None if row is None else _archived(row)

    def vector(self, memory_id: str) -> ArchivedVector | None:
        row = self._db.execute("SELECT vector_model, vector_dim, vector FROM archived_memories "
                               "WHERE id = ? AND vector IS NOT NULL", (memory_id,)).fetchone()
        return None if row is None else ArchivedVector(row[0], int(row[1]), bytes(row[2]))

    def stats(self) -> ArchiveStats:
        rows = self._db.execute("SELECT namespace, count(*) AS n FROM archived_memories GROUP BY namespace "
                                "ORDER BY n DESC, namespace").fetchall()
        return ArchiveStats(sum(r["n"] for r in rows), [{"namespace": r["namespace"], "count": r["n"]} for r in rows])

    def archived_before(self, before: str | None) -> list[str]:
        rows = self._db.execute("SELECT id FROM archived_memories WHERE :before IS NULL OR archived_at < :before "
                                "ORDER BY id", {"before": before})
        return [r["id"] for r in rows]

    def present(self, ids: list[str]) -> list[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            found.update(r["id"] for r in self._db.execute(f"SELECT id FROM archived_memories WHERE id IN ({marks})",
                                                           chunk))
        return [i for i in ids if i in found]
