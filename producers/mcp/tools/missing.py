"""Tools whose feature this node does not have yet. Each answers with an ``isError`` result that names what is
missing and which issue brings it, instead of pretending to work; ``memory_capabilities`` reports the same list.

When a feature lands, its tools move from :data:`MISSING` to a real handler module.
"""

from __future__ import annotations

from producers.mcp.tools.base import Handler, unavailable

__all__ = ["HANDLERS", "MISSING"]

_LINKS = "memory links and the knowledge graph are not available on this node yet (issue #6)"
_ENTITIES = "entities and aliases are not available on this node yet (issue #6)"

MISSING: dict[str, str] = {
    "memory_kg_query": _LINKS, "memory_kg_timeline": _LINKS, "memory_kg_invalidate": _LINKS,
    "memory_link": _LINKS, "memory_get_links": _LINKS, "memory_verify": _LINKS, "memory_find_paths": _LINKS,
    "memory_replay": "sidechain transcripts (memory_replay) are not recorded by this node",
    "memory_entity_register": _ENTITIES, "memory_entity_get_by_alias": _ENTITIES,
}

HANDLERS: dict[str, Handler] = {name: unavailable(reason) for name, reason in MISSING.items()}
