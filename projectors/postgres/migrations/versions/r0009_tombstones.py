"""Tombstones: the ids of memories removed by ``memory.deleted``. A later stored or imported event for one of
them is rejected, so a deleted memory never comes back (bulk forget and expiry leave none).

Revision ID: r0009_tombstones
Revises: r0003
"""

from __future__ import annotations

from alembic import op

revision = "r0009_tombstones"
down_revision: str | None = "r0008_identity"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE memory_tombstones (id text PRIMARY KEY)")


def downgrade() -> None:
    op.execute("DROP TABLE memory_tombstones")
