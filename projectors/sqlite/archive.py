"""The archive in the SQLite read model: the ``archived_memories`` table; the appliers and queries are shared
(:mod:`projectors.archive_store`, :mod:`projectors.archive_queries`), run over a SQLite connection."""

from __future__ import annotations

import sqlite3

from projectors.appliers import over_sql
from projectors.archive_queries import SqlArchiveQueries
from projectors.archive_store import APPLIERS as SHARED
from projectors.sqlite.sql import SQLiteSql

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

APPLIERS = over_sql(SHARED, SQLiteSql)


class SQLiteArchiveQueries(SqlArchiveQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        super().__init__(SQLiteSql(db))
