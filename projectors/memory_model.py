"""What a node needs of its memory read model, whatever the database: apply (``ReadModel``), query, report."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from projectors.archive_queries import ArchiveQueries
from projectors.base import ReadModel
from projectors.governance_queries import GovernanceQueries
from projectors.graph_queries import GraphQueries
from projectors.identity import IdentityQueries
from projectors.queries import MemoryQueries
from projectors.subscription_queries import SubscriptionQueries
from projectors.vector_search import VectorSearch

__all__ = ["MemoryReadModel"]


class MemoryReadModel(ReadModel):
    """A memory read model: SQLite (one node) or Postgres (shared by many nodes)."""

    queries: MemoryQueries
    subscriptions: SubscriptionQueries
    archive: ArchiveQueries
    governance: GovernanceQueries
    graph: GraphQueries
    identity: IdentityQueries
    #: Whether the log may interleave several partitions (regions, a Kafka topic of several partitions): then
    #: each memory event is kept by merge order, so one that arrives late can be replayed in its place
    #: (:mod:`projectors.convergence`). A log of one partition never has a late event and keeps no history.
    #: True unless the node knows its log (a store opened alone errs on the side of converging).
    partitioned: bool = True
    #: How far behind the newest event a node has read another event may still arrive and be merged in its
    #: place: the memory history older than the oldest partition's last stamp, or than the newest stamp less
    #: this, is settled and dropped (:func:`projectors.convergence.settle`, docs/regions.md); None keeps it all.
    history_horizon_s: float | None = 86400.0
    #: Settle once that many events are older than the horizon (each settling replays their memories once).
    history_settle_least: int = 100

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the model lives, for messages (a file path, or a URL without its password)."""

    @abstractmethod
    def meta(self, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def rejected_count(self) -> int: ...

    @abstractmethod
    def rejected_events(self, *, limit: int = 100) -> list[dict[str, object]]:
        """The refused events, by partition and offset: ``partition, offset, event_id, type, reason``."""

    @abstractmethod
    def dim_violations(self) -> int:
        """memory.embedded events refused for carrying a vector of the wrong dimension."""

    @abstractmethod
    def applied_count(self) -> int:
        """Distinct event ids applied (the dedup set's size)."""

    @abstractmethod
    def title_conflicts(self) -> list[dict[str, str]]:
        """Memories kept under a conflict title because another region claimed theirs earlier in merge order:
        ``id, namespace, claimed_title, partition, title, held_by`` (docs/regions.md, "Convergence")."""

    @abstractmethod
    def link_conflicts(self) -> list[dict[str, Any]]:
        """Links written from several regions, merged by merge order (the first 100): ``source_id, target_id,
        relation, regions, held_by`` (the region and type of the event that holds it; docs/regions.md)."""

    def vector_search(self) -> VectorSearch | None:
        """The model's own vector search, when it holds one every node can use (pgvector); None means the node
        keeps a local HNSW index (SQLite)."""
        return None

    @abstractmethod
    def close(self) -> None: ...
