"""The read side: projector runtime, read models and the queries over them. Never imports ``producers``."""

from __future__ import annotations

from projectors.base import ApplyResult, ProjectionRunner, ReadModel, Verdict
from projectors.confirm import Confirmer, applied_clock
from projectors.errors import ProjectionStoppedError, ProjectorError, ReadModelError, WaitTimeoutError
from projectors.factory import is_postgres_url, open_read_model, sqlite_path
from projectors.fts import fts_query, query_tokens
from projectors.graph_queries import Entity, GraphQueries, TimelineRow
from projectors.graph_walk import KgNode, LinkRow, NodeRow, find_paths, hop_allowed, kg_query
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
from projectors.verified import SharedVerifyRunner, VerifiedEvents

__all__ = [
    "AmbiguousIdError",
    "ApplyResult",
    "Confirmer",
    "Entity",
    "GraphQueries",
    "HnswIndex",
    "HnswReadModel",
    "HnswStatus",
    "KgNode",
    "LinkRow",
    "MemoryFilter",
    "MemoryQueries",
    "MemoryReadModel",
    "NamespaceCount",
    "NodeRow",
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
    "TimelineRow",
    "VectorFilter",
    "VectorHit",
    "Verdict",
    "VerifiedEvents",
    "WaitTimeoutError",
    "applied_clock",
    "count_tokens",
    "find_paths",
    "fts_query",
    "hop_allowed",
    "is_postgres_url",
    "kg_query",
    "open_read_model",
    "query_tokens",
    "sqlite_path",
    "visible_to",
]
