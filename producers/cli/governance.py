"""``ai-memory agents`` and ``ai-memory pending``, as the original's: the agent registry and the pending actions
(list, approve, reject), on the node's data directory (every decision an event on the log, as over HTTP)."""

from __future__ import annotations

import argparse

from producers.cli.spec import VerbSpec, emit, open_node
from producers.governance import REMEMBER
from producers.identity.agents import resolve_cli_agent
from producers.runtime.node import NodeConfig
from producers.tools.meta import check_agent_type

__all__ = ["VERBS"]


async def _agents(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        if args.action == "register":
            caps = [c.strip() for c in args.capabilities.split(",") if c.strip()]
            agent_id = resolve_cli_agent(args.agent_id)
            out = await node.governance.register_agent(agent_id, check_agent_type(args.agent_type), caps)
            emit(out) if args.json else print(f"registered {agent_id} (type={args.agent_type}, "
                                              f"capabilities={','.join(caps) or '-'})")
            return 0
        agents = await node.governance.list_agents()
    if args.json:
        emit({"count": len(agents), "agents": [a.to_api() for a in agents]})
        return 0
    for a in agents:
        listed = f" [{','.join(a.capabilities)}]" if a.capabilities else ""
        print(f"{a.agent_id}  type={a.agent_type}  registered={a.registered_at}  last_seen={a.last_seen_at}{listed}")
    print(f"{len(agents)} registered agents" if agents else "no registered agents")
    return 0


def _agents_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "register"], default="list")
    p.add_argument("--agent-type", default="human", help="for register (default human)")
    p.add_argument("--capabilities", default="", help="for register: a comma-separated list")


async def _pending(args: argparse.Namespace, config: NodeConfig) -> int:
    async with open_node(config) as node:
        gov = node.governance
        if args.action == "list":
            items = await gov.list_pending(status=args.status, limit=args.limit)
            if args.json:
                emit({"count": len(items), "pending": [p.to_api() for p in items]})
                return 0
            for p in items:
                print(f"[{p.id[:8]}] {p.status} ns={p.namespace} action={p.action_type} by={p.requested_by} "
                      f"({p.requested_at})")
            print(f"{len(items)} pending action(s)" if items else "no pending actions")
            return 0
        if args.id is None:
            print(f"pending {args.action} needs the pending action's id")
            return 2
        agent = resolve_cli_agent(args.agent_id)
        decide = gov.approve if args.action == "approve" else gov.reject
        decision = await decide(args.id, agent_id=agent, remember=args.remember)
    if args.json:
        emit(decision.body)
    elif decision.collecting:
        print(f"vote recorded: {decision.body['votes']} of {decision.body['quorum']}")
    else:
        print(f"{args.action}d {args.id}" + (" (executed)" if decision.body.get("executed") else ""))
    return 0


def _pending_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["list", "approve", "reject"])
    p.add_argument("id", nargs="?", help="the pending action's id (approve, reject)")
    p.add_argument("--status", choices=["pending", "approved", "rejected", "expired"], default=None)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--remember", choices=REMEMBER, default="once")


VERBS = [
    VerbSpec("agents", "the agent registry: list, or register --agent-id ID --agent-type TYPE", _agents_args,
             _agents),
    VerbSpec("pending", "governance: list pending actions, approve or reject one", _pending_args, _pending),
]
