"""The archive: memories moved out of the live set, kept whole (vector included) so a restore needs no model.

Revision ID: r0005_archive
Revises: r0003
"""

from __future__ import annotations

from alembic import op

revision = "r0005_archive"
down_revision: str | None = "r0004_subscriptions"
branch_labels: str | None = None
depends_on: str | None = None

_UP = """
CREATE TABLE archived_memories (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    tier                TEXT COLLATE "C" NOT NULL,
    namespace           TEXT COLLATE "C" NOT NULL,
    title               TEXT COLLATE "C" NOT NULL,
    content             TEXT NOT NULL,
    tags                JSONB NOT NULL DEFAULT '[]',
    priority            INTEGER NOT NULL,
    confidence          DOUBLE PRECISION NOT NULL,
    source              TEXT COLLATE "C" NOT NULL,
    access_count        INTEGER NOT NULL,
    created_at          TEXT COLLATE "C" NOT NULL,
    updated_at          TEXT COLLATE "C" NOT NULL,
    last_accessed_at    TEXT COLLATE "C",
    expires_at          TEXT COLLATE "C",
    metadata            JSONB NOT NULL DEFAULT '{}',
    archived_at         TEXT COLLATE "C" NOT NULL,
    archive_reason      TEXT NOT NULL,
    original_tier       TEXT COLLATE "C" NOT NULL,
    original_expires_at TEXT COLLATE "C",
    vector_model        TEXT,
    vector_dim          INTEGER,
    vector              vector(384)
);
CREATE INDEX archived_memories_listing ON archived_memories (archived_at DESC, id);
CREATE INDEX archived_memories_namespace ON archived_memories (namespace);
"""


def upgrade() -> None:
    op.execute(_UP)


def downgrade() -> None:
    op.execute("DROP TABLE archived_memories")
