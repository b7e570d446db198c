"""The graph traversals (kg_query, find_paths, lineage) as pure functions over edge look-ups, shared by every
read-model backend: a backend only answers "the links out of (or touching) these memories", level by level,
so SQLite and Postgres cannot disagree on what a traversal means.

The semantics are the original's recursive CTEs (``db::kg_query``, ``db::find_paths``): kg_query enumerates
simple paths along link direction, one row per path, ordered by depth, then the link's ``valid_from`` (or its
creation time), then its creation time (then the path, so ties are stable); find_paths enumerates simple
undirected paths, shortest first, then by their JSON text. Both stop expanding once the rows already found at
smaller depths fill the limit: deeper rows could never make it into the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["KgNode", "LinkRow", "NodeRow", "find_paths", "hop_allowed", "kg_query"]


@dataclass(frozen=True, slots=True)
class LinkRow:
    source_id: str
    target_id: str
    relation: str
    created_at: str
    valid_from: str | None = None
    valid_until: str | None = None
    observed_by: str | None = None
    signature: str | None = None
    attest_level: str = "unsigned"


@dataclass(frozen=True, slots=True)
class NodeRow:
    """What the graph keeps of a memory (for titles, namespaces and visibility, also as of an offset)."""

    id: str
    title: str
    namespace: str
    scope: str = "private"
    agent_id: str | None = None
    kind: str | None = None
    created_at: str = ""


@dataclass(frozen=True, slots=True)
class KgNode:
    """One kg_query row: the last hop of a path and the memory it reaches."""

    link: LinkRow
    node: NodeRow
    depth: int
    path: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"target_id": self.link.target_id, "relation": self.link.relation,
                "valid_from": self.link.valid_from, "valid_until": self.link.valid_until,
                "observed_by": self.link.observed_by, "title": self.node.title,
                "target_namespace": self.node.namespace, "depth": self.depth, "path": "->".join(self.path)}


#: The links out of these memories (a backend look-up, as of the query's offset).
OutLinks = Callable[[Sequence[str]], list[LinkRow]]
#: The memories among these ids that exist (and the caller may see), by id.
Nodes = Callable[[Sequence[str]], dict[str, NodeRow]]
#: The neighbours of these memories along links in either direction: (memory, neighbour) pairs.
Neighbours = Callable[[Sequence[str]], Iterable[tuple[str, str]]]


def hop_allowed(link: LinkRow, *, valid_at: str | None, allowed_agents: Sequence[str] | None) -> bool:
    """The original's per-hop filter: valid at ``valid_at`` (valid_from ≤ t < valid_until; a link without
    valid_from is not), and observed by one of ``allowed_agents``."""
    if valid_at is not None:
        if link.valid_from is None or link.valid_from > valid_at:
            return False
        if link.valid_until is not None and link.valid_until <= valid_at:
            return False
    return allowed_agents is None or link.observed_by in allowed_agents


def _sort_key(row: KgNode) -> tuple[object, ...]:
    return (row.depth, row.link.valid_from or row.link.created_at, row.link.created_at, row.path)


def kg_query(out_links: OutLinks, nodes: Nodes, source_id: str, *, max_depth: int, limit: int,
             valid_at: str | None = None, allowed_agents: Sequence[str] | None = None) -> list[KgNode]:
    """Paths of 1..``max_depth`` hops from ``source_id``, at most ``limit`` rows (see the module docstring).
    A memory ``nodes`` does not return (gone, or not visible to the caller) is neither reported nor crossed."""
    if allowed_agents is not None and not allowed_agents:
        return []
    rows: list[KgNode] = []
    frontier: list[tuple[str, ...]] = [(source_id,)]
    for depth in range(1, max_depth + 1):
        if len(rows) >= limit or not frontier:
            break
        ends = sorted({path[-1] for path in frontier})
        by_source: dict[str, list[LinkRow]] = {}
        for link in out_links(ends):
            if hop_allowed(link, valid_at=valid_at, allowed_agents=allowed_agents):
                by_source.setdefault(link.source_id, []).append(link)
        known = nodes(sorted({link.target_id for links in by_source.values() for link in links}))
        level: list[KgNode] = []
        for path in frontier:
            for link in by_source.get(path[-1], ()):
                node = known.get(link.target_id)
                if node is not None and link.target_id not in path:
                    level.append(KgNode(link, node, depth, (*path, link.target_id)))
        rows.extend(level)
        frontier = [row.path for row in level]
    rows.sort(key=_sort_key)
    return rows[:limit]


def _distances(neighbours: Neighbours, origin: str, max_depth: int) -> dict[str, int]:
    """Undirected hop counts from ``origin``, up to ``max_depth``."""
    dist = {origin: 0}
    frontier = [origin]
    for d in range(1, max_depth + 1):
        nxt: list[str] = []
        for _, other in neighbours(frontier):
            if other not in dist:
                dist[other] = d
                nxt.append(other)
        frontier = nxt
        if not frontier:
            break
    return dist


def _path_text(path: Sequence[str]) -> str:
    """A path as SQLite's json_array prints it: the original orders equal-length paths by this text."""
    return json.dumps(list(path), separators=(",", ":"), ensure_ascii=False)


def find_paths(neighbours: Neighbours, source_id: str, target_id: str, *, max_depth: int,
               max_results: int) -> list[list[str]]:
    """Simple paths between two memories over links taken in either direction, shortest first (see the module
    docstring). Pruned by the distance to the target, so a deep search explores only what can still reach it."""
    if source_id == target_id:
        return [[source_id]]
    to_target = _distances(neighbours, target_id, max_depth)
    if source_id not in to_target:
        return []
    found: list[list[str]] = []
    frontier: list[tuple[str, ...]] = [(source_id,)]
    for depth in range(1, max_depth + 1):
        if len(found) >= max_results or not frontier:
            break
        adjacency: dict[str, set[str]] = {}
        for node, other in neighbours(sorted({path[-1] for path in frontier})):
            adjacency.setdefault(node, set()).add(other)
        level: list[list[str]] = []
        nxt: list[tuple[str, ...]] = []
        for path in frontier:
            for other in adjacency.get(path[-1], ()):
                if other in path or to_target.get(other, max_depth + 1) > max_depth - depth:
                    continue
                if other == target_id:
                    level.append([*path, other])
                else:
                    nxt.append((*path, other))
        level.sort(key=_path_text)
        found.extend(level)
        frontier = nxt
    return found[:max_results]
