"""The memories, their full-text index and vectors, and the projector's own tables (tracking, dedup, refusals).

Revision ID: r0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "r0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# FTS5's default tokenizer (unicode61) folds case and removes diacritics and does not stem; the closest Postgres
# configuration is `simple` (no stemming, no stop words) with `unaccent` in front of it.
_TEXT_SEARCH = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS unaccent;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'ai_memory') THEN
        CREATE TEXT SEARCH CONFIGURATION ai_memory (COPY = simple);
        ALTER TEXT SEARCH CONFIGURATION ai_memory
            ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part WITH unaccent, simple;
    END IF;
END $$;
"""

_TABLES = """
-- Text columns compare byte-wise (COLLATE "C"), as SQLite's do: ids, namespaces and RFC 3339 timestamps sort
-- and compare the same on both backends whatever the server's locale.
CREATE TABLE memories (
    id               TEXT COLLATE "C" PRIMARY KEY,
    tier             TEXT COLLATE "C" NOT NULL,
    namespace        TEXT COLLATE "C" NOT NULL,
    title            TEXT COLLATE "C" NOT NULL,
    content          TEXT NOT NULL,
    tags             JSONB NOT NULL DEFAULT '[]',
    priority         INTEGER NOT NULL DEFAULT 5,
    confidence       DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    source           TEXT COLLATE "C" NOT NULL DEFAULT 'api',
    access_count     INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT COLLATE "C" NOT NULL,
    updated_at       TEXT COLLATE "C" NOT NULL,
    last_accessed_at TEXT COLLATE "C",
    expires_at       TEXT COLLATE "C",
    metadata         JSONB NOT NULL DEFAULT '{}',
    agent_id         TEXT GENERATED ALWAYS AS (metadata ->> 'agent_id') STORED,
    scope            TEXT GENERATED ALWAYS AS (coalesce(metadata ->> 'scope', 'private')) STORED,
    -- title, content and tags as three separate vectors, as FTS5 keeps three columns.
    tsv              TSVECTOR GENERATED ALWAYS AS (
        to_tsvector('ai_memory', title) || to_tsvector('ai_memory', content) || to_tsvector('ai_memory', tags)
    ) STORED,
    UNIQUE (title, namespace)
);
CREATE INDEX memories_namespace ON memories (namespace);
CREATE INDEX memories_expires ON memories (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX memories_created ON memories (created_at);
CREATE INDEX memories_agent ON memories (agent_id);
CREATE INDEX memories_tsv ON memories USING gin (tsv);
CREATE INDEX memories_tags ON memories USING gin (tags jsonb_path_ops);

-- One vector per memory, from its latest memory.embedded event; dropped with the memory or when its text changes.
CREATE TABLE memory_vectors (
    id     TEXT PRIMARY KEY,
    model  TEXT NOT NULL,
    dim    INTEGER NOT NULL,
    vector vector(384) NOT NULL
);
CREATE INDEX memory_vectors_hnsw ON memory_vectors USING hnsw (vector vector_cosine_ops)
    WITH (m = 16, ef_construction = 64);
CREATE FUNCTION ai_memory_drop_vector() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memory_vectors WHERE id = OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER memory_vectors_ad AFTER DELETE ON memories FOR EACH ROW EXECUTE FUNCTION ai_memory_drop_vector();
CREATE TRIGGER memory_vectors_au AFTER UPDATE OF title, content ON memories FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.content IS DISTINCT FROM NEW.content)
    EXECUTE FUNCTION ai_memory_drop_vector();

-- The projector's tables. `projections` holds one row per projection: appliers lock it (SELECT ... FOR UPDATE)
-- so that nodes sharing this database apply each batch exactly once, one after the other.
CREATE TABLE projections (name TEXT PRIMARY KEY);
CREATE TABLE tracking (
    projection TEXT NOT NULL,
    partition  TEXT NOT NULL,
    "offset"   BIGINT NOT NULL,
    PRIMARY KEY (projection, partition)
);
CREATE TABLE applied_events (event_id TEXT PRIMARY KEY);
CREATE TABLE rejected_events (
    partition TEXT NOT NULL,
    "offset"  BIGINT NOT NULL,
    event_id  TEXT NOT NULL,
    type      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (partition, "offset")
);
CREATE TABLE model_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def upgrade() -> None:
    op.execute(_TEXT_SEARCH)
    op.execute(_TABLES)


def downgrade() -> None:
    op.execute("DROP TABLE memories, memory_vectors, projections, tracking, applied_events, rejected_events, "
               "model_meta CASCADE; DROP FUNCTION ai_memory_drop_vector()")
