"""Contradiction candidates (``GET /api/v1/contradictions``), the original's heuristic: the memories of a
namespace (or all), narrowed to a topic (``metadata.topic`` or the title equal to it), with the ``contradicts``
links already among them, plus a synthesized ``contradicts`` pair for every two candidates on the same topic
(same title when no topic is given) whose contents differ. No LLM: the MCP ``memory_detect_contradiction`` tool
is the model-backed check."""

from __future__ import annotations

from typing import Any

from producers.errors import ValidationError
from producers.input.commands import parse_list_query
from producers.input.validation import MAX_BULK
from producers.runtime.node import Node

__all__ = ["contradictions"]

_RELATION = "contradicts"


async def contradictions(node: Node, *, topic: str | None, namespace: str | None, limit: Any,
                         as_agent: str | None) -> dict[str, Any]:
    if not topic and not namespace:
        raise ValidationError("at least one of `topic` or `namespace` is required")
    query = parse_list_query({"namespace": namespace, "limit": limit, "as_agent": as_agent}, default_limit=50,
                             max_limit=MAX_BULK)
    listed = await node.service.list_memories(query)
    candidates = [m for m in listed if topic is None or m.title == topic or m.metadata.get("topic") == topic]
    ids = {m.id for m in candidates}
    existing = sorted({(lk.source_id, lk.target_id) for lk in await node.graph.links_among(sorted(ids))
                       if lk.relation == _RELATION})
    links: list[dict[str, Any]] = [{"source_id": s, "target_id": t, "relation": _RELATION, "synthesized": False}
                                   for s, t in existing]
    for i, a in enumerate(candidates):
        for b in candidates[i + 1:]:
            same_topic = topic is not None or a.title == b.title
            if same_topic and a.content != b.content:
                links.append({"source_id": a.id, "target_id": b.id, "relation": _RELATION, "synthesized": True})
    return {"memories": [m.to_api() for m in candidates], "links": links}
