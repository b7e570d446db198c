"""The export document (``GET /api/v1/export``, ``ai-memory export``): the memories a caller may see and the
links between them, in the original's shape ``{memories, links, count, exported_at}``."""

from __future__ import annotations

from typing import Any

from producers.graph.service import link_json
from producers.memory.taxonomy import export_memories
from producers.runtime.node import Node
from schemas import now_ts

__all__ = ["export_document"]


async def export_document(node: Node, as_agent: str | None) -> dict[str, Any]:
    reader = node.identity.visibility.reader(as_agent)
    memories = await export_memories(node, reader)
    links = await node.graph.all_links()
    if not reader.unfiltered:
        # A link is exported only when the caller may see both of its memories.
        shown = {m.id for m in memories}
        links = [lk for lk in links if lk.source_id in shown and lk.target_id in shown]
    return {"memories": [m.to_api() for m in memories], "links": [link_json(lk) for lk in links],
            "count": len(memories), "exported_at": now_ts()}
