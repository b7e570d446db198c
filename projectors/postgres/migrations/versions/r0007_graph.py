"""The knowledge graph: versioned links and graph nodes (each row holds between two log offsets, so a query
can answer as of any offset), and entity aliases. Text columns that are compared or sorted use the "C"
collation, so their order is SQLite's byte order.

Revision ID: r0007_graph
Revises: r0003
"""

from __future__ import annotations

from alembic import op

revision = "r0007_graph"
down_revision: str | None = "r0006_governance"
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = """
CREATE TABLE graph_links (
    source_id    TEXT COLLATE "C" NOT NULL,
    target_id    TEXT COLLATE "C" NOT NULL,
    relation     TEXT COLLATE "C" NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL,
    valid_from   TEXT COLLATE "C",
    valid_until  TEXT COLLATE "C",
    observed_by  TEXT COLLATE "C",
    signature    TEXT,
    attest_level TEXT NOT NULL,
    from_offset  BIGINT NOT NULL,
    until_offset BIGINT
);
CREATE INDEX graph_links_key ON graph_links (source_id, target_id, relation);
CREATE INDEX graph_links_target ON graph_links (target_id);
CREATE TABLE graph_nodes (
    id           TEXT COLLATE "C" NOT NULL,
    title        TEXT NOT NULL,
    namespace    TEXT COLLATE "C" NOT NULL,
    scope        TEXT NOT NULL,
    agent_id     TEXT,
    kind         TEXT,
    created_at   TEXT COLLATE "C" NOT NULL,
    from_offset  BIGINT NOT NULL,
    until_offset BIGINT
);
CREATE INDEX graph_nodes_id ON graph_nodes (id);
CREATE INDEX graph_nodes_title ON graph_nodes (namespace, title);
CREATE TABLE entity_aliases (
    entity_id   TEXT COLLATE "C" NOT NULL,
    alias       TEXT COLLATE "C" NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    from_offset BIGINT NOT NULL,
    PRIMARY KEY (entity_id, alias)
);
CREATE INDEX entity_aliases_alias ON entity_aliases (alias);
"""


def upgrade() -> None:
    op.execute(_TABLES)


def downgrade() -> None:
    op.execute("DROP TABLE entity_aliases; DROP TABLE graph_nodes; DROP TABLE graph_links")
