"""Convergence across regions (:mod:`projectors.convergence`): each partition's last merge stamp, the key of
the write holding each register (a namespace's standard), each memory's title claim, and the memory history a
late event's memories are replayed from.

Revision ID: r0011_convergence
Revises: r0010_recall_index
"""

from __future__ import annotations

from alembic import op

revision = "r0011_convergence"
down_revision: str | None = "r0010_recall_index"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("CREATE TABLE merge_marks (partition text PRIMARY KEY, stamp text NOT NULL)")
    op.execute("CREATE TABLE merge_registers (name text PRIMARY KEY, key text NOT NULL)")
    op.execute("CREATE TABLE memory_merge (id text PRIMARY KEY, namespace text NOT NULL, claim_title text NOT NULL, "
               "claim_partition text NOT NULL, claim_key text NOT NULL)")
    op.execute("CREATE INDEX memory_merge_claim ON memory_merge (namespace, claim_title, claim_partition)")
    op.execute("CREATE TABLE memory_history (key text PRIMARY KEY, partition text NOT NULL, type text NOT NULL, "
               "payload text NOT NULL)")
    op.execute("CREATE TABLE memory_history_refs (ref text NOT NULL, key text NOT NULL, PRIMARY KEY (ref, key))")
    op.execute("CREATE INDEX memory_history_refs_key ON memory_history_refs (key)")
    # A model migrated from an earlier revision: every memory claims its title in the partition it was read from
    # (one partition before regions existed; the key sorts before any later event's).
    op.execute("INSERT INTO memory_merge (id, namespace, claim_title, claim_partition, claim_key) "
               "SELECT m.id, m.namespace, m.title, t.partition, '' FROM memories m "
               "CROSS JOIN (SELECT partition FROM tracking ORDER BY partition LIMIT 1) t")


def downgrade() -> None:
    for table in ("memory_history_refs", "memory_history", "memory_merge", "merge_registers", "merge_marks"):
        op.execute(f"DROP TABLE {table}")
