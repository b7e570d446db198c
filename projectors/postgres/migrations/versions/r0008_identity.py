"""The identity domain: agent keys (attested agent identity) and namespaces where as_agent is mandatory.

Revision ID: r0008_identity
Revises: r0003
"""

from __future__ import annotations

from alembic import op

revision = "r0008_identity"
down_revision: str | None = "r0007_graph"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE agent_keys (
    agent_id      TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    registered_by TEXT NOT NULL
)""")
    op.execute("""
CREATE TABLE as_agent_required (
    prefix TEXT PRIMARY KEY,
    set_at TEXT NOT NULL,
    set_by TEXT NOT NULL,
    reason TEXT NOT NULL
)""")


def downgrade() -> None:
    op.execute("DROP TABLE as_agent_required")
    op.execute("DROP TABLE agent_keys")
