"""The governance domain on the Postgres read model: its appliers (the shared :mod:`projectors.governance_store`
logic over a SQLAlchemy connection) and its queries (the shared
:class:`~projectors.governance_queries.GovernanceQueries`, each on a connection of its own).
The tables come from the Alembic revision ``r0006_governance``.
"""

from __future__ import annotations

from sqlalchemy import Engine

from projectors.appliers import over_sql
from projectors.governance_queries import GovernanceQueries
from projectors.governance_store import GOVERNANCE_APPLIERS
from projectors.postgres.sql import PostgresReads, PostgresSql

__all__ = ["APPLIERS", "PostgresGovernanceQueries"]

APPLIERS = over_sql(GOVERNANCE_APPLIERS, PostgresSql)


class PostgresGovernanceQueries(GovernanceQueries):
    def __init__(self, engine: Engine) -> None:
        super().__init__(PostgresReads(engine))
