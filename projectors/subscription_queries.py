"""The reads of webhook subscriptions and dead letters, one set of SQL for both read models.

The statements use only named parameters and SQL both SQLite and Postgres speak, so the backends differ only
in how a statement runs (:meth:`SubscriptionQueries._rows`) and cannot drift apart.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from projectors.webhook_rules import SubscriptionTarget

__all__ = ["DeadLetter", "SQLiteSubscriptionQueries", "SubscriptionQueries", "SubscriptionRow"]

_COLUMNS = ("id, url, events, namespace_filter, agent_filter, created_by, created_at, secret_fingerprint, "
            "failure_count, last_failed_at")
_DLQ_COLUMNS = ('correlation_id, subscription_id, owner, event_type, source_event_id, payload, retry_count, '
                'last_error, first_failed_at, last_failed_at, partition, "offset"')


@dataclass(frozen=True, slots=True)
class SubscriptionRow(SubscriptionTarget):
    created_at: str
    secret_fingerprint: str
    failure_count: int
    last_failed_at: str | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    correlation_id: str
    subscription_id: str
    owner: str
    event_type: str
    source_event_id: str
    payload: str
    retry_count: int
    last_error: str
    first_failed_at: str
    last_failed_at: str
    partition: str
    offset: int


class SubscriptionQueries(ABC):
    @abstractmethod
    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Run ``sql`` (named parameters) and return its rows as dicts."""

    def get(self, subscription_id: str) -> SubscriptionRow | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM subscriptions WHERE id = :id", {"id": subscription_id})
        return SubscriptionRow(**rows[0]) if rows else None

    def owned(self, *, created_by: str | None) -> list[SubscriptionRow]:
        """Newest first, as the original; ``created_by=None`` lists every owner's (for the operator only)."""
        where = "" if created_by is None else "WHERE created_by = :by "
        rows = self._rows(f"SELECT {_COLUMNS} FROM subscriptions {where}ORDER BY created_at DESC, id",
                          {"by": created_by})
        return [SubscriptionRow(**r) for r in rows]

    def dead_letters(self, *, owner: str, subscription_id: str | None = None, limit: int = 100, offset: int = 0
                     ) -> list[DeadLetter]:
        """The owner's dead letters in log order, optionally of one subscription."""
        where = "owner = :owner" + ("" if subscription_id is None else " AND subscription_id = :sub")
        rows = self._rows(f'SELECT {_DLQ_COLUMNS} FROM subscription_dlq WHERE {where} ORDER BY "offset", partition '
                          "LIMIT :limit OFFSET :offset",
                          {"owner": owner, "sub": subscription_id, "limit": limit, "offset": offset})
        return [DeadLetter(**r) for r in rows]


class SQLiteSubscriptionQueries(SubscriptionQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return [dict(r) for r in self._db.execute(sql, params)]
