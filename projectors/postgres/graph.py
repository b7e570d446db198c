"""The knowledge graph on the Postgres read model: its appliers and queries (the shared
:mod:`projectors.graph_store` and :mod:`projectors.graph_queries` over SQLAlchemy). The tables come from the
``r0007_graph`` migration."""

from __future__ import annotations

from sqlalchemy import Engine

from projectors.appliers import over_sql
from projectors.graph_queries import GraphQueries
from projectors.graph_store import APPLIERS as SHARED
from projectors.postgres.sql import PostgresReads, PostgresSql

__all__ = ["APPLIERS", "PostgresGraphQueries"]

APPLIERS = over_sql(SHARED, PostgresSql)


class PostgresGraphQueries(GraphQueries):
    def __init__(self, engine: Engine) -> None:
        super().__init__(PostgresReads(engine))
