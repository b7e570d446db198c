"""The original's JSON shapes for subscriptions, dead letters and replays, shared by HTTP and MCP."""

from __future__ import annotations

from typing import Any

from producers.errors import ValidationError
from projectors import DeadLetter, SubscriptionRow

__all__ = ["DLQ_DEFAULT_LIMIT", "DLQ_MAX_LIMIT", "dead_letter_body", "dlq_limit", "subscription_body"]

DLQ_DEFAULT_LIMIT = 100
DLQ_MAX_LIMIT = 1000


def subscription_body(row: SubscriptionRow, *, dispatch_count: int = 0) -> dict[str, Any]:
    """A list row as the original's ``GET /subscriptions`` (``namespace`` mirrors ``namespace_filter``).
    ``dispatch_count`` counts deliveries this node made; ``failure_count`` dead letters from any node."""
    return {"id": row.id, "url": row.url, "events": row.events, "namespace": row.namespace_filter,
            "namespace_filter": row.namespace_filter, "agent_filter": row.agent_filter,
            "agent_id": row.agent_filter or row.created_by, "created_by": row.created_by,
            "created_at": row.created_at, "dispatch_count": dispatch_count, "failure_count": row.failure_count,
            "secret_fingerprint": row.secret_fingerprint}


def dead_letter_body(dl: DeadLetter) -> dict[str, Any]:
    """The original's ``DlqEntry`` (its integer ``id`` is the dead-letter event's log offset here)."""
    return {"id": dl.offset, "subscription_id": dl.subscription_id, "correlation_id": dl.correlation_id,
            "event_type": dl.event_type, "payload": dl.payload, "retry_count": dl.retry_count,
            "last_error": dl.last_error, "first_failed_at": dl.first_failed_at, "last_failed_at": dl.last_failed_at,
            "source_event_id": dl.source_event_id}


def dlq_limit(value: Any) -> int:
    """``limit`` (default 100) clamped to 1…1000, as the original."""
    if value is None or value == "":
        return DLQ_DEFAULT_LIMIT
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError("limit must be an integer") from None
    return max(1, min(DLQ_MAX_LIMIT, number))
