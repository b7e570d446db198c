"""The read side: projector runtime, read models and the queries over them. Never imports ``producers``."""

from __future__ import annotations

from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict
from projectors.confirm import Confirmer, applied_clock
from projectors.deliveries import Delivery, DeliveryStore, LocalSubscription
from projectors.errors import ProjectionStoppedError, ProjectorError, ReadModelError, WaitTimeoutError
from projectors.factory import is_postgres_url, open_read_model, sqlite_path
from projectors.fts import fts_query, query_tokens
from projectors.governance_queries import (
    AgentRecord,
    GovernanceQueries,
    NamespaceMeta,
    PendingRecord,
    QuotaUsage,
    memory_bytes,
)
from projectors.hnsw import HnswIndex, HnswReadModel, HnswStatus, VectorFilter, VectorHit
from projectors.memory_model import MemoryReadModel
from projectors.queries import (
    AmbiguousIdError,
    MemoryFilter,
    MemoryQueries,
    NamespaceCount,
    ScoredMemory,
    Stats,
    visible_to,
)
from projectors.sqlite import SQLiteMemoryQueries, SQLiteReadModel
from projectors.subscription_queries import DeadLetter, SubscriptionQueries, SubscriptionRow
from projectors.tokens import count_tokens
from projectors.verified import SharedVerifyRunner, VerifiedEvents
from projectors.webhook_rules import (
    FIRED_EVENT_TYPES,
    WEBHOOK_EVENT_TYPES,
    WebhookEvent,
    correlation_id,
    matches,
    parse_events,
    webhook_events,
)

__all__ = [
    "FIRED_EVENT_TYPES",
    "WEBHOOK_EVENT_TYPES",
    "AgentRecord",
    "AmbiguousIdError",
    "ApplyResult",
    "Confirmer",
    "DeadLetter",
    "Delivery",
    "DeliveryStore",
    "GovernanceQueries",
    "HnswIndex",
    "HnswReadModel",
    "HnswStatus",
    "LocalSubscription",
    "MemoryFilter",
    "MemoryQueries",
    "MemoryReadModel",
    "NamespaceCount",
    "NamespaceMeta",
    "PendingRecord",
    "ProjectionRunner",
    "ProjectionStoppedError",
    "ProjectorError",
    "QuotaUsage",
    "ReadModel",
    "ReadModelError",
    "SQLiteMemoryQueries",
    "SQLiteReadModel",
    "ScoredMemory",
    "SharedVerifyRunner",
    "Stats",
    "SubscriptionQueries",
    "SubscriptionRow",
    "VectorFilter",
    "VectorHit",
    "Verdict",
    "VerifiedEvents",
    "WaitTimeoutError",
    "WebhookEvent",
    "applied_clock",
    "correlation_id",
    "count_tokens",
    "fts_query",
    "is_postgres_url",
    "matches",
    "memory_bytes",
    "open_read_model",
    "parse_events",
    "query_tokens",
    "sqlite_path",
    "visible_to",
    "webhook_events",
]
