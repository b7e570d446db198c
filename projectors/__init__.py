"""The read side: projector runtime, read models and the queries over them. Never imports ``producers``."""

from __future__ import annotations

from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict
from projectors.confirm import Confirmer, applied_clock
from projectors.errors import ProjectionStoppedError, ProjectorError, ReadModelError, WaitTimeoutError
from projectors.factory import is_postgres_url, open_read_model, sqlite_path
from projectors.fts import fts_query, query_tokens
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
from projectors.tokens import count_tokens
from projectors.vector_search import HnswVectorSearch, VectorSearch
from projectors.verified import SharedVerifyRunner, VerifiedEvents

__all__ = [
    "AmbiguousIdError",
    "ApplyResult",
    "Confirmer",
    "HnswIndex",
    "HnswReadModel",
    "HnswStatus",
    "HnswVectorSearch",
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
    "ScoredMemory",
    "SharedVerifyRunner",
    "Stats",
    "VectorFilter",
    "VectorHit",
    "VectorSearch",
    "Verdict",
    "VerifiedEvents",
    "WaitTimeoutError",
    "applied_clock",
    "count_tokens",
    "fts_query",
    "is_postgres_url",
    "open_read_model",
    "query_tokens",
    "sqlite_path",
    "visible_to",
]
