"""The read side: projector runtime, read models and the queries over them. Never imports ``producers``."""

from __future__ import annotations

from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict, unreadable_reason
from projectors.confirm import Confirmer, applied_clock
from projectors.deliveries import Delivery, DeliveryStore, LocalSubscription
from projectors.errors import (
    ChainBrokenError,
    ProjectionStoppedError,
    ProjectorError,
    ReadModelBusyError,
    ReadModelError,
    WaitTimeoutError,
)
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
from projectors.graph_queries import Entity, GraphQueries, TimelineRow
from projectors.graph_walk import KgNode, LinkRow, NodeRow, find_paths, hop_allowed, kg_query
from projectors.hnsw import HnswIndex, HnswReadModel, HnswStatus, VectorFilter, VectorHit, index_dir
from projectors.identity import ATTEST_KEY, AgentKey, IdentityQueries, ScopeCount, attest_level
from projectors.memory_model import MemoryReadModel
from projectors.queries import (
    AmbiguousIdError,
    MemoryFilter,
    MemoryQueries,
    NamespaceCount,
    ScoredMemory,
    Stats,
    inbox_of,
    may_see,
    owner_sees,
    row_visible,
    under_any,
    visible_to,
)
from projectors.sqlite import SQLiteMemoryQueries, SQLiteReadModel
from projectors.subscription_queries import DeadLetter, SubscriptionQueries, SubscriptionRow
from projectors.tokens import count_tokens
from projectors.vector_search import HnswVectorSearch, VectorSearch
from projectors.verified import SharedVerifyRunner, VerifiedEvents
from projectors.verifier import catch_up
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
    "ATTEST_KEY",
    "FIRED_EVENT_TYPES",
    "WEBHOOK_EVENT_TYPES",
    "AgentKey",
    "AgentRecord",
    "AmbiguousIdError",
    "ApplyResult",
    "ChainBrokenError",
    "Confirmer",
    "DeadLetter",
    "Delivery",
    "DeliveryStore",
    "Entity",
    "GovernanceQueries",
    "GraphQueries",
    "HnswIndex",
    "HnswReadModel",
    "HnswStatus",
    "HnswVectorSearch",
    "IdentityQueries",
    "KgNode",
    "LinkRow",
    "LocalSubscription",
    "MemoryFilter",
    "MemoryQueries",
    "MemoryReadModel",
    "NamespaceCount",
    "NamespaceMeta",
    "NodeRow",
    "PendingRecord",
    "ProjectionRunner",
    "ProjectionStoppedError",
    "ProjectorError",
    "QuotaUsage",
    "ReadModel",
    "ReadModelBusyError",
    "ReadModelError",
    "SQLiteMemoryQueries",
    "SQLiteReadModel",
    "ScopeCount",
    "ScoredMemory",
    "SharedVerifyRunner",
    "Stats",
    "SubscriptionQueries",
    "SubscriptionRow",
    "TimelineRow",
    "VectorFilter",
    "VectorHit",
    "VectorSearch",
    "Verdict",
    "VerifiedEvents",
    "WaitTimeoutError",
    "WebhookEvent",
    "applied_clock",
    "attest_level",
    "catch_up",
    "correlation_id",
    "count_tokens",
    "find_paths",
    "fts_query",
    "hop_allowed",
    "inbox_of",
    "index_dir",
    "is_postgres_url",
    "kg_query",
    "matches",
    "may_see",
    "memory_bytes",
    "open_read_model",
    "owner_sees",
    "parse_events",
    "query_tokens",
    "row_visible",
    "sqlite_path",
    "under_any",
    "unreadable_reason",
    "visible_to",
    "webhook_events",
]
