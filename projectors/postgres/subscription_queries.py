"""The subscription reads (:class:`projectors.subscription_queries.SubscriptionQueries`) on Postgres."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from projectors.postgres.sql import PostgresReads
from projectors.subscription_queries import SubscriptionQueries

__all__ = ["PostgresSubscriptionQueries"]


class PostgresSubscriptionQueries(SubscriptionQueries):
    def __init__(self, engine: Engine) -> None:
        self._reads = PostgresReads(engine)

    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return self._reads.rows(sql, params)
