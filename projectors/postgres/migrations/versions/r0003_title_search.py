"""An index for the title-only keyword search (possible contradictions on every store): without it, each
store computed the title vector of every memory in the namespace.

Revision ID: r0003
Revises: r0002
"""

from __future__ import annotations

from alembic import op

revision = "r0003"
down_revision: str | None = "r0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX memories_title_tsv ON memories USING gin (to_tsvector('ai_memory', title))")


def downgrade() -> None:
    op.execute("DROP INDEX memories_title_tsv")
