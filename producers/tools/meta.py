"""The meta family: capabilities, agent_register, agent_list, session_start, stats.

Agents are ordinary long-tier memories in the reserved namespace ``_agents``, as in the original."""

from __future__ import annotations

import re
from typing import Any

from producers.errors import ValidationError
from producers.input.validation import check_namespace
from producers.memory.taxonomy import as_agent_param, visible_stats
from producers.tools import capabilities
from producers.tools.base import Handler, ToolContext, opt_bool, opt_int, opt_str, req_str
from producers.tools.governance import inject_standards

__all__ = ["HANDLERS"]

AGENTS_NAMESPACE = "_agents"
AGENT_TYPES = ("ai:claude-opus-4.6", "ai:claude-opus-4.7", "ai:codex-5.4", "ai:grok-4.2", "human", "system")
_AI_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def check_agent_type(agent_type: str) -> str:
    if not agent_type:
        raise ValidationError("agent_type cannot be empty")
    if len(agent_type.encode()) > 64:
        raise ValidationError("agent_type exceeds max length of 64 bytes")
    if agent_type in AGENT_TYPES:
        return agent_type
    if agent_type.startswith("ai:"):
        name = agent_type[3:]
        if not name:
            raise ValidationError("agent_type 'ai:' must include a name (e.g. 'ai:claude-opus-4.7')")
        if _AI_NAME.match(name):
            return agent_type
        raise ValidationError(f"agent_type '{agent_type}' contains invalid characters in the ai: name part "
                              "(allowed: alphanumeric, _-.)")
    raise ValidationError(f"invalid agent_type '{agent_type}' \u2014 must be one of: {', '.join(AGENT_TYPES)} "
                          "(or any ai:<name> form)")


async def capabilities_tool(ctx: ToolContext, args: dict[str, Any]) -> Any:
    family = opt_str(args, "family")
    if family is not None:
        return capabilities.family_listing(family, include_schema=opt_bool(args, "include_schema"),
                                           verbose=opt_bool(args, "verbose"), profile=ctx.profile)
    accept = capabilities.parse_accept(opt_str(args, "accept"))
    document = await capabilities.document(ctx.node, ctx.profile, accept=accept, identity=ctx.identity, llm=ctx.llm)
    if accept != "v1":
        document["families"] = capabilities.families_overview(ctx.profile)
    return document


async def agent_register(ctx: ToolContext, args: dict[str, Any]) -> Any:
    agent_type = check_agent_type(req_str(args, "agent_type"))
    # A keyed agent's registry entry is changed only by a call its signature attests.
    agent_id = ctx.claim(req_str(args, "agent_id"))
    body = await ctx.node.governance.register_agent(agent_id, agent_type, args.get("capabilities"))
    return {k: v for k, v in body.items() if k not in ("offset", "log_clock")}


async def agent_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    agents = [a.to_api() for a in await ctx.node.governance.list_agents()]
    return {"count": len(agents), "agents": agents}


async def session_start(ctx: ToolContext, args: dict[str, Any]) -> Any:
    namespace = opt_str(args, "namespace")
    out = await ctx.node.lifecycle.session_start(namespace=check_namespace(namespace) if namespace else None,
                                                 limit=opt_int(args, "limit", 10), as_agent=as_agent_param(args))
    if ctx.llm is not None and out["memories"]:
        out["summary"] = await ctx.llm.summarize([(m["title"], m["content"]) for m in out["memories"]])
    return inject_standards(ctx, namespace, out)


async def stats(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await visible_stats(ctx.node, as_agent_param(args))


HANDLERS: dict[str, Handler] = {
    "memory_capabilities": capabilities_tool, "memory_agent_register": agent_register,
    "memory_agent_list": agent_list, "memory_session_start": session_start, "memory_stats": stats,
}
