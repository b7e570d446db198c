"""The archive in the Postgres read model: the shared appliers and queries (:mod:`projectors.archive_store`,
:mod:`projectors.archive_queries`) over SQLAlchemy. Tables: revision r0005_archive."""

from __future__ import annotations

from sqlalchemy import Engine

from projectors.appliers import over_sql
from projectors.archive_queries import SqlArchiveQueries
from projectors.archive_store import APPLIERS as SHARED
from projectors.postgres.sql import PostgresReads, PostgresSql

__all__ = ["APPLIERS", "PostgresArchiveQueries"]

APPLIERS = over_sql(SHARED, PostgresSql)


class PostgresArchiveQueries(SqlArchiveQueries):
    def __init__(self, engine: Engine) -> None:
        super().__init__(PostgresReads(engine))
