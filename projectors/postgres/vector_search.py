"""Vector search in the shared Postgres read model (pgvector HNSW): nodes sharing one Postgres keep no local
HNSW index; every node searches the same vectors. See :mod:`projectors.vector_search` for how it compares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from projectors.hnsw import VectorHit
from projectors.postgres.queries import PostgresMemoryQueries
from projectors.queries import MemoryFilter
from projectors.vector_search import VectorSearch
from schemas import VECTOR_DIM

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["PgVectorSearch"]


class PgVectorSearch(VectorSearch):
    kind = "pgvector"

    def __init__(self, queries: PostgresMemoryQueries) -> None:
        self.queries = queries
        self.dim = VECTOR_DIM

    def search(self, query: NDArray[np.float32], k: int, flt: MemoryFilter, *,
               excluded: Sequence[str] = (), model: str | None = None) -> list[VectorHit]:
        raw = np.ascontiguousarray(query, dtype="<f4").tobytes()
        return [VectorHit(i, c) for i, c in self.queries.nearest(raw, k, flt=flt, excluded=excluded, model=model)]

    def count(self, namespace: str | None = None) -> int:
        return self.queries.vector_count_in(namespace)
