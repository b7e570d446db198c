"""The read side: projector runtime, read models and the queries over them. Never imports ``producers``."""

from __future__ import annotations

from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict
from projectors.errors import ProjectionStoppedError, ProjectorError, ReadModelError, WaitTimeoutError
from projectors.fts import fts_query, query_tokens
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

__all__ = [
    "AmbiguousIdError",
    "ApplyResult",
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
    "Stats",
    "Verdict",
    "WaitTimeoutError",
    "count_tokens",
    "fts_query",
    "query_tokens",
    "visible_to",
]
