"""``ai-memory link`` and ``ai-memory resolve`` (the original's verbs) and ``ai-memory kg`` (a kg_query from the
shell, ``--as-of`` too)."""

from __future__ import annotations

import argparse

from producers.cli.spec import VerbSpec, emit, open_node
from producers.graph.service import check_as_of, kg_body
from producers.identity.agents import resolve_cli_agent
from producers.input.commands import parse_update
from producers.runtime.node import NodeConfig

__all__ = ["VERBS"]


async def _link(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        made, write = await node.graph.link(args.source_id, args.target_id, args.relation,
                                            agent_id=resolve_cli_agent(args.agent_id))
    if args.json:
        emit({"linked": True, "attest_level": made.attest_level, "offset": write.offset})
    else:
        print(f"linked: {args.source_id} --[{args.relation}]--> {args.target_id} ({made.attest_level})")
    return 0


def _link_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source_id")
    p.add_argument("target_id")
    p.add_argument("--relation", "-r", default="related_to",
                   help="related_to (default), supersedes, contradicts or derived_from")


async def _resolve(args: argparse.Namespace, config: NodeConfig) -> int:
    """The original's contradiction resolution: ``winner --supersedes--> loser``, the loser down to priority 1 and
    confidence 0.1, the winner touched. Three events: the link, the loser's update, the winner's touch."""
    agent = resolve_cli_agent(args.agent_id)
    async with open_node(config) as node:
        winner = await node.service.resolve(args.winner_id)
        loser = await node.service.resolve(args.loser_id)
        await node.graph.link(winner.id, loser.id, "supersedes", agent_id=agent)
        await node.service.update(loser.id, parse_update({"priority": 1, "confidence": 0.1}), agent_id=agent)
        await node.service.touch([winner.id], agent_id=agent)
    if args.json:
        emit({"resolved": True, "winner": args.winner_id, "loser": args.loser_id})
    else:
        print(f"resolved: {args.winner_id} supersedes {args.loser_id}")
    return 0


def _resolve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("winner_id", help="the memory that wins (supersedes)")
    p.add_argument("loser_id", help="the memory that loses (superseded)")


async def _kg(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        depth, rows = await node.graph.kg_query(args.source_id, max_depth=args.depth, valid_at=args.valid_at,
                                                limit=args.limit, as_of=check_as_of(args.as_of),
                                                as_agent=args.as_agent)
    if args.json:
        emit(kg_body(args.source_id, depth, rows))
        return 0
    for row in rows:
        print(f"{'  ' * (row.depth - 1)}--[{row.link.relation}]--> {row.link.target_id}  {row.node.title}")
    if not rows:
        print("(no links)")
    return 0


def _kg_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source_id")
    p.add_argument("--depth", type=int, default=1, help="hops to follow, 1-5 (default 1)")
    p.add_argument("--valid-at", help="only links valid at this time (RFC 3339)")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--as-of", help="the graph as it was at this log offset")
    p.add_argument("--as-agent", help="only memories this agent namespace may see")


VERBS = [
    VerbSpec("link", "link two memories (signed when this agent has a key here)", _link_args, _link),
    VerbSpec("resolve", "resolve a contradiction: the winner supersedes the loser (a supersedes link; the loser "
             "drops to priority 1 and confidence 0.1; the winner is touched)", _resolve_args, _resolve),
    VerbSpec("kg", "follow a memory's links (kg_query), now or --as-of a log offset", _kg_args, _kg),
]
