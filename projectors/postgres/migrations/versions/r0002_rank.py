"""What the keyword score needs of each memory, kept on the row: the original's static boost and tier bonus
(generated), the Julian day of the last update (set by a trigger: the cast of text to a timestamp is not
immutable, so it cannot be a generated column), and an insertion sequence that breaks ranking ties the way
SQLite's rowid does.

Revision ID: r0002
Revises: r0001
"""

from __future__ import annotations

from alembic import op

revision = "r0002"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None

_UP = """
ALTER TABLE memories
    ADD COLUMN boost DOUBLE PRECISION GENERATED ALWAYS AS
        (priority * 0.5 + least(access_count, 50) * 0.1 + confidence * 2.0) STORED,
    ADD COLUMN tier_bonus DOUBLE PRECISION GENERATED ALWAYS AS
        (CASE tier WHEN 'long' THEN 3.0 WHEN 'mid' THEN 1.0 ELSE 0.0 END) STORED,
    ADD COLUMN updated_jd DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    ADD COLUMN seq BIGSERIAL;
CREATE FUNCTION ai_memory_updated_jd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_jd := extract(epoch FROM NEW.updated_at::timestamptz) / 86400.0 + 2440587.5;
    RETURN NEW;
END $$;
CREATE TRIGGER memories_updated_jd BEFORE INSERT OR UPDATE OF updated_at ON memories FOR EACH ROW
    EXECUTE FUNCTION ai_memory_updated_jd();
UPDATE memories SET updated_at = updated_at;
CREATE INDEX memories_rank ON memories (priority DESC, updated_at DESC, seq);
"""


def upgrade() -> None:
    op.execute(_UP)


def downgrade() -> None:
    op.execute("DROP INDEX memories_rank; DROP TRIGGER memories_updated_jd ON memories; "
               "DROP FUNCTION ai_memory_updated_jd(); "
               "ALTER TABLE memories DROP COLUMN boost, DROP COLUMN tier_bonus, DROP COLUMN updated_jd, "
               "DROP COLUMN seq")
