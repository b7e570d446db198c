"""The governance domain on the Postgres read model: its appliers (the shared :mod:`projectors.governance_store`
logic over a SQLAlchemy connection) and its queries (the shared
:class:`~projectors.governance_queries.GovernanceQueries`, each on a connection of its own).
The tables come from the Alembic revision ``r0006_governance``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from projectors.appliers import over_sql
from projectors.governance_queries import GovernanceQueries
from projectors.governance_store import GOVERNANCE_APPLIERS
from projectors.postgres.errors import mapped_errors
from projectors.postgres.sql import PostgresSql

__all__ = ["APPLIERS", "PostgresGovernanceQueries"]

APPLIERS = over_sql(GOVERNANCE_APPLIERS, PostgresSql)


class PostgresGovernanceQueries(GovernanceQueries):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        with mapped_errors(), self._engine.connect() as conn:
            return PostgresSql(conn).rows(sql, params)
