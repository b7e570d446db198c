"""The knowledge graph on the SQLite read model: its tables, and its appliers (the shared
:mod:`projectors.graph_store` logic over a SQLite connection)."""

from __future__ import annotations

import sqlite3

from projectors.appliers import over_sql
from projectors.graph_queries import GraphQueries
from projectors.graph_store import APPLIERS as SHARED
from projectors.sqlite.sql import SQLiteSql

__all__ = ["APPLIERS", "DDL", "SQLiteGraphQueries"]

DDL = """
CREATE TABLE IF NOT EXISTS graph_links (
    source_id    TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    relation     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    valid_from   TEXT,
    valid_until  TEXT,
    observed_by  TEXT,
    signature    TEXT,
    attest_level TEXT NOT NULL,
    from_offset  INTEGER NOT NULL,
    until_offset INTEGER
);
CREATE INDEX IF NOT EXISTS graph_links_key ON graph_links (source_id, target_id, relation);
CREATE INDEX IF NOT EXISTS graph_links_target ON graph_links (target_id);
CREATE TABLE IF NOT EXISTS graph_nodes (
    id           TEXT NOT NULL,
    title        TEXT NOT NULL,
    namespace    TEXT NOT NULL,
    scope        TEXT NOT NULL,
    agent_id     TEXT,
    kind         TEXT,
    created_at   TEXT NOT NULL,
    from_offset  INTEGER NOT NULL,
    until_offset INTEGER
);
CREATE INDEX IF NOT EXISTS graph_nodes_id ON graph_nodes (id);
CREATE INDEX IF NOT EXISTS graph_nodes_title ON graph_nodes (namespace, title);
CREATE TABLE IF NOT EXISTS entity_aliases (
    entity_id   TEXT NOT NULL,
    alias       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    from_offset INTEGER NOT NULL,
    PRIMARY KEY (entity_id, alias)
);
CREATE INDEX IF NOT EXISTS entity_aliases_alias ON entity_aliases (alias);
CREATE TABLE IF NOT EXISTS link_history (
    key       TEXT PRIMARY KEY,
    partition TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    relation  TEXT NOT NULL,
    type      TEXT NOT NULL,
    payload   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS link_history_link ON link_history (source_id, target_id, relation, key);
CREATE INDEX IF NOT EXISTS link_history_target ON link_history (target_id);
CREATE TABLE IF NOT EXISTS link_quota_marks (
    agent_id  TEXT NOT NULL,
    day       TEXT NOT NULL,
    partition TEXT NOT NULL,
    links     INTEGER NOT NULL,
    PRIMARY KEY (agent_id, day, partition)
);
"""

APPLIERS = over_sql(SHARED, SQLiteSql)


class SQLiteGraphQueries(GraphQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        super().__init__(SQLiteSql(db))
