"""``ai-memory auto-consolidate``: the original's rule-based consolidation (no LLM). In each namespace (or the one
named) with at least ``--min-count`` memories (``--short-only``: short tier only), memories are grouped by tag
(untagged ones together); every group of ``--min-count`` or more not consolidated yet becomes one long-tier memory
titled ``Consolidated: <tag> (<n> memories)`` whose content lists ``- <title>: <first 200 characters>``. Here
that is ``consolidate`` (one append: the new memory, ``derived_from`` links, the sources archived, restorable).
Groups are taken in tag order, so a run is deterministic (the original's order is a hash map's).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from producers.cli.spec import VerbSpec, emit, open_node
from producers.identity.agents import resolve_cli_agent
from producers.input.commands import parse_list_query
from producers.memory.taxonomy import visible_namespace_counts
from producers.runtime.node import NodeConfig

if TYPE_CHECKING:
    from schemas import Memory

__all__ = ["VERBS", "tag_groups"]

_UNTAGGED = "_untagged"


def tag_groups(memories: list[Memory]) -> dict[str, list[Memory]]:
    groups: dict[str, list[Memory]] = defaultdict(list)
    for memory in memories:
        for tag in memory.tags or [_UNTAGGED]:
            groups[tag].append(memory)
    return dict(sorted(groups.items()))


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--namespace", "-n", help="only this namespace (default: every namespace)")
    p.add_argument("--short-only", action="store_true", help="only short-tier memories")
    p.add_argument("--min-count", type=int, default=3, help="the smallest group consolidated (default 3)")
    p.add_argument("--dry-run", action="store_true", help="list the groups; change nothing")


async def _run(args: argparse.Namespace, config: NodeConfig) -> int:
    agent = resolve_cli_agent(args.agent_id)
    groups: list[dict[str, Any]] = []
    total = 0
    async with open_node(config) as node:
        namespaces = [args.namespace] if args.namespace else [ns for ns, _ in await visible_namespace_counts(node,
                                                                                                              None)]
        for namespace in namespaces:
            query = {"namespace": namespace, "limit": 200, "tier": "short" if args.short_only else None}
            memories = await node.service.list_memories(parse_list_query(query))
            if len(memories) < args.min_count:
                continue
            done: set[str] = set()
            for tag, members in tag_groups(memories).items():
                group = [m for m in members if m.id not in done]
                if len(group) < args.min_count:
                    continue
                if args.dry_run:
                    groups.append({"namespace": namespace, "tag": tag, "count": len(group),
                                   "titles": [m.title for m in group]})
                    continue
                title = f"Consolidated: {namespace if tag == _UNTAGGED else tag} ({len(group)} memories)"
                summary = "\n".join(f"- {m.title}: {m.content[:200]}" for m in group)
                await node.lifecycle.consolidate([m.id for m in group], title=title, summary=summary,
                                                 namespace=namespace, tier="long", agent_id=agent)
                done.update(m.id for m in group)
                total += len(group)
    emit({"dry_run": True, "groups": groups} if args.dry_run else {"consolidated": total})
    return 0


VERBS: list[VerbSpec] = [
    VerbSpec("auto-consolidate", "consolidate each namespace's memories by tag (groups of --min-count or more) "
             "into one long-tier memory per group, as the original (no LLM)", _arguments, _run),
]
