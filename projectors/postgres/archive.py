"""The archive in the Postgres read model: the same appliers and queries as :mod:`projectors.sqlite.archive`,
in Postgres SQL. As there, a memory's row and vector are copied to the archive before the live row is deleted
(which drops the live vector through the ``memory_vectors_ad`` trigger)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, RowMapping, text

from infra.log import LogRecord
from projectors.archive_queries import ArchivedMemory, ArchivedVector, ArchiveQueries, ArchiveStats
from projectors.postgres.errors import mapped_errors
from projectors.postgres.queries import row_to_memory
from projectors.rules import Inapplicable, json_column, title_clash
from schemas.events import ArchivePurged, MemoriesArchived, MemoryRestored

__all__ = ["APPLIERS", "PostgresArchiveQueries"]

_MEMORY_COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, "
                   "created_at, updated_at, last_accessed_at, expires_at, metadata")
_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in _MEMORY_COLUMNS.split(","))
_ROW_COLUMNS = f"{_MEMORY_COLUMNS}, archived_at, archive_reason, original_tier, original_expires_at"
_EXPIRED = " AND m.expires_at IS NOT NULL AND m.expires_at < :at"


def apply_archived(db: Connection, event: MemoriesArchived, _record: LogRecord) -> None:
    cond = _EXPIRED if event.expired_only else ""
    ids = list(dict.fromkeys(event.ids))
    if not ids:
        return
    params = {"ids": ids, "at": event.at, "reason": event.reason}
    db.execute(text(
        f"INSERT INTO archived_memories ({_ROW_COLUMNS}, vector_model, vector_dim, vector) "
        f"SELECT {_M_COLUMNS}, :at, :reason, m.tier, m.expires_at, v.model, v.dim, v.vector "
        f"FROM memories m LEFT JOIN memory_vectors v ON v.id = m.id WHERE m.id = ANY(:ids){cond} "
        "ON CONFLICT (id) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in (*[c.strip() for c in _ROW_COLUMNS.split(",")][1:],
                                            "vector_model", "vector_dim", "vector"))), params)
    db.execute(text(f"DELETE FROM memories m WHERE m.id = ANY(:ids){cond}"), params)


def _exists(db: Connection, sql: str, params: dict[str, Any]) -> RowMapping | None:
    return db.execute(text(sql), params).mappings().first()


def apply_restored(db: Connection, event: MemoryRestored, _record: LogRecord) -> None:
    m = event.memory
    if _exists(db, "SELECT 1 FROM archived_memories WHERE id = :id", {"id": m.id}) is None:
        raise Inapplicable(f"memory {m.id} is not in the archive")
    if _exists(db, "SELECT 1 FROM memories WHERE id = :id", {"id": m.id}) is not None:
        raise Inapplicable(f"memory {m.id} is live already")
    clash = _exists(db, "SELECT id FROM memories WHERE title = :t AND namespace = :n",
                    {"t": m.title, "n": m.namespace})
    if clash is not None:
        raise title_clash(m.title, m.namespace, clash["id"])
    db.execute(text("DELETE FROM archived_memories WHERE id = :id"), {"id": m.id})
    db.execute(text(
        f"INSERT INTO memories ({_MEMORY_COLUMNS}) VALUES (:id, :tier, :namespace, :title, :content, "
        "CAST(:tags AS jsonb), :priority, :confidence, :source, :access_count, :created_at, :updated_at, "
        ":last_accessed_at, :expires_at, CAST(:metadata AS jsonb))"),
        {**m.to_payload(), "tags": json_column(m.tags), "metadata": json_column(m.metadata)})


def apply_purged(db: Connection, event: ArchivePurged, _record: LogRecord) -> None:
    if event.ids:
        db.execute(text("DELETE FROM archived_memories WHERE id = ANY(:ids) "
                        "AND (CAST(:before AS text) IS NULL OR archived_at < :before)"),
                   {"ids": list(event.ids), "before": event.before})


APPLIERS: dict[str, Callable[[Connection, Any, LogRecord], None]] = {
    MemoriesArchived.TYPE: apply_archived,
    MemoryRestored.TYPE: apply_restored,
    ArchivePurged.TYPE: apply_purged,
}


def _archived(row: RowMapping) -> ArchivedMemory:
    return ArchivedMemory(row_to_memory(row), row["archived_at"], row["archive_reason"], row["original_tier"],
                          row["original_expires_at"])


class PostgresArchiveQueries(ArchiveQueries):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[RowMapping]:
        with mapped_errors(), self._engine.connect() as conn:
            return list(conn.execute(text(sql), params or {}).mappings())

    def list_archived(self, *, namespace: str | None = None, limit: int = 50, offset: int = 0
                      ) -> list[ArchivedMemory]:
        where = "WHERE namespace = :ns" if namespace is not None else ""
        rows = self._rows(f"SELECT {_ROW_COLUMNS} FROM archived_memories {where} "
                          "ORDER BY archived_at DESC, id LIMIT :limit OFFSET :offset",
                          {"ns": namespace, "limit": limit, "offset": offset})
        return [_archived(r) for r in rows]

    def get(self, memory_id: str) -> ArchivedMemory | None:
        rows = self._rows(f"SELECT {_ROW_COLUMNS} FROM archived_memories WHERE id = :id", {"id": memory_id})
        return _archived(rows[0]) if rows else None

    def vector(self, memory_id: str) -> ArchivedVector | None:
        rows = self._rows("SELECT vector_model, vector_dim, CAST(vector AS text) AS v FROM archived_memories "
                          "WHERE id = :id AND vector IS NOT NULL", {"id": memory_id})
        if not rows:
            return None
        row = rows[0]
        raw = np.array(row["v"][1:-1].split(","), dtype="<f4").tobytes()
        return ArchivedVector(row["vector_model"], int(row["vector_dim"]), raw)

    def stats(self) -> ArchiveStats:
        rows = self._rows("SELECT namespace, count(*) AS n FROM archived_memories GROUP BY namespace "
                          "ORDER BY n DESC, namespace")
        return ArchiveStats(sum(int(r["n"]) for r in rows),
                            [{"namespace": r["namespace"], "count": int(r["n"])} for r in rows])

    def archived_before(self, before: str | None) -> list[str]:
        rows = self._rows("SELECT id FROM archived_memories WHERE CAST(:before AS text) IS NULL "
                          "OR archived_at < :before ORDER BY id", {"before": before})
        return [r["id"] for r in rows]

    def present(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        found = {r["id"] for r in self._rows("SELECT id FROM archived_memories WHERE id = ANY(:ids)", {"ids": ids})}
        return [i for i in ids if i in found]
