"""The graph family's one tool that needs no links: ``memory_get_taxonomy``, the namespace tree with counts.

The tree is built from the read model's per-namespace counts with the original's rules: densest namespaces
first when ``limit`` truncates, memories below ``depth`` counted in their boundary ancestor's ``subtree_count``,
children sorted by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from producers.mcp.tools.base import Handler, ToolContext, opt_int, opt_str
from producers.validation import MAX_NAMESPACE_DEPTH, check_namespace
from schemas import now_ts

__all__ = ["HANDLERS", "taxonomy"]


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


async def get_taxonomy(ctx: ToolContext, args: dict[str, Any]) -> Any:
    prefix = (opt_str(args, "namespace_prefix") or "").strip().rstrip("/")
    if prefix:
        check_namespace(prefix)
    depth = max(0, min(opt_int(args, "depth", 8), MAX_NAMESPACE_DEPTH))
    limit = max(1, min(opt_int(args, "limit", 1000), 10_000))
    await ctx.service.sync()
    counts = [(row.namespace, row.count) for row in ctx.service.queries.namespaces(now_ts())]
    return taxonomy(counts, prefix, depth, limit)


HANDLERS: dict[str, Handler] = {"memory_get_taxonomy": get_taxonomy}
