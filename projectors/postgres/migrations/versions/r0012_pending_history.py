"""Pending actions converge across regions (:mod:`projectors.pending_merge`): each action's votes, decisions and
expiries kept by merge key, folded in merge order onto its row.

Revision ID: r0012_pending_history
Revises: r0011_convergence
"""

from __future__ import annotations

from alembic import op

revision = "r0012_pending_history"
down_revision: str | None = "r0011_convergence"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE pending_history (pending_id text NOT NULL, key text NOT NULL, event_id text NOT NULL, "
               "log_partition text NOT NULL, log_offset bigint NOT NULL, type text NOT NULL, payload text NOT NULL, "
               "PRIMARY KEY (pending_id, key))")


def downgrade() -> None:
    op.execute("DROP TABLE pending_history")
