"""Webhook subscriptions and their dead letters in the SQLite read model: the tables; the appliers are shared
(:mod:`projectors.subscription_store`), run over a SQLite connection."""

from __future__ import annotations

from projectors.appliers import over_sql
from projectors.sqlite.sql import SQLiteSql
from projectors.subscription_store import APPLIERS as SHARED

__all__ = ["APPLIERS", "DDL"]

DDL = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id                 TEXT PRIMARY KEY,
    url                TEXT NOT NULL,
    events             TEXT NOT NULL,
    namespace_filter   TEXT,
    agent_filter       TEXT,
    created_by         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    secret_fingerprint TEXT NOT NULL DEFAULT '',
    failure_count      INTEGER NOT NULL DEFAULT 0,
    last_failed_at     TEXT
);
CREATE INDEX IF NOT EXISTS subscriptions_owner ON subscriptions (created_by, created_at);
CREATE TABLE IF NOT EXISTS subscription_dlq (
    correlation_id   TEXT PRIMARY KEY,
    subscription_id  TEXT NOT NULL,
    owner            TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    source_event_id  TEXT NOT NULL,
    payload          TEXT NOT NULL,
    retry_count      INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    first_failed_at  TEXT NOT NULL,
    last_failed_at   TEXT NOT NULL,
    partition        TEXT NOT NULL,
    "offset"         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS subscription_dlq_sub ON subscription_dlq (subscription_id);
"""


APPLIERS = over_sql(SHARED, SQLiteSql)
