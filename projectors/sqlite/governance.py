"""The governance domain on the SQLite read model: its tables, its appliers (the shared
:mod:`projectors.governance_store` logic over a SQLite connection) and its queries (the shared
:class:`~projectors.governance_queries.GovernanceQueries` over that connection)."""

from __future__ import annotations

import sqlite3

from projectors.appliers import over_sql
from projectors.governance_queries import GovernanceQueries
from projectors.governance_store import GOVERNANCE_APPLIERS
from projectors.sqlite.sql import SQLiteSql

__all__ = ["APPLIERS", "DDL", "SQLiteGovernanceQueries"]

DDL = """
CREATE TABLE IF NOT EXISTS namespace_meta (
    namespace        TEXT PRIMARY KEY,
    standard_id      TEXT NOT NULL,
    parent_namespace TEXT,
    updated_at       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_actions (
    id           TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL,
    action_type  TEXT NOT NULL,
    memory_id    TEXT,
    namespace    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status       TEXT NOT NULL,
    decided_by   TEXT,
    decided_at   TEXT,
    approvals    TEXT NOT NULL DEFAULT '[]',
    timeout_secs INTEGER NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_actions_status ON pending_actions (status, expires_at);
CREATE TABLE IF NOT EXISTS pending_history (
    pending_id    TEXT NOT NULL,
    key           TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    log_partition TEXT NOT NULL,
    log_offset    INTEGER NOT NULL,
    type          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    PRIMARY KEY (pending_id, key)
);
CREATE TABLE IF NOT EXISTS agents (
    agent_id      TEXT PRIMARY KEY,
    agent_type    TEXT NOT NULL,
    capabilities  TEXT NOT NULL DEFAULT '[]',
    registered_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_quotas (
    agent_id       TEXT PRIMARY KEY,
    day            TEXT NOT NULL,
    memories_today INTEGER NOT NULL DEFAULT 0,
    links_today    INTEGER NOT NULL DEFAULT 0,
    storage_bytes  INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS remembered_rules (
    action_type TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    session     TEXT NOT NULL DEFAULT '',
    decision    TEXT NOT NULL,
    remember    TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (action_type, namespace, agent_id, session)
);
"""

APPLIERS = over_sql(GOVERNANCE_APPLIERS, SQLiteSql)


class SQLiteGovernanceQueries(GovernanceQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        super().__init__(SQLiteSql(db))
