"""Shapes shared by several surfaces (HTTP, CLI): stats, and memories arriving by import."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infra.log import redact_url
from producers.errors import ValidationError
from producers.node import Node
from producers.validation import (
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
from schemas import Memory, format_ts, now_ts, parse_ts

__all__ = ["memory_from_import", "stats_body"]

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
        "expiring_soon": stats.expiring_soon, "links_count": 0, "db_size_bytes": stats.db_size_bytes,
        "dim_violations": 0, "index_evictions_total": 0,
        "log": {"url": redact_url(node.log.url), "end_offsets": await node.log.end_offsets(),
                "backend": node.log.describe()},
        "projector": {"position": node.runner.position, "applied_events": node.model.applied_count(),
                      "rejected_events": node.model.rejected_count()},
    }
