"""Webhook subscription events: a subscription made or removed, and a delivery given up on (the dead-letter list).

The shared secret never enters the log. Its SHA-256 is the HMAC key (as in the original, where the stored
``secret_hash`` is what signs), so it is a credential too: the event carries it only *sealed* (a libsodium
sealed box) to each node key trusted when the subscription was made, and only a node holding one of those
private keys can sign deliveries for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

__all__ = ["Subscription", "SubscriptionCreated", "SubscriptionDeadLettered", "SubscriptionDeleted"]

OMIT_NONE = {"omit_none": True}


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    #: "*" or a comma list of webhook event names (memory_store, memory_delete, …).
    events: str
    created_by: str
    created_at: str
    namespace_filter: str | None = None
    agent_filter: str | None = None
    #: node key id → base64 of the sealed 32-byte SHA-256 of the secret (the HMAC key), for that node only.
    sealed_keys: dict[str, str] = field(default_factory=dict)
    #: First 16 hex digits of SHA-256(SHA-256(secret)): tells secrets apart without revealing the key.
    secret_fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class SubscriptionCreated:
    TYPE: ClassVar[str] = "subscription.created"
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class SubscriptionDeleted:
    """Deliveries stop; dead letters already recorded stay, for audit."""

    TYPE: ClassVar[str] = "subscription.deleted"
    id: str
    deleted_at: str


@dataclass(frozen=True, slots=True)
class SubscriptionDeadLettered:
    """A delivery that failed its first attempt and every retry (200 ms, 1 s, 5 s), appended by the node that
    delivered it so every node's read model lists it. ``body`` is the JSON that was POSTed (and signed)."""

    TYPE: ClassVar[str] = "subscription.dead_lettered"
    subscription_id: str
    #: The subscription's ``created_by``: who may list this dead letter (it outlives the subscription).
    owner: str
    correlation_id: str
    event_type: str
    #: The log event the delivery was made for.
    source_event_id: str
    body: str
    attempts: int
    last_error: str
    first_failed_at: str
    last_failed_at: str
