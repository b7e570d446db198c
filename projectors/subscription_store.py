"""Webhook subscriptions and their dead letters (the original's ``subscriptions`` and ``subscription_dlq``
tables): the appliers, written once for both read models over :class:`~projectors.sql.Sql`. Delivery itself
is not a read model: see :mod:`projectors.deliveries`."""

from __future__ import annotations

from infra.log import LogRecord
from projectors.appliers import SqlApplier
from projectors.rules import Inapplicable
from projectors.sql import Sql, first
from schemas.events import SubscriptionCreated, SubscriptionDeadLettered, SubscriptionDeleted

__all__ = ["APPLIERS"]


def _created(sql: Sql, event: SubscriptionCreated, record: LogRecord) -> None:
    s = event.subscription
    if first(sql, "SELECT 1 AS x FROM subscriptions WHERE id = :id", {"id": s.id}) is not None:
        raise Inapplicable(f"subscription {s.id} already exists")
    sql.run("INSERT INTO subscriptions (id, url, events, namespace_filter, agent_filter, created_by, created_at, "
            "secret_fingerprint) VALUES (:id, :url, :events, :ns, :agent, :by, :at, :fp)",
            {"id": s.id, "url": s.url, "events": s.events, "ns": s.namespace_filter, "agent": s.agent_filter,
             "by": s.created_by, "at": s.created_at, "fp": s.secret_fingerprint})


def _deleted(sql: Sql, event: SubscriptionDeleted, record: LogRecord) -> None:
    if sql.run("DELETE FROM subscriptions WHERE id = :id", {"id": event.id}) == 0:
        raise Inapplicable(f"no subscription {event.id}")


def _dead_lettered(sql: Sql, event: SubscriptionDeadLettered, record: LogRecord) -> None:
    if first(sql, "SELECT 1 AS x FROM subscription_dlq WHERE correlation_id = :c", {"c": event.correlation_id}):
        raise Inapplicable(f"delivery {event.correlation_id} is already dead-lettered")
    sql.run("INSERT INTO subscription_dlq (correlation_id, subscription_id, owner, event_type, source_event_id, "
            'payload, retry_count, last_error, first_failed_at, last_failed_at, partition, "offset") '
            "VALUES (:c, :sub, :owner, :type, :src, :body, :n, :err, :first, :last, :part, :off)",
            {"c": event.correlation_id, "sub": event.subscription_id, "owner": event.owner,
             "type": event.event_type, "src": event.source_event_id, "body": event.body, "n": event.attempts,
             "err": event.last_error, "first": event.first_failed_at, "last": event.last_failed_at,
             "part": record.partition, "off": record.offset})
    sql.run("UPDATE subscriptions SET failure_count = failure_count + 1, last_failed_at = :at WHERE id = :id",
            {"at": event.last_failed_at, "id": event.subscription_id})


APPLIERS: dict[str, SqlApplier] = {
    SubscriptionCreated.TYPE: _created,
    SubscriptionDeleted.TYPE: _deleted,
    SubscriptionDeadLettered.TYPE: _dead_lettered,
}
