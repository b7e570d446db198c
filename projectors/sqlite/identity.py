"""The identity domain in the SQLite read model: its tables; the appliers and queries are shared
(:mod:`projectors.identity_store`, :mod:`projectors.identity_queries`), run over a SQLite connection."""

from __future__ import annotations

import sqlite3

from projectors.appliers import over_sql
from projectors.identity_queries import SqlIdentityQueries
from projectors.identity_store import APPLIERS as SHARED
from projectors.sqlite.sql import SQLiteSql

__all__ = ["APPLIERS", "DDL", "SQLiteIdentityQueries"]

DDL = """
CREATE TABLE IF NOT EXISTS agent_keys (
    agent_id      TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    registered_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS as_agent_required (
    prefix TEXT PRIMARY KEY,
    set_at TEXT NOT NULL,
    set_by TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


APPLIERS = over_sql(SHARED, SQLiteSql)


class SQLiteIdentityQueries(SqlIdentityQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        super().__init__(SQLiteSql(db))
