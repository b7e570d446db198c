"""Reads that span namespaces and are not a memory filter: the namespace taxonomy and export, with scope
visibility and the mandatory-``as_agent`` rule applied (shared by HTTP, MCP and the CLI).

The taxonomy is built from per-namespace counts with the original's rules: densest namespaces first when
``limit`` truncates, memories below ``depth`` counted in their boundary ancestor's ``subtree_count``, children
sorted by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from producers.errors import ValidationError
from producers.identity.visibility import Reader
from producers.input.validation import MAX_NAMESPACE_DEPTH, check_namespace
from producers.memory.wire import stats_body
from schemas import Memory, now_ts

if TYPE_CHECKING:
    from producers.runtime.node import Node

__all__ = ["MAX_TAXONOMY_LIMIT", "as_agent_param", "export_memories", "taxonomy", "visible_export",
           "visible_namespace_counts", "visible_stats", "visible_taxonomy"]

MAX_TAXONOMY_LIMIT = 10_000


@dataclass
class _Node:
    namespace: str
    name: str
    count: int = 0
    subtree_count: int = 0
    children: list[_Node] = field(default_factory=list)

    def child(self, namespace: str, name: str) -> _Node:
        for c in self.children:
            if c.name == name:
                return c
        node = _Node(namespace, name)
        self.children.append(node)
        return node

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "count": self.count,
                "subtree_count": self.subtree_count,
                "children": [c.to_json() for c in sorted(self.children, key=lambda c: c.name)]}


def _suffix(namespace: str, prefix: str) -> str | None:
    if not prefix:
        return namespace
    if namespace == prefix:
        return ""
    return namespace[len(prefix) + 1:] if namespace.startswith(prefix + "/") else None


def taxonomy(counts: list[tuple[str, int]], prefix: str, depth: int, limit: int) -> dict[str, Any]:
    """The original's taxonomy answer from ``(namespace, live count)`` pairs. Pure."""
    inside = [(ns, c) for ns, c in counts if _suffix(ns, prefix) is not None]
    groups = sorted(inside, key=lambda g: (-g[1], g[0]))[:limit]
    root = _Node(prefix, prefix.rsplit("/", 1)[-1])
    for ns, c in groups:
        segments = [s for s in (_suffix(ns, prefix) or "").split("/") if s]
        used = segments[:depth]
        root.subtree_count += c
        if not used:
            root.count += c
            continue
        node, path = root, prefix
        for i, segment in enumerate(used):
            path = f"{path}/{segment}" if path else segment
            node = node.child(path, segment)
            node.subtree_count += c
            if i + 1 == len(used) and len(used) == len(segments):
                node.count += c
    total = sum(c for _, c in inside)
    return {"tree": root.to_json(), "total_count": total, "truncated": sum(c for _, c in groups) < total}


def as_agent_param(params: Mapping[str, Any]) -> str | None:
    """The ``as_agent`` of a query string or body (an agent's namespace position), validated; None if absent."""
    value = params.get("as_agent")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("as_agent must be a string")
    return check_namespace(value, what="as_agent")


async def visible_taxonomy(node: Node, *, prefix: str, depth: int, limit: int, as_agent: str | None
                           ) -> dict[str, Any]:
    """The taxonomy of what ``as_agent`` may see (depth clamped to 0-8, limit to 1-10000)."""
    prefix = prefix.strip().rstrip("/")
    if prefix:
        check_namespace(prefix)
    depth = max(0, min(depth, MAX_NAMESPACE_DEPTH))
    limit = max(1, min(limit, MAX_TAXONOMY_LIMIT))
    visibility = node.identity.visibility
    reader = visibility.reader(as_agent, named=(prefix,) if prefix else ())
    await node.service.sync()
    return taxonomy(visibility.namespace_counts(now_ts(), reader), prefix, depth, limit)


async def visible_namespace_counts(node: Node, as_agent: str | None) -> list[tuple[str, int]]:
    """``(namespace, live count)`` of what the reader may see, most memories first (the original's order)."""
    visibility = node.identity.visibility
    reader = visibility.reader(as_agent)
    if reader.unfiltered:
        rows = node.service.queries.namespaces(now_ts())
        return [(r.namespace, r.count) for r in rows]
    counts = visibility.namespace_counts(now_ts(), reader)
    return sorted(counts, key=lambda c: (-c[1], c[0]))


async def visible_stats(node: Node, as_agent: str | None) -> dict[str, Any]:
    """The stats answer with ``by_namespace`` as the reader may see it (names are data too: with ``as_agent`` or
    ``X-Agent-Id``, or while some subtree requires ``as_agent``). The totals stay the node's, for operators."""
    body = await stats_body(node)
    if not node.identity.visibility.reader(as_agent).unfiltered:
        counts = await visible_namespace_counts(node, as_agent)
        body["by_namespace"] = [{"namespace": ns, "count": n} for ns, n in counts]
    return body


async def export_memories(node: Node, reader: Reader) -> list[Memory]:
    """Every live memory ``reader`` may see."""
    await node.service.sync()
    return reader.visible(node.service.queries.export(now_ts()))


async def visible_export(node: Node, as_agent: str | None) -> list[Memory]:
    """Every live memory ``as_agent`` may see (without it: all but the mandatory-as_agent namespaces)."""
    return await export_memories(node, node.identity.visibility.reader(as_agent))
