"""DDL of the SQLite read model: memories + FTS5 external-content index, tracking, rejections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "connect"]

SCHEMA_VERSION = 1

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

-- One vector per memory, from its latest memory.embedded event. An event that sets the title or content drops
-- it (the producer's memory.embedded for the new text follows in the same append), so a stale vector never
-- outlives the text it was computed from.
CREATE TABLE IF NOT EXISTS memory_vectors (
    id     TEXT PRIMARY KEY,
    model  TEXT NOT NULL,
    dim    INTEGER NOT NULL,
    vector BLOB NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS memory_vectors_ad AFTER DELETE ON memories BEGIN
    DELETE FROM memory_vectors WHERE id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS memory_vectors_au AFTER UPDATE OF title, content ON memories BEGIN
    DELETE FROM memory_vectors WHERE id = old.id;
END;

CREATE TABLE IF NOT EXISTS tracking (
    projection TEXT NOT NULL,
    partition  TEXT NOT NULL,
    "offset"   INTEGER NOT NULL,
    PRIMARY KEY (projection, partition)
);
CREATE TABLE IF NOT EXISTS applied_events (
    event_id TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected_events (
    partition TEXT NOT NULL,
    "offset"  INTEGER NOT NULL,
    event_id  TEXT NOT NULL,
    type      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (partition, "offset")
);
CREATE TABLE IF NOT EXISTS model_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (and create) a read-model database. ``":memory:"`` works for tests."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    # The log is the durable truth; the read model can be rebuilt, so it need not fsync every commit.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(_DDL)
    db.execute("INSERT OR IGNORE INTO model_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    return db
