"""Shapes shared by several surfaces (HTTP, CLI, MCP): stats, recall, duplicate checks, the embedder's
status, and memories arriving by import."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from infra.log import redact_url
from producers.errors import ValidationError
from producers.input.validation import (
    check_confidence,
    check_content,
    check_id,
    check_metadata,
    check_namespace,
    check_priority,
    check_source,
    check_tags,
    check_tier,
    check_timestamp,
    check_title,
)
from producers.memory.recall import RecallResult, round_score
from schemas import Memory, format_ts, now_ts, parse_ts

if TYPE_CHECKING:  # only for annotations: the governance service (imported by Node) parses memories here too
    from producers.memory.service import DuplicateCheck
    from producers.runtime.node import Node

__all__ = ["duplicate_body", "embedder_status", "memory_from_import", "recall_body", "stats_body"]

#: The Postgres read model's column is a 32-bit INTEGER (SQLite's holds 64 bits).
MAX_ACCESS_COUNT = 2**31 - 1

_REQUIRED = ("id", "tier", "namespace", "title", "content", "tags", "priority", "confidence", "source",
             "access_count", "created_at", "updated_at")


def memory_from_import(item: Any) -> Memory:
    """A memory from an export file, validated with the original's rules; it keeps its id and timestamps."""
    if not isinstance(item, dict):
        raise ValidationError("memory must be a JSON object")
    missing = [name for name in _REQUIRED if name not in item]
    if missing:
        raise ValidationError(f"missing field `{missing[0]}`")
    access = item["access_count"]
    if isinstance(access, bool) or not isinstance(access, int) or access < 0:
        raise ValidationError("access_count cannot be negative")
    if access > MAX_ACCESS_COUNT:  # a larger count is appended, then stops the projector for good
        raise ValidationError(f"access_count must be at most {MAX_ACCESS_COUNT}")
    optional = {name: check_timestamp(item[name], name) for name in ("last_accessed_at", "expires_at")
                if item.get(name) is not None}
    return Memory(
        id=check_id(item["id"]), tier=check_tier(item["tier"]),  # type: ignore[arg-type]
        namespace=check_namespace(item["namespace"]), title=check_title(item["title"]),
        content=check_content(item["content"]), tags=check_tags(item["tags"]),
        priority=check_priority(item["priority"]), confidence=check_confidence(item["confidence"]),
        source=check_source(item["source"]), access_count=access,
        created_at=check_timestamp(item["created_at"], "created_at"),
        updated_at=check_timestamp(item["updated_at"], "updated_at"),
        metadata=dict(check_metadata(item.get("metadata") or {})), **optional)


async def stats_body(node: Node) -> dict[str, Any]:
    """The original's stats fields, plus what this implementation adds: the log and the projector."""
    await node.service.sync()
    now = now_ts()
    soon = format_ts(parse_ts(now) + timedelta(hours=1))
    stats = node.service.queries.stats(now, soon)
    return {
        "total": stats.total, "by_tier": stats.by_tier, "by_namespace": stats.by_namespace,
        "expiring_soon": stats.expiring_soon, "links_count": node.model.graph.link_count(),
        "db_size_bytes": stats.db_size_bytes,
        "dim_violations": node.model.dim_violations(), "index_evictions_total": 0,
        "log": {"url": redact_url(node.log.url), "end_offsets": await node.log.end_offsets(),
                "backend": node.log.describe()},
        "projector": {"position": node.runner.position, "applied_events": node.model.applied_count(),
                      "rejected_events": node.model.rejected_count(),
                      "chain_breaks": node.runner.chain.status(limit=0)["breaks"]},
        "embedder": embedder_status(node),
        "vector_index": _vector_index(node),
        "lexical_index": _lexical_index(node),
    }


def embedder_status(node: Node) -> dict[str, Any]:
    """Whether semantic recall is on, with which model and dimension, and why not when it is off."""
    status = node.semantic.status()
    out: dict[str, Any] = {"embedder_ready": status.ready, "model": status.model, "dim": status.dim,
                           "embedder_device": status.device}
    if status.reason:
        out["embedder_error"] = status.reason
    if status.service:
        out["embedder_service"] = status.service  # a remote service: URL (no credentials), circuit, counters
    return out


def _lexical_index(node: Node) -> dict[str, Any]:
    """Recall's in-memory lexical index (SQLite): ``state`` building (FTS5 answers meanwhile), ready, waiting,
    failed or off, with the memories it holds and its approximate bytes."""
    s = node.service.queries.lexical_index_status()
    return {"state": s.state, "memories": s.memories, "bytes": s.bytes}


def _vector_index(node: Node) -> dict[str, Any]:
    if node.vectors is None:  # the shared Postgres read model's pgvector index
        search = node.semantic.vectors
        return {"kind": search.kind, "vectors": search.count(), "dim": search.dim}
    s = node.vectors.status()
    return {"kind": "hnsw", "vectors": s.vectors, "dim": s.dim, "position": s.position, "loaded_from": s.loaded_from,
            "dim_violations": s.dim_violations, "rejected_events": s.rejected, "approx_bytes": s.memory_bytes,
            "model": s.model, "other_model_vectors": s.other_model,
            "sqlite_vectors": node.service.queries.vector_count()}


def recall_body(result: RecallResult) -> dict[str, Any]:
    """The original's recall response: memories with 3-decimal scores, ``mode``, ``tokens_used`` and ``meta``."""
    out: dict[str, Any] = {
        "memories": [{**h.memory.to_api(), "score": round_score(h.score)} for h in result.memories],
        "count": len(result.memories), "mode": result.mode, "tokens_used": result.tokens_used}
    meta: dict[str, Any] = {
        "recall_mode": result.mode, "ranking": result.ranking, "reranker_used": False,
        "candidate_counts": {"fts": result.fts_candidates, "hnsw": result.semantic_candidates},
        "blend_weight": None if result.blend_weight is None else round_score(result.blend_weight)}
    if result.fallback is not None:
        meta["semantic_unavailable"] = result.fallback
    if result.budget_tokens is not None:
        out["budget_tokens"] = result.budget_tokens
        meta.update({"budget_overflow": result.budget_overflow, "budget_tokens_remaining": result.tokens_remaining,
                     "budget_tokens_used": result.tokens_used, "memories_dropped": result.dropped})
    # The original's keyword path answers without ``meta`` unless a budget is set; say why when it fell back.
    if result.mode != "keyword" or result.budget_tokens is not None or result.fallback is not None:
        out["meta"] = meta
    return out


def duplicate_body(check: DuplicateCheck) -> dict[str, Any]:
    nearest = None
    if check.nearest is not None:
        nearest = {"id": check.nearest.id, "title": check.nearest.title, "namespace": check.nearest.namespace,
                   "similarity": round_score(check.similarity)}
    return {"is_duplicate": check.is_duplicate, "threshold": check.threshold, "nearest": nearest,
            "suggested_merge": check.nearest.id if check.is_duplicate and check.nearest else None,
            "candidates_scanned": check.candidates_scanned}
