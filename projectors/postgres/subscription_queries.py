"""The subscription reads (:class:`projectors.subscription_queries.SubscriptionQueries`) on Postgres."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from projectors.postgres.errors import mapped_errors
from projectors.subscription_queries import SubscriptionQueries

__all__ = ["PostgresSubscriptionQueries"]


class PostgresSubscriptionQueries(SubscriptionQueries):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with mapped_errors(), self._engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]
