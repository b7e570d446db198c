"""The :class:`~projectors.sql.Sql` adapter over a SQLAlchemy connection to Postgres."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, text

from projectors.sql import POSTGRES, Dialect

__all__ = ["PostgresSql"]


class PostgresSql:
    dialect: Dialect = POSTGRES

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        # None for no parameters: SQLAlchemy reads an empty dict as an empty sequence of parameter sets.
        return [dict(r) for r in self._conn.execute(text(sql), dict(params) or None).mappings()]

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        return self._conn.execute(text(sql), dict(params) or None).rowcount
