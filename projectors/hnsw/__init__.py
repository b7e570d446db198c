"""The HNSW read model: memory vectors from ``memory.embedded`` events, searched with in-search filters."""

from __future__ import annotations

from projectors.hnsw.index import HnswIndex, VectorFilter, VectorHit
from projectors.hnsw.model import HnswReadModel, HnswStatus, index_dir

__all__ = ["HnswIndex", "HnswReadModel", "HnswStatus", "VectorFilter", "VectorHit", "index_dir"]
