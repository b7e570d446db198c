"""A node's view of itself and its cluster, as one JSON-ready dict: the log's end, how far each local read model
is behind it, the stream's leader and replicas, and the clock each peer last confirmed.

Shared by ``ai-memory cluster status``, ``GET /api/v1/status`` and the HTML page at ``GET /status``.
"""

from __future__ import annotations

from typing import Any

from infra.log import Clock, redact_url
from producers.runtime.node import Node

__all__ = ["cluster_status", "lag"]

#: Title conflicts listed in full in a status document (all are counted).
_CONFLICTS_LISTED = 100


def lag(end: Clock, position: Clock) -> Clock:
    """Offsets behind ``end``, per partition of the log."""
    return {p: max(0, end[p] - position.get(p, 0)) for p in end}


async def cluster_status(node: Node) -> dict[str, Any]:
    end = await node.log.end_offsets()
    position = node.runner.position
    describe = getattr(node.log, "cluster_info", None)
    stream = await describe() if describe is not None else None
    quorum = node.config.quorum
    conflicts = node.model.title_conflicts()
    # Memories kept under a conflict title because another region claimed theirs first (docs/regions.md, "Convergence").
    models: dict[str, Any] = {"memories": {"location": node.model.location, "position": position,
                                           "lag": lag(end, position), "rejected": node.model.rejected_count(),
                                           "title_conflicts": {"count": len(conflicts),
                                                               "memories": conflicts[:_CONFLICTS_LISTED]},
                                           # Links written from several regions, merged by merge order (the
                                           # first 100, the same docs section).
                                           "link_conflicts": node.model.link_conflicts()}}
    # A node on a shared Postgres read model searches its vectors there (pgvector) and keeps no HNSW index.
    if node.vectors is not None and node.vector_runner is not None:
        vectors = node.vector_runner.position
        models["vectors"] = {"location": str(node.vectors.directory), "position": vectors, "lag": lag(end, vectors)}
    return {"node_id": node.key.key_id, "log": redact_url(node.log.url), "stream": stream, "end_offsets": end,
            "projector_position": position, "projector_lag": lag(end, position), "read_models": models,
            "log_chain": node.runner.chain.status(),
            "quorum": {"writes": quorum.needed, "cluster_size": quorum.nodes, "timeout_ms": quorum.timeout_ms},
            "last_confirmation": node.confirmer.last_sent,
            "peers": {peer: {"clock": clock, "lag": lag(end, clock)}
                      for peer, clock in sorted(node.quorum.peers.items())}}
