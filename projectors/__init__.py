"""The read side: projector runtime, read models and the queries over them. Never imports ``producers``."""

from __future__ import annotations

from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict
from projectors.confirm import Confirmer, applied_clock
from projectors.errors import ProjectionStoppedError, ProjectorError, ReadModelError, WaitTimeoutError
from projectors.fts import fts_query, query_tokens
from projectors.hnsw import HnswIndex, HnswReadModel, HnswStatus, VectorFilter, VectorHit
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
from projectors.tokens import count_tokens
from projectors.verified import SharedVerifyRunner, VerifiedEvents

__all__ = [
    "AmbiguousIdError",
    "ApplyResult",
    "Confirmer",
    "HnswIndex",
    "HnswReadModel",
    "HnswStatus",
    "MemoryFilter",
    "MemoryQueries",
    "NamespaceCount",
    "ProjectionRunner",
    "ProjectionStoppedError",
    "ProjectorError",
    "ReadModel",
    "ReadModelError",
    "SQLiteMemoryQueries",
    "SQLiteReadModel",
    "ScoredMemory",
    "SharedVerifyRunner",
    "Stats",
    "VectorFilter",
    "VectorHit",
    "Verdict",
    "VerifiedEvents",
    "WaitTimeoutError",
    "applied_clock",
    "count_tokens",
    "fts_query",
    "query_tokens",
    "visible_to",
]
