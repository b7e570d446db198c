"""The lifecycle verbs, as the original's: ``archive list|restore|purge|stats`` and ``consolidate``."""

from __future__ import annotations

import argparse

from producers.cli.spec import VerbSpec, emit, open_node
from producers.errors import ValidationError
from producers.identity.agents import resolve_cli_agent
from producers.memory.taxonomy import as_agent_param
from producers.runtime.node import Node, NodeConfig

__all__ = ["VERBS"]

_ACTIONS = ("list", "restore", "purge", "stats")


def _archive_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=_ACTIONS)
    p.add_argument("id", nargs="?", help="the memory to restore (restore only)")
    p.add_argument("--namespace", "-n")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--older-than-days", type=int, help="purge only what was archived more than N days ago")
    p.add_argument("--as-agent", help="list and count only what this agent namespace may see")


async def _archive_action(node: Node, args: argparse.Namespace) -> tuple[object, str]:
    """The action's JSON answer and its one-line text form."""
    agent = resolve_cli_agent(args.agent_id)
    as_agent = as_agent_param({"as_agent": args.as_agent})
    if args.action == "list":
        items = await node.lifecycle.list_archived(namespace=args.namespace, limit=min(max(args.limit, 1), 1000),
                                                   offset=max(args.offset, 0), as_agent=as_agent)
        lines = [f"{a.memory.id}  [{a.original_tier}] {a.memory.namespace}  {a.archived_at} ({a.archive_reason})  "
                 f"{a.memory.title}" for a in items]
        return {"archived": [a.to_api() for a in items], "count": len(items)}, "\n".join(lines) or "(archive empty)"
    if args.action == "restore":
        if not args.id:
            raise ValidationError("restore needs the id of an archived memory")
        memory, _ = await node.lifecycle.restore(args.id, agent_id=agent)
        return {"restored": True, "id": memory.id}, f"restored {memory.id}"
    if args.action == "purge":
        purged, _ = await node.lifecycle.purge(older_than_days=args.older_than_days, agent_id=agent)
        return {"purged": purged}, f"purged {purged} archived memories"
    stats = (await node.lifecycle.archive_stats(as_agent=as_agent)).to_api()
    by_ns = ", ".join(f"{r['namespace']}={r['count']}" for r in stats["by_namespace"])
    return stats, f"archived: {stats['archived_total']}" + (f"   by namespace: {by_ns}" if by_ns else "")


async def _archive(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        body, text = await _archive_action(node, args)
    emit(body) if args.json else print(text)
    return 0


def _consolidate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", help="comma-separated ids of the memories to consolidate (2 to 100)")
    p.add_argument("--title", "-T", required=True)
    p.add_argument("--summary", "-s", required=True)
    p.add_argument("--namespace", "-n", default="global")
    p.add_argument("--tier", default="long", choices=["short", "mid", "long"])


async def _consolidate(args: argparse.Namespace, config: NodeConfig) -> int:
    ids = [i.strip() for i in args.ids.split(",") if i.strip()]
    async with open_node(config) as node:
        done = await node.lifecycle.consolidate(ids, title=args.title, summary=args.summary,
                                                namespace=args.namespace, tier=args.tier,
                                                agent_id=resolve_cli_agent(args.agent_id))
    body = {"id": done.memory.id, "consolidated": len(done.sources)}
    emit(body) if args.json else print(f"consolidated {len(done.sources)} memories into {done.memory.id}")
    return 0


VERBS = [
    VerbSpec("archive", "archived memories: list, restore ID, purge [--older-than-days N], stats", _archive_args,
             _archive),
    VerbSpec("consolidate", "replace memories by one summary (the sources are archived, linked by derived_from)",
             _consolidate_args, _consolidate),
]
