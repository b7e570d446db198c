"""The memory queries over the SQLite read model (FTS5 for keywords)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from projectors.fts import EMPTY_QUERY, fts_query
from projectors.queries import (
    AmbiguousIdError,
    MemoryFilter,
    MemoryQueries,
    NamespaceCount,
    ScoredMemory,
    Stats,
)
from schemas import Memory

__all__ = ["SQLiteMemoryQueries", "row_to_memory"]

_COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, created_at, "
            "updated_at, last_accessed_at, expires_at, metadata")
_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))

# The original's composite keyword score; bm25 (fts.rank) is negative, so it is negated.
_SCORE = ("(fts.rank * -1) + (m.priority * 0.5) + (min(m.access_count, 50) * 0.1) + (m.confidence * 2.0) "
          "{tier_bonus} + (1.0 / (1.0 + (julianday(:now) - julianday(m.updated_at)) * 0.1))")
_TIER_BONUS = "+ (CASE m.tier WHEN 'long' THEN 3.0 WHEN 'mid' THEN 1.0 ELSE 0.0 END)"


def row_to_memory(row: sqlite3.Row) -> Memory:
    try:
        metadata = json.loads(row["metadata"])
    except (TypeError, ValueError):
        metadata = {}
    return Memory(
        id=row["id"], tier=row["tier"], namespace=row["namespace"], title=row["title"], content=row["content"],
        tags=json.loads(row["tags"]), priority=row["priority"], confidence=row["confidence"], source=row["source"],
        access_count=row["access_count"], created_at=row["created_at"], updated_at=row["updated_at"],
        last_accessed_at=row["last_accessed_at"], expires_at=row["expires_at"],
        metadata=metadata if isinstance(metadata, dict) else {})


def _where(flt: MemoryFilter, params: dict[str, Any], *, unexpired: bool = True) -> str:
    """SQL conditions (over alias ``m``) for a filter; parameters are added to ``params``."""
    conds = ["1"]
    if unexpired:
        params["now"] = flt.now
        conds.append("(m.expires_at IS NULL OR m.expires_at > :now)")
    if flt.namespaces:
        names = [f":ns{i}" for i in range(len(flt.namespaces))]
        params.update({f"ns{i}": ns for i, ns in enumerate(flt.namespaces)})
        conds.append(f"m.namespace IN ({', '.join(names)})")
    elif flt.namespace is not None:
        params["namespace"] = flt.namespace
        conds.append("m.namespace = :namespace")
    simple = (("tier", "m.tier = :tier"), ("min_priority", "m.priority >= :min_priority"),
              ("since", "m.created_at >= :since"), ("until", "m.created_at <= :until"),
              ("agent_id", "m.agent_id = :agent_id"),
              ("tag", "EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = :tag)"))
    for name, cond in simple:
        value = getattr(flt, name)
        if value is not None:
            params[name] = value
            conds.append(cond)
    if flt.as_agent is not None:
        conds.append(_visibility(flt.as_agent, params))
    return " AND ".join(conds)


def _visibility(as_agent: str, params: dict[str, Any]) -> str:
    params["as_agent"] = as_agent
    parts = as_agent.split("/")
    rules = ["m.scope = 'collective'", "(m.scope = 'private' AND m.namespace = :as_agent)"]
    for level, scope in ((1, "team"), (2, "unit"), (3, "org")):
        if len(parts) > level:
            key = f"anc{level}"
            params[key] = "/".join(parts[:-level])
            params[key + "_slash"] = params[key] + "/"
            rules.append(f"(m.scope = '{scope}' AND (m.namespace = :{key} OR "
                         f"substr(m.namespace, 1, length(:{key}_slash)) = :{key}_slash))")
    return "(" + " OR ".join(rules) + ")"


class SQLiteMemoryQueries(MemoryQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def _one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
        return row

    def get(self, memory_id: str) -> Memory | None:
        row = self._one(f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (memory_id,))
        if row is not None:
            return row_to_memory(row)
        prefix = memory_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE id LIKE ? ESCAPE '\\' LIMIT 21",
                                (prefix + "%",)).fetchall()
        if len(rows) > 1:
            raise AmbiguousIdError(memory_id, [r["id"] for r in rows])
        return row_to_memory(rows[0]) if rows else None

    def get_many(self, ids: list[str]) -> list[Memory]:
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE id IN ({marks})", ids).fetchall()
        by_id = {r["id"]: row_to_memory(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def find_by_title(self, title: str, namespace: str) -> Memory | None:
        row = self._one(f"SELECT {_COLUMNS} FROM memories WHERE title = ? AND namespace = ?", (title, namespace))
        return row_to_memory(row) if row is not None else None

    def list_memories(self, flt: MemoryFilter, *, limit: int, offset: int) -> list[Memory]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        sql = (f"SELECT {_M_COLUMNS} FROM memories m WHERE {_where(flt, params)} "
               "ORDER BY m.priority DESC, m.updated_at DESC LIMIT :limit OFFSET :offset")
        return [row_to_memory(r) for r in self._db.execute(sql, params)]

    def _ranked(self, match: str, flt: MemoryFilter, *, limit: int, tier_bonus: bool) -> list[sqlite3.Row]:
        params: dict[str, Any] = {"match": match, "limit": limit}
        score = _SCORE.format(tier_bonus=_TIER_BONUS if tier_bonus else "")
        sql = (f"SELECT {_M_COLUMNS}, {score} AS score FROM memories_fts fts "
               f"JOIN memories m ON m.rowid = fts.rowid WHERE memories_fts MATCH :match AND {_where(flt, params)} "
               "ORDER BY score DESC LIMIT :limit")
        return self._db.execute(sql, params).fetchall()

    def search(self, query: str, flt: MemoryFilter, *, limit: int) -> list[Memory]:
        match = fts_query(query, use_or=False)
        if match == EMPTY_QUERY:
            return []
        return [row_to_memory(r) for r in self._ranked(match, flt, limit=limit, tier_bonus=False)]

    def recall_keyword(self, context: str, flt: MemoryFilter, *, limit: int) -> list[ScoredMemory]:
        match = fts_query(context, use_or=True)
        if match == EMPTY_QUERY:
            return []
        rows = self._ranked(match, flt, limit=limit, tier_bonus=True)
        return [ScoredMemory(row_to_memory(r), float(r["score"])) for r in rows]

    def similar_titles(self, title: str, namespace: str, *, limit: int = 5) -> list[str]:
        match = fts_query(title, use_or=True)
        if match == EMPTY_QUERY:
            return []
        rows = self._db.execute(
            "SELECT m.id FROM memories_fts fts JOIN memories m ON m.rowid = fts.rowid "
            "WHERE memories_fts MATCH ? AND m.namespace = ? ORDER BY fts.rank LIMIT ?",
            ("title : (" + match + ")", namespace, limit)).fetchall()
        return [r["id"] for r in rows]

    def expired_ids(self, now: str, *, limit: int = 10_000) -> list[str]:
        rows = self._db.execute("SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at < ? "
                                "ORDER BY expires_at LIMIT ?", (now, limit)).fetchall()
        return [r["id"] for r in rows]

    def forget_ids(self, *, namespace: str | None, pattern: str | None, tier: str | None) -> list[str]:
        params: dict[str, Any] = {"namespace": namespace, "tier": tier}
        cond = "(:namespace IS NULL OR m.namespace = :namespace) AND (:tier IS NULL OR m.tier = :tier)"
        if pattern is not None and fts_query(pattern, use_or=True) != EMPTY_QUERY:
            params["match"] = fts_query(pattern, use_or=True)
            sql = ("SELECT m.id FROM memories_fts fts JOIN memories m ON m.rowid = fts.rowid "
                   f"WHERE memories_fts MATCH :match AND {cond}")
        elif pattern is not None:
            return []
        else:
            sql = f"SELECT m.id FROM memories m WHERE {cond}"
        return [r["id"] for r in self._db.execute(sql + " ORDER BY m.id", params)]

    def namespaces(self, now: str) -> list[NamespaceCount]:
        rows = self._db.execute("SELECT namespace, count(*) AS n FROM memories WHERE expires_at IS NULL OR "
                                "expires_at > ? GROUP BY namespace ORDER BY n DESC, namespace", (now,)).fetchall()
        return [NamespaceCount(r["namespace"], r["n"]) for r in rows]

    def stats(self, now: str, soon: str) -> Stats:
        (total,) = self._db.execute("SELECT count(*) FROM memories").fetchone()
        by_tier = [{"tier": r[0], "count": r[1]} for r in self._db.execute(
            "SELECT tier, count(*) AS n FROM memories GROUP BY tier ORDER BY n DESC, tier")]
        by_ns = [{"namespace": r[0], "count": r[1]} for r in self._db.execute(
            "SELECT namespace, count(*) AS n FROM memories GROUP BY namespace ORDER BY n DESC, namespace")]
        (expiring,) = self._db.execute("SELECT count(*) FROM memories WHERE expires_at IS NOT NULL AND "
                                       "expires_at > ? AND expires_at <= ?", (now, soon)).fetchone()
        (pages,) = self._db.execute("PRAGMA page_count").fetchone()
        (page_size,) = self._db.execute("PRAGMA page_size").fetchone()
        return Stats(total=total, by_tier=by_tier, by_namespace=by_ns, expiring_soon=expiring,
                     db_size_bytes=pages * page_size)

    def export(self, now: str) -> list[Memory]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM memories WHERE expires_at IS NULL OR expires_at > ? "
                                "ORDER BY created_at, id", (now,))
        return [row_to_memory(r) for r in rows]

    def vectors(self, ids: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._db.execute(f"SELECT id, vector FROM memory_vectors WHERE id IN ({marks})", chunk):
                out[row["id"]] = bytes(row["vector"])
        return out

    def vector_count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM memory_vectors").fetchone()
        return int(n)

    def filter_ids(self, ids: list[str], flt: MemoryFilter) -> list[str]:
        if not ids:
            return []
        params: dict[str, Any] = {f"id{i}": memory_id for i, memory_id in enumerate(ids)}
        marks = ", ".join(f":id{i}" for i in range(len(ids)))
        sql = f"SELECT m.id FROM memories m WHERE m.id IN ({marks}) AND {_where(flt, params)}"
        keep = {r["id"] for r in self._db.execute(sql, params)}
        return [i for i in ids if i in keep]

    def expiring_ids(self, now: str) -> list[str]:
        rows = self._db.execute("SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        return [r["id"] for r in rows]

    def embedding_sources(self, *, after_id: str = "", limit: int = 1000) -> list[tuple[str, str, str]]:
        rows = self._db.execute("SELECT id, title, content FROM memories WHERE id > ? ORDER BY id LIMIT ?",
                                (after_id, limit))
        return [(r["id"], r["title"], r["content"]) for r in rows]

    def all_memories(self) -> list[Memory]:
        return [row_to_memory(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM memories ORDER BY id")]
