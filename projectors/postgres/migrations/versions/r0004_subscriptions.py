"""Webhook subscriptions and their dead letters (the original's ``subscriptions`` and ``subscription_dlq``).

Revision ID: r0004_subscriptions
Revises: r0003
"""

from __future__ import annotations

from alembic import op

revision = "r0004_subscriptions"
down_revision: str | None = "r0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE subscriptions (
            id                 text PRIMARY KEY,
            url                text NOT NULL,
            events             text NOT NULL,
            namespace_filter   text,
            agent_filter       text,
            created_by         text NOT NULL,
            created_at         text NOT NULL,
            secret_fingerprint text NOT NULL DEFAULT '',
            failure_count      integer NOT NULL DEFAULT 0,
            last_failed_at     text
        )""")
    op.execute("CREATE INDEX subscriptions_owner ON subscriptions (created_by, created_at)")
    op.execute("""
        CREATE TABLE subscription_dlq (
            correlation_id   text PRIMARY KEY,
            subscription_id  text NOT NULL,
            owner            text NOT NULL,
            event_type       text NOT NULL,
            source_event_id  text NOT NULL,
            payload          text NOT NULL,
            retry_count      integer NOT NULL,
            last_error       text NOT NULL,
            first_failed_at  text NOT NULL,
            last_failed_at   text NOT NULL,
            partition        text NOT NULL,
            "offset"         bigint NOT NULL
        )""")
    op.execute("CREATE INDEX subscription_dlq_sub ON subscription_dlq (subscription_id)")


def downgrade() -> None:
    op.execute("DROP TABLE subscription_dlq")
    op.execute("DROP TABLE subscriptions")
