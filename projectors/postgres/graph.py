"""The knowledge graph on the Postgres read model: its appliers (the shared :mod:`projectors.graph_store`
logic over a SQLAlchemy connection). The tables come from the ``r0007_graph`` migration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, text

from infra.log import LogRecord
from projectors.graph_queries import GraphQueries
from projectors.graph_store import GRAPH_EVENT_TYPES, apply_graph_event
from projectors.postgres.errors import mapped_errors
from projectors.postgres.sql import PostgresSql

__all__ = ["APPLIERS", "PostgresGraphQueries"]



def _apply(conn: Connection, payload: Any, record: LogRecord) -> None:
    apply_graph_event(PostgresSql(conn), payload, record)


APPLIERS = dict.fromkeys(GRAPH_EVENT_TYPES, _apply)


class PostgresGraphQueries(GraphQueries):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        with mapped_errors(), self._engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), dict(params)).mappings()]
