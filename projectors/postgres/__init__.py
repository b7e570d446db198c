"""The Postgres read model (memories + tsvector full-text search + pgvector), shareable by many nodes.

Needs the ``postgres`` extra (SQLAlchemy 2, psycopg 3, pgvector, Alembic)::

    model = PostgresReadModel("postgresql+psycopg://user@host/db")   # migrates the schema to the newest
    model.queries.recall_keyword("deploy notes", MemoryFilter(now=now_ts()), limit=10)
"""

from __future__ import annotations

from projectors.postgres.queries import KEYWORD_SCALE, PostgresMemoryQueries
from projectors.postgres.schema import current_revision, head_revision, migrate, reset
from projectors.postgres.store import PostgresReadModel

__all__ = ["KEYWORD_SCALE", "PostgresMemoryQueries", "PostgresReadModel", "current_revision", "head_revision",
           "migrate", "reset"]
