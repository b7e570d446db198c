"""Nearest memories by embedding: the local HNSW index (SQLite nodes) or pgvector in a shared Postgres read model.

Semantic and hybrid recall and check_duplicate ask one :class:`VectorSearch`; the node picks it from its read
model (:meth:`projectors.MemoryReadModel.vector_search`). Both answer the ``k`` nearest by cosine among the
memories ``flt`` lets through, so the producer's ranking is the same on both; they differ only where ANN
differs: each is approximate in its own way (hnswlib at ef 128 in the process; pgvector HNSW at
:data:`PG_EF_SEARCH`), and pgvector applies every filter inside the search while HNSW applies namespace,
visibility and exclusions inside and the rest (tag, tier, dates) to its hits, so under a narrow tag or date
filter pgvector can return hits HNSW's top ``k`` did not contain.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from projectors.hnsw import HnswReadModel, VectorFilter, VectorHit
from projectors.queries import MemoryFilter

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["HnswVectorSearch", "VectorSearch"]


class VectorSearch(ABC):
    kind: str
    dim: int

    @abstractmethod
    def search(self, query: NDArray[np.float32], k: int, flt: MemoryFilter, *,
               excluded: Sequence[str] = (), model: str | None = None) -> list[VectorHit]:
        """The ``k`` stored vectors nearest to ``query`` (unit length) that ``flt`` admits, minus ``excluded``,
        best first, with their cosine; only ``model``'s vectors when given (another model's are not comparable)."""

    @abstractmethod
    def count(self, namespace: str | None = None) -> int:
        """How many vectors are searchable (in ``namespace``)."""

    def held(self, ids: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        """The vectors of ``ids`` this process holds in memory (the search's model only), no read: none for a
        search that lives in a database."""
        return {}


class HnswVectorSearch(VectorSearch):
    """The node's own hnswlib index (kept by its vector projector)."""

    kind = "hnsw"

    def __init__(self, model: HnswReadModel) -> None:
        self.model = model
        self.dim = model.dim

    def search(self, query: NDArray[np.float32], k: int, flt: MemoryFilter, *,
               excluded: Sequence[str] = (), model: str | None = None) -> list[VectorHit]:
        # ``model`` needs no filter here: the index holds one model's vectors (HnswReadModel.model).
        namespaces = flt.namespaces or ((flt.namespace,) if flt.namespace is not None else None)
        vf = VectorFilter(namespaces=frozenset(namespaces) if namespaces is not None else None,
                          as_agent=flt.as_agent, exclude_ids=frozenset(excluded),
                          hidden_prefixes=flt.hidden_prefixes)
        return self.model.index.search(query, k, vf)

    def held(self, ids: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        return self.model.index.vectors(ids)

    def count(self, namespace: str | None = None) -> int:
        index = self.model.index
        return len(index) if namespace is None else len(index.by_namespace.get(namespace, ()))
