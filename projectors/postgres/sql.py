"""The :class:`~projectors.sql.Sql` adapter over a SQLAlchemy connection to Postgres."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, text

from projectors.postgres.errors import mapped_errors
from projectors.sql import POSTGRES, Dialect

__all__ = ["PostgresReads", "PostgresSql"]


class PostgresSql:
    dialect: Dialect = POSTGRES

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        # None for no parameters: SQLAlchemy reads an empty dict as an empty sequence of parameter sets.
        return [dict(r) for r in self._conn.execute(text(sql), dict(params) or None).mappings()]

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        return self._conn.execute(text(sql), dict(params) or None).rowcount


class PostgresReads:
    """The :class:`~projectors.sql.Sql` of a read model's queries: each statement on its own pooled connection,
    its errors mapped as every Postgres read's. With ``autocommit`` (the memory queries, read on every recall)
    the connection runs in autocommit, so a read never holds a transaction open."""

    dialect: Dialect = POSTGRES

    def __init__(self, engine: Engine, *, autocommit: bool = False) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        with mapped_errors(), self._engine.connect() as conn:
            return PostgresSql(conn).rows(sql, params)

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        with mapped_errors(), self._engine.begin() as conn:
            return PostgresSql(conn).run(sql, params)
