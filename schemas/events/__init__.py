"""Every event type, by its stable string name. Types are never Python import paths."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from schemas.codec import from_payload, to_payload
from schemas.errors import UnknownEventTypeError
from schemas.events.archive import ArchivePurged, MemoriesArchived, MemoryRestored
from schemas.events.confidence import ConfidenceShadowObserved, ConfidenceSignals, ShadowObservation
from schemas.events.governance import (
    AgentRegistered,
    Approval,
    PendingAction,
    PendingActionType,
    PendingDecided,
    PendingExpired,
    PendingRequested,
    PendingVoted,
    RuleRemembered,
    StandardCleared,
    StandardSet,
)
from schemas.events.graph import AttestLevel, EntityAliased, Link, LinkCreated, LinkDeleted, LinkInvalidated
from schemas.events.identity import AgentKeyRegistered, AgentKeyRevoked, AsAgentRequirementSet
from schemas.events.memory import (
    MemoryChanges,
    MemoryDeleted,
    MemoryEmbedded,
    MemoryExpired,
    MemoryForgotten,
    MemoryImported,
    MemoryPromoted,
    MemoryStored,
    MemoryTouched,
    MemoryUpdated,
    OnConflict,
    TouchRules,
)
from schemas.events.subscription import (
    Subscription,
    SubscriptionCreated,
    SubscriptionDeadLettered,
    SubscriptionDeleted,
)

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "AgentKeyRegistered",
    "AgentKeyRevoked",
    "AgentRegistered",
    "Approval",
    "ArchivePurged",
    "AsAgentRequirementSet",
    "AttestLevel",
    "ConfidenceShadowObserved",
    "ConfidenceSignals",
    "EntityAliased",
    "EventPayload",
    "Link",
    "LinkCreated",
    "LinkDeleted",
    "LinkInvalidated",
    "MemoriesArchived",
    "MemoryChanges",
    "MemoryDeleted",
    "MemoryEmbedded",
    "MemoryExpired",
    "MemoryForgotten",
    "MemoryImported",
    "MemoryPromoted",
    "MemoryRestored",
    "MemoryStored",
    "MemoryTouched",
    "MemoryUpdated",
    "OnConflict",
    "PendingAction",
    "PendingActionType",
    "PendingDecided",
    "PendingExpired",
    "PendingRequested",
    "PendingVoted",
    "RuleRemembered",
    "ShadowObservation",
    "StandardCleared",
    "StandardSet",
    "Subscription",
    "SubscriptionCreated",
    "SubscriptionDeadLettered",
    "SubscriptionDeleted",
    "TouchRules",
    "decode_payload",
    "encode_payload",
]

SCHEMA_VERSION = 1



class EventPayload(Protocol):
    """What every event payload dataclass has: its stable type name."""

    TYPE: ClassVar[str]


#: Each domain's event classes; a new domain adds its tuple here (and nothing else changes).
_DOMAINS: tuple[tuple[type[Any], ...], ...] = (
    (MemoryStored, MemoryImported, MemoryUpdated, MemoryDeleted, MemoryPromoted, MemoryTouched, MemoryExpired,
     MemoryForgotten, MemoryEmbedded),
    (LinkCreated, LinkInvalidated, LinkDeleted, EntityAliased),
    (SubscriptionCreated, SubscriptionDeleted, SubscriptionDeadLettered),
    (MemoriesArchived, MemoryRestored, ArchivePurged),
    (StandardSet, StandardCleared, PendingRequested, PendingVoted, PendingDecided, PendingExpired, RuleRemembered,
     AgentRegistered),
    (AgentKeyRegistered, AgentKeyRevoked, AsAgentRequirementSet),
    (ConfidenceShadowObserved,),
)

EVENT_TYPES: dict[str, type[Any]] = {cls.TYPE: cls for domain in _DOMAINS for cls in domain}


def encode_payload(event: EventPayload) -> dict[str, Any]:
    payload: dict[str, Any] = to_payload(event)
    return payload


def decode_payload(event_type: str, payload: dict[str, Any]) -> Any:
    """The typed payload of an event, checked against its type.

    Raises:
        UnknownEventTypeError: no such event type.
        PayloadError: the payload does not match.
    """
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventTypeError(event_type)
    return from_payload(cls, payload, where=event_type)
