"""What the archive read model answers (archived memories, their vectors, counts), whatever the database.

The reads are written once (:class:`SqlArchiveQueries`, over :class:`~projectors.sql.Sql`): both backends fill
:class:`ArchivedMemory` the same way and order the same way (newest archive first, then by id), so an answer
does not depend on the backend.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from projectors.archive_store import ROW_COLUMNS
from projectors.memory_queries import row_to_memory
from projectors.sql import Sql, chunks, first, in_list
from schemas import Memory

__all__ = ["ArchiveQueries", "ArchiveStats", "ArchivedMemory", "ArchivedVector", "SqlArchiveQueries"]


@dataclass(frozen=True, slots=True)
class ArchivedVector:
    """The vector the memory had when it was archived (so a restore needs no model)."""

    model: str
    dim: int
    vector: bytes


@dataclass(frozen=True, slots=True)
class ArchivedMemory:
    """An archived memory: the memory as it was, when and why it was archived, and what a restore puts back."""

    memory: Memory
    archived_at: str
    archive_reason: str
    original_tier: str
    original_expires_at: str | None

    def to_api(self) -> dict[str, Any]:
        """The original's archive row (``list_archived``): the memory's columns plus ``archived_at`` and
        ``archive_reason``; ``last_accessed_at`` and ``expires_at`` are null when unset (not left out, as the
        original builds this row by hand), and ``tags`` is the JSON text of the list, as the original sends it."""
        m = self.memory
        return {"id": m.id, "tier": m.tier, "namespace": m.namespace, "title": m.title, "content": m.content,
                "tags": _tags_text(m.tags), "priority": m.priority, "confidence": m.confidence, "source": m.source,
                "access_count": m.access_count, "created_at": m.created_at, "updated_at": m.updated_at,
                "last_accessed_at": m.last_accessed_at, "expires_at": m.expires_at,
                "archived_at": self.archived_at, "archive_reason": self.archive_reason, "metadata": m.metadata}


def _tags_text(tags: list[str]) -> str:
    """serde_json's compact form of a string list (the original stores tags as this text)."""
    return json.dumps(tags, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ArchiveStats:
    total: int
    #: ``{"namespace", "count"}``, most archived first (ties by namespace).
    by_namespace: list[dict[str, Any]]

    def to_api(self) -> dict[str, Any]:
        """The original's ``archive_stats`` body."""
        return {"archived_total": self.total, "by_namespace": self.by_namespace}


class ArchiveQueries(ABC):
    """Reads of the archive. Timestamps are RFC 3339 strings."""

    @abstractmethod
    def list_archived(self, *, namespace: str | None = None, limit: int = 50, offset: int = 0
                      ) -> list[ArchivedMemory]:
        """Archived memories, newest archive first (then by id), optionally of one namespace."""

    @abstractmethod
    def get(self, memory_id: str) -> ArchivedMemory | None:
        """The archived memory with this exact id, or None."""

    @abstractmethod
    def vector(self, memory_id: str) -> ArchivedVector | None:
        """The archived memory's vector, or None (not archived, or it had none)."""

    @abstractmethod
    def stats(self) -> ArchiveStats: ...

    @abstractmethod
    def archived_before(self, before: str | None) -> list[str]:
        """Ids archived strictly before ``before`` (every archived id when None), by id."""

    @abstractmethod
    def present(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` that are in the archive, in the given order."""

    @abstractmethod
    def get_many(self, ids: list[str]) -> list[ArchivedMemory]:
        """The archived memories among ``ids``, in the given order."""


class SqlArchiveQueries(ArchiveQueries):
    """The archive reads, one set of SQL for both read models: a backend only says how a statement runs."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def _archived(self, row: Mapping[str, Any]) -> ArchivedMemory:
        # An archived row holds the memory's own columns under their names: it reads as a live one does.
        return ArchivedMemory(row_to_memory(row), row["archived_at"], row["archive_reason"],
                              row["original_tier"], row["original_expires_at"])

    def list_archived(self, *, namespace: str | None = None, limit: int = 50, offset: int = 0
                      ) -> list[ArchivedMemory]:
        where = "WHERE namespace = :ns" if namespace is not None else ""
        rows = self._sql.rows(f"SELECT {ROW_COLUMNS} FROM archived_memories {where} "
                              "ORDER BY archived_at DESC, id LIMIT :limit OFFSET :offset",
                              {"ns": namespace, "limit": limit, "offset": offset})
        return [self._archived(r) for r in rows]

    def get(self, memory_id: str) -> ArchivedMemory | None:
        row = first(self._sql, f"SELECT {ROW_COLUMNS} FROM archived_memories WHERE id = :id", {"id": memory_id})
        return None if row is None else self._archived(row)

    def vector(self, memory_id: str) -> ArchivedVector | None:
        dialect = self._sql.dialect
        row = first(self._sql, f"SELECT vector_model, vector_dim, {dialect.vector_column('vector')} AS v "
                               "FROM archived_memories WHERE id = :id AND vector IS NOT NULL", {"id": memory_id})
        return None if row is None else ArchivedVector(row["vector_model"], int(row["vector_dim"]),
                                                        dialect.vector_bytes(row["v"]))

    def stats(self) -> ArchiveStats:
        rows = self._sql.rows("SELECT namespace, count(*) AS n FROM archived_memories GROUP BY namespace "
                              "ORDER BY n DESC, namespace", {})
        return ArchiveStats(sum(int(r["n"]) for r in rows),
                            [{"namespace": r["namespace"], "count": int(r["n"])} for r in rows])

    def archived_before(self, before: str | None) -> list[str]:
        rows = self._sql.rows("SELECT id FROM archived_memories WHERE CAST(:before AS text) IS NULL "
                              "OR archived_at < :before ORDER BY id", {"before": before})
        return [r["id"] for r in rows]

    def get_many(self, ids: list[str]) -> list[ArchivedMemory]:
        found: dict[str, ArchivedMemory] = {}
        for chunk in chunks(ids):
            marks, params = in_list(chunk)
            for row in self._sql.rows(f"SELECT {ROW_COLUMNS} FROM archived_memories WHERE id IN ({marks})", params):
                found[row["id"]] = self._archived(row)
        return [found[i] for i in ids if i in found]

    def present(self, ids: list[str]) -> list[str]:
        found: set[str] = set()
        for chunk in chunks(ids):
            marks, params = in_list(chunk)
            found.update(r["id"] for r in self._sql.rows(f"SELECT id FROM archived_memories WHERE id IN ({marks})",
                                                         params))
        return [i for i in ids if i in found]
