"""The governance domain: namespace standards, pending actions, the agent registry, per-agent quota counters
and remembered approval decisions (the same tables as the SQLite read model's governance domain).

Revision ID: r0006_governance
Revises: r0003
"""

from __future__ import annotations

from alembic import op

revision = "r0006_governance"
down_revision: str | None = "r0005_archive"
branch_labels: str | None = None
depends_on: str | None = None

_UP = """
CREATE TABLE namespace_meta (
    namespace        TEXT PRIMARY KEY,
    standard_id      TEXT NOT NULL,
    parent_namespace TEXT,
    updated_at       TEXT NOT NULL
);
CREATE TABLE pending_actions (
    id           TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL,
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
    timeout_secs BIGINT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX pending_actions_status ON pending_actions (status, expires_at);
CREATE TABLE agents (
    agent_id      TEXT PRIMARY KEY,
    agent_type    TEXT NOT NULL,
    capabilities  TEXT NOT NULL DEFAULT '[]',
    registered_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE TABLE agent_quotas (
    agent_id       TEXT PRIMARY KEY,
    day            TEXT NOT NULL,
    memories_today BIGINT NOT NULL DEFAULT 0,
    links_today    BIGINT NOT NULL DEFAULT 0,
    storage_bytes  BIGINT NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE TABLE remembered_rules (
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


def upgrade() -> None:
    op.execute(_UP)


def downgrade() -> None:
    op.execute("DROP TABLE remembered_rules, agent_quotas, agents, pending_actions, namespace_meta")
