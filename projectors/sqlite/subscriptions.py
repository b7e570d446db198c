"""Webhook subscriptions and their dead letters in the SQLite read model (the original's ``subscriptions`` and
``subscription_dlq`` tables). Delivery itself is not a read model: see :mod:`projectors.deliveries`."""

from __future__ import annotations

import sqlite3
from typing import Any

from infra.log import LogRecord
from projectors.rules import Inapplicable
from schemas.events import SubscriptionCreated, SubscriptionDeadLettered, SubscriptionDeleted

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


def _created(db: sqlite3.Connection, event: SubscriptionCreated, record: LogRecord) -> None:
    s = event.subscription
    if db.execute("SELECT 1 FROM subscriptions WHERE id = ?", (s.id,)).fetchone():
        raise Inapplicable(f"subscription {s.id} already exists")
    db.execute("INSERT INTO subscriptions (id, url, events, namespace_filter, agent_filter, created_by, created_at, "
               "secret_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               (s.id, s.url, s.events, s.namespace_filter, s.agent_filter, s.created_by, s.created_at,
                s.secret_fingerprint))


def _deleted(db: sqlite3.Connection, event: SubscriptionDeleted, record: LogRecord) -> None:
    if db.execute("DELETE FROM subscriptions WHERE id = ?", (event.id,)).rowcount == 0:
        raise Inapplicable(f"no subscription {event.id}")


def _dead_lettered(db: sqlite3.Connection, event: SubscriptionDeadLettered, record: LogRecord) -> None:
    if db.execute("SELECT 1 FROM subscription_dlq WHERE correlation_id = ?", (event.correlation_id,)).fetchone():
        raise Inapplicable(f"delivery {event.correlation_id} is already dead-lettered")
    db.execute("INSERT INTO subscription_dlq (correlation_id, subscription_id, owner, event_type, source_event_id, "
               'payload, retry_count, last_error, first_failed_at, last_failed_at, partition, "offset") '
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (event.correlation_id, event.subscription_id, event.owner, event.event_type, event.source_event_id,
                event.body, event.attempts, event.last_error, event.first_failed_at, event.last_failed_at,
                record.partition, record.offset))
    db.execute("UPDATE subscriptions SET failure_count = failure_count + 1, last_failed_at = ? WHERE id = ?",
               (event.last_failed_at, event.subscription_id))


APPLIERS: dict[str, Any] = {
    SubscriptionCreated.TYPE: _created,
    SubscriptionDeleted.TYPE: _deleted,
    SubscriptionDeadLettered.TYPE: _dead_lettered,
}
