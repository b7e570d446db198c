"""The :class:`~projectors.sql.Sql` adapter over a SQLite connection (named parameters are native)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from projectors.sql import SQLITE, Dialect

__all__ = ["SQLiteSql"]


class SQLiteSql:
    dialect: Dialect = SQLITE

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return [dict(r) for r in self._db.execute(sql, dict(params))]

    def run(self, sql: str, params: Mapping[str, Any]) -> int:
        return self._db.execute(sql, dict(params)).rowcount
