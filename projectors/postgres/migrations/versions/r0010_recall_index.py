"""Indexes for recall's keyword ranking: the static part of the score (boost + tier bonus, descending, then
insertion order) and the Julian day of the last update. Recall ranks only the matches whose static part can
still reach the top (see ``PostgresMemoryQueries._recall_floor``), found by a bitmap AND of the word's postings
with these; the answer is the same as ranking every match.

Revision ID: r0010_recall_index
Revises: r0009_tombstones
"""

from __future__ import annotations

from alembic import op

revision = "r0010_recall_index"
down_revision: str | None = "r0009_tombstones"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX memories_static_rank ON memories ((boost + tier_bonus) DESC, seq)")
    op.execute("CREATE INDEX memories_updated_jd ON memories (updated_jd)")


def downgrade() -> None:
    op.execute("DROP INDEX memories_updated_jd")
    op.execute("DROP INDEX memories_static_rank")
