"""The read side: projector runtime, read models and the queries over them. Never imports ``producers``."""

from __future__ import annotations

from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict
from projectors.confirm import Confirmer, applied_clock
from projectors.errors import ProjectionStoppedError, ProjectorError, ReadModelError, WaitTimeoutError
from projectors.factory import is_postgres_url, open_read_model, sqlite_path
from projectors.fts import fts_query, query_tokens
from projectors.hnsw import HnswIndex, HnswReadModel, HnswStatus, VectorFilter, VectorHit
from projectors.identity import ATTEST_KEY, AgentKey, IdentityQueries, ScopeCount, attest_level
from projectors.memory_model import MemoryReadModel
from projectors.queries import (
    AmbiguousIdError,
    MemoryFilter,
    MemoryQueries,
    NamespaceCount,
    ScoredMemory,
    Stats,
    may_see,
    under_any,
    visible_to,
)
from projectors.sqlite import SQLiteMemoryQueries, SQLiteReadModel
from projectors.tokens import count_tokens
from projectors.verified import SharedVerifyRunner, VerifiedEvents

__all__ = [
    "ATTEST_KEY",
    "AgentKey",
    "AmbiguousIdError",
    "ApplyResult",
    "Confirmer",
    "HnswIndex",
    "HnswReadModel",
    "HnswStatus",
    "IdentityQueries",
    "MemoryFilter",
    "MemoryQueries",
    "MemoryReadModel",
    "NamespaceCount",
    "ProjectionRunner",
    "ProjectionStoppedError",
    "ProjectorError",
    "ReadModel",
    "ReadModelError",
    "SQLiteMemoryQueries",
    "SQLiteReadModel",
    "ScopeCount",
    "ScoredMemory",
    "SharedVerifyRunner",
    "Stats",
    "VectorFilter",
    "VectorHit",
    "Verdict",
    "VerifiedEvents",
    "WaitTimeoutError",
    "applied_clock",
    "attest_level",
    "count_tokens",
    "fts_query",
    "is_postgres_url",
    "may_see",
    "open_read_model",
    "query_tokens",
    "sqlite_path",
    "under_any",
    "visible_to",
]
