"""The :class:`~projectors.sql.Sql` adapter over a SQLAlchemy connection to Postgres."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, text

from projectors.postgres.errors import mapped_errors
from projectors.sql import POSTGRES, Dialect

__all__ = ["PostgresReads", "PostgresSql"]


@lru_cache(maxsize=2048)
def _statement(sql: str) -> TextClause:
    """The statement of ``sql``, made once: parsing its bind parameters cost about a sixth of each execution's
    CPU, on a write path of some twenty statements (most strings are constants; the few built per query, such
    as an IN list's placeholders, recur by length)."""
    return text(sql)


class PostgresSql:
    dialect: Dialect = POSTGRES

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        # None for no parameters: SQLAlchemy reads an empty dict as an empty sequence of parameter sets.
        return [dict(r) for r in self._conn.execute(_statement(sql), dict(params) or None).mappings()]

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        return self._conn.execute(_statement(sql), dict(params) or None).rowcount


class PostgresReads:
    """The :class:`~projectors.sql.Sql` of a read model's queries: each statement on its own pooled connection,
    its errors mapped as every Postgres read's. A read runs in autocommit: one statement sees one snapshot
    either way, and a read then costs no round trips to begin and roll back a transaction (the writes'
    governance, identity and quota checks are such reads)."""

    dialect: Dialect = POSTGRES

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reading = engine.execution_options(isolation_level="AUTOCOMMIT")

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        with mapped_errors(), self._reading.connect() as conn:
            return PostgresSql(conn).rows(sql, params)

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        with mapped_errors(), self._engine.begin() as conn:
            return PostgresSql(conn).run(sql, params)
