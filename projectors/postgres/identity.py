"""The identity domain in the Postgres read model: the shared appliers and queries
(:mod:`projectors.identity_store`, :mod:`projectors.identity_queries`) over SQLAlchemy. Tables: revision
r0008_identity."""

from __future__ import annotations

from sqlalchemy import Engine

from projectors.appliers import over_sql
from projectors.identity_queries import SqlIdentityQueries
from projectors.identity_store import APPLIERS as SHARED
from projectors.postgres.sql import PostgresReads, PostgresSql

__all__ = ["APPLIERS", "PostgresIdentityQueries"]

APPLIERS = over_sql(SHARED, PostgresSql)


class PostgresIdentityQueries(SqlIdentityQueries):
    def __init__(self, engine: Engine) -> None:
        super().__init__(PostgresReads(engine))
