"""What a webhook delivery is, decided in one place for the delivery projector and for replay: which log events
become which webhook events, which subscriptions they match, the payload, and the correlation id.

Pure functions of the log record (no clock, no randomness), so a replay or a rebuilt delivery store computes
the same deliveries with the same correlation ids, and a receiver can de-duplicate on them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.log import LogRecord
from schemas import SchemaError, decode_payload, parse_ts
from schemas.events import (
    LinkCreated,
    LinkInvalidated,
    MemoryDeleted,
    MemoryImported,
    MemoryPromoted,
    MemoryStored,
    MemoryUpdated,
)

__all__ = ["FIRED_EVENT_TYPES", "WEBHOOK_EVENT_TYPES", "SubscriptionFilter", "SubscriptionTarget", "WebhookEvent",
           "correlation_id", "matches", "parse_events", "webhook_events"]

#: The original's event names (``WEBHOOK_EVENT_TYPES`` in its subscriptions.rs) plus ``memory_update``, which
#: the original does not fire. ``memory_consolidated`` and ``approval_requested`` exist there too; they are
#: accepted in a subscription and fire once consolidation and approvals are events here.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    "memory_store", "memory_update", "memory_promote", "memory_delete", "memory_link_created",
    "memory_link_invalidated", "memory_consolidated", "approval_requested",
)
#: The ones log events fire on this node today (see :func:`webhook_events`).
FIRED_EVENT_TYPES: tuple[str, ...] = WEBHOOK_EVENT_TYPES[:6]


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One webhook event: the original's outer fields, and ``details`` flattened into the body."""

    event: str
    memory_id: str
    namespace: str
    agent_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self, correlation: str) -> dict[str, Any]:
        """The body without ``delivered_at`` (added at each attempt by the sender)."""
        return {**self.details, "event": self.event, "memory_id": self.memory_id, "namespace": self.namespace,
                "agent_id": self.agent_id, "correlation_id": correlation}


class SubscriptionFilter(Protocol):
    @property
    def events(self) -> str: ...
    @property
    def namespace_filter(self) -> str | None: ...
    @property
    def agent_filter(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class SubscriptionTarget:
    """What every copy of a subscription keeps (the read model's row, the delivery store's): where it is sent,
    what it follows (a :class:`SubscriptionFilter`), and its owner."""

    id: str
    url: str
    events: str
    namespace_filter: str | None
    agent_filter: str | None
    created_by: str


def parse_events(events: str) -> list[str]:
    """The names in a subscription's ``events`` ("*" or a comma list), trimmed, empty parts dropped."""
    return [e.strip() for e in events.split(",") if e.strip()]


def matches(sub: SubscriptionFilter, event: WebhookEvent) -> bool:
    """The original's ``matches_filters``: the event name (or "*"), then an exact namespace, then the agent."""
    names = parse_events(sub.events)
    if "*" not in names and event.event not in names:
        return False
    if sub.namespace_filter and sub.namespace_filter != event.namespace:
        return False
    return not (sub.agent_filter and event.agent_id != sub.agent_filter)


def correlation_id(subscription_id: str, event_id: str, ts: str) -> str:
    """A UUIDv7 (time-ordered, as the original's) whose time is the event's and whose random bits are a hash of
    (subscription, event): the same delivery always has the same id, across retries, restarts and replays."""
    millis = int(parse_ts(ts).timestamp() * 1000) & ((1 << 48) - 1)
    digest = int.from_bytes(hashlib.sha256(f"{subscription_id}\x00{event_id}".encode()).digest()[:10], "big")
    value = (millis << 80) | (0x7 << 76) | ((digest >> 68) & 0xFFF) << 64 | (0b10 << 62) | (digest & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def webhook_events(record: LogRecord) -> list[WebhookEvent]:
    """The webhook events a log record fires (none for most: touches, embeddings, subscriptions, …)."""
    envelope = record.event.envelope
    try:
        payload = decode_payload(envelope.type, envelope.payload)
    except SchemaError:
        return []
    ns, actor = envelope.namespace, envelope.actor
    match payload:
        case MemoryStored(memory=m) | MemoryImported(memory=m):
            agent = m.metadata.get("agent_id")
            return [WebhookEvent("memory_store", m.id, m.namespace, agent if isinstance(agent, str) else actor,
                                 {"title": m.title, "tier": m.tier})]
        case MemoryUpdated(id=mid):
            return [WebhookEvent("memory_update", mid, ns, actor)]
        case MemoryDeleted(id=mid):
            return [WebhookEvent("memory_delete", mid, ns, actor)]
        case MemoryPromoted(id=mid, tier=tier):
            return [WebhookEvent("memory_promote", mid, ns, actor, {"mode": "tier", "tier": tier})]
        case LinkCreated(link=link):
            return [WebhookEvent("memory_link_created", link.source_id, ns, actor,
                                 {"target_id": link.target_id, "relation": link.relation})]
        case LinkInvalidated(source_id=src, target_id=dst, relation=rel, valid_until=until):
            return [WebhookEvent("memory_link_invalidated", src, ns, actor,
                                 {"target_id": dst, "relation": rel, "valid_until": until})]
    return []
