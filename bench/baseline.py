"""The baseline: the same memories written straight into SQLite + FTS5, with no log, no signing, no projector.

This is what a plain (non-event-sourced) memory server does: the read model's ``memories`` table shape with
its FTS5 external-content index kept by triggers, one ``BEGIN IMMEDIATE`` transaction per store under
``synchronous=FULL`` in WAL mode (durable on acknowledgement, like our log append), an upsert on
(title, namespace), and recall as the original's composite-score SQL. A store also does the original's reads
(conflict lookup, potential contradictions), so the ratio measures what event sourcing adds: signing, the
log append, the projector. The DDL is a deliberate copy, so the baseline stays fixed while the read model
evolves.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.corpus import Draft
from projectors import fts_query
from schemas import format_ts, now_ts, parse_ts

__all__ = ["COLUMNS", "BaselineDB", "Row", "draft_row", "read_rows"]

Row = tuple[Any, ...]

_DDL = """
CREATE TABLE IF NOT EXISTS memories (
    id               TEXT PRIMARY KEY,
    tier             TEXT NOT NULL,
    namespace        TEXT NOT NULL,
    title            TEXT NOT NULL,
    content          TEXT NOT NULL,
    tags             TEXT NOT NULL DEFAULT '[]',
    priority         INTEGER NOT NULL DEFAULT 5,
    confidence       REAL NOT NULL DEFAULT 1.0,
    source           TEXT NOT NULL DEFAULT 'api',
    access_count     INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_accessed_at TEXT,
    expires_at       TEXT,
    metadata         TEXT NOT NULL DEFAULT '{}',
    agent_id         TEXT GENERATED ALWAYS AS (json_extract(metadata, '$.agent_id')) VIRTUAL,
    scope            TEXT GENERATED ALWAYS AS (coalesce(json_extract(metadata, '$.scope'), 'private')) VIRTUAL,
    UNIQUE (title, namespace)
);
CREATE INDEX IF NOT EXISTS memories_namespace ON memories (namespace);
CREATE INDEX IF NOT EXISTS memories_rank ON memories (priority DESC, updated_at DESC);
CREATE INDEX IF NOT EXISTS memories_expires ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS memories_created ON memories (created_at);
CREATE INDEX IF NOT EXISTS memories_agent ON memories (agent_id);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    title, content, tags, content='memories', content_rowid='rowid'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, title, content, tags) VALUES (new.rowid, new.title, new.content, new.tags);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, title, content, tags)
    VALUES ('delete', old.rowid, old.title, old.content, old.tags);
END;
CREATE TRIGGER IF NOT EXISTS memories_au AFTER UPDATE OF title, content, tags ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, title, content, tags)
    VALUES ('delete', old.rowid, old.title, old.content, old.tags);
    INSERT INTO memories_fts (rowid, title, content, tags) VALUES (new.rowid, new.title, new.content, new.tags);
END;
"""

COLUMNS = ("id, tier, namespace, title, content, tags, priority, confidence, source, access_count, created_at, "
           "updated_at, last_accessed_at, expires_at, metadata")

_INSERT = f"INSERT INTO memories ({COLUMNS}) VALUES ({', '.join('?' * 15)})"
_UPSERT = (_INSERT + " ON CONFLICT (title, namespace) DO UPDATE SET content = excluded.content, "
           "tags = excluded.tags, source = excluded.source, priority = max(priority, excluded.priority), "
           "confidence = max(confidence, excluded.confidence), updated_at = excluded.updated_at")

# The read model's keyword recall, verbatim: composite score with the tier bonus, unexpired rows only.
_RECALL = (
    "SELECT m.id, m.title, (fts.rank * -1) + (m.priority * 0.5) + (min(m.access_count, 50) * 0.1) "
    "+ (m.confidence * 2.0) + (CASE m.tier WHEN 'long' THEN 3.0 WHEN 'mid' THEN 1.0 ELSE 0.0 END) "
    "+ (1.0 / (1.0 + (julianday(:now) - julianday(m.updated_at)) * 0.1)) AS score "
    "FROM memories_fts fts JOIN memories m ON m.rowid = fts.rowid "
    "WHERE memories_fts MATCH :match AND (m.expires_at IS NULL OR m.expires_at > :now) "
    "ORDER BY score DESC LIMIT :limit")

_CONTRADICTIONS = ("SELECT m.id FROM memories_fts fts JOIN memories m ON m.rowid = fts.rowid "
                   "WHERE memories_fts MATCH ? AND m.namespace = ? ORDER BY fts.rank LIMIT 5")

_TTL_SECS = {"short": 6 * 3600, "mid": 7 * 86400}


def draft_row(draft: Draft, *, now: str, agent_id: str = "bench") -> Row:
    """The 15 columns for ``draft`` as a plain server would build them."""
    ttl = _TTL_SECS.get(draft.tier)
    expires = None if ttl is None else format_ts(parse_ts(now) + timedelta(seconds=ttl))
    return (str(uuid.uuid4()), draft.tier, draft.namespace, draft.title, draft.content, json.dumps(draft.tags),
            draft.priority, draft.confidence, "api", 0, now, now, None, expires, json.dumps({"agent_id": agent_id}))


class BaselineDB:
    """A plain SQLite + FTS5 memory store. ``synchronous`` is FULL for stores, NORMAL for bulk loads."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_DDL)

    def store(self, draft: Draft) -> None:
        """One memory, one durable transaction, doing what the original's store does besides the write: the
        (title, namespace) conflict lookup and the potential-contradictions query (title words, same
        namespace, best 5). Only the log, the signing and the projector are left out."""
        row = draft_row(draft, now=now_ts())
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("SELECT id FROM memories WHERE title = ? AND namespace = ?",
                             (draft.title, draft.namespace)).fetchone()
            self._db.execute(_CONTRADICTIONS, ("title : (" + fts_query(draft.title, use_or=True) + ")",
                                               draft.namespace)).fetchall()
            self._db.execute(_UPSERT, row)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def insert_rows(self, rows: Sequence[Row], *, batch_size: int = 2000) -> None:
        """Plain inserts, ``batch_size`` rows per transaction."""
        for start in range(0, len(rows), batch_size):
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(_INSERT, rows[start:start + batch_size])
            self._db.execute("COMMIT")

    def recall(self, context: str, *, limit: int = 10) -> list[str]:
        """Ids of the best ``limit`` unexpired memories for ``context`` (any word may match)."""
        params = {"match": fts_query(context, use_or=True), "now": now_ts(), "limit": limit}
        return [r[0] for r in self._db.execute(_RECALL, params).fetchall()]

    def matches(self, context: str) -> int:
        """How many rows the FTS5 match selects before ranking (the work recall has to score)."""
        sql = "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?"
        (n,) = self._db.execute(sql, (fts_query(context, use_or=True),)).fetchone()
        return int(n)

    def count(self) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM memories").fetchone()
        return int(n)

    def close(self) -> None:
        self._db.close()


def read_rows(path: Path) -> list[Row]:
    """Every memory row of a read-model (or baseline) database, in rowid order."""
    db = sqlite3.connect(path)
    try:
        return [tuple(r) for r in db.execute(f"SELECT {COLUMNS} FROM memories ORDER BY rowid")]
    finally:
        db.close()
