"""Links across regions (:mod:`projectors.link_merge`): every link event by merge key, and each writer's
links/day counted per origin partition; the settled copies of memories whose history older than the horizon
was dropped (:func:`projectors.convergence.settle`).

Revision ID: r0013_link_convergence
Revises: r0012_pending_history
"""

from __future__ import annotations

from alembic import op

revision = "r0013_link_convergence"
down_revision: str | None = "r0012_pending_history"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE link_history (key text PRIMARY KEY, partition text NOT NULL, source_id text NOT NULL, "
               "target_id text NOT NULL, relation text NOT NULL, type text NOT NULL, payload text NOT NULL)")
    op.execute("CREATE INDEX link_history_link ON link_history (source_id, target_id, relation, key)")
    op.execute("CREATE INDEX link_history_target ON link_history (target_id)")
    op.execute("CREATE TABLE link_quota_marks (agent_id text NOT NULL, day text NOT NULL, partition text NOT NULL, "
               "links integer NOT NULL, PRIMARY KEY (agent_id, day, partition))")
    op.execute("CREATE TABLE settled_memories AS SELECT id, tier, namespace, title, content, tags, priority, "
               "confidence, source, access_count, created_at, updated_at, last_accessed_at, expires_at, metadata "
               "FROM memories WITH NO DATA")
    for table in ("memories", "memory_vectors", "memory_merge", "memory_tombstones"):
        if table != "memories":
            op.execute(f"CREATE TABLE settled_{table} (LIKE {table})")
        op.execute(f"ALTER TABLE settled_{table} ADD PRIMARY KEY (id)")


def downgrade() -> None:
    for table in ("memories", "memory_vectors", "memory_merge", "memory_tombstones"):
        op.execute(f"DROP TABLE settled_{table}")
    op.execute("DROP TABLE link_quota_marks")
    op.execute("DROP TABLE link_history")
