"""The meta family: capabilities, agent_register, agent_list, session_start, stats.

Agents are ordinary long-tier memories in the reserved namespace ``_agents``, as in the original."""

from __future__ import annotations

import json
import re
from typing import Any

from producers.commands import parse_create
from producers.errors import ValidationError
from producers.mcp import capabilities
from producers.mcp.tools.base import Handler, ToolContext, all_in, opt_bool, opt_int, opt_str, req_str
from producers.validation import check_agent_id, check_namespace, check_tags
from producers.wire import stats_body
from schemas import now_ts

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
    agent_id = check_agent_id(req_str(args, "agent_id"))
    agent_type = check_agent_type(req_str(args, "agent_type"))
    caps = args.get("capabilities") or []
    check_tags(caps)
    title = f"agent:{agent_id}"
    await ctx.service.sync()
    now = now_ts()
    previous = ctx.service.queries.find_by_title(title, AGENTS_NAMESPACE)
    registered_at = previous.metadata.get("registered_at", now) if previous else now
    metadata = {"agent_id": agent_id, "agent_type": agent_type, "capabilities": caps,
                "registered_at": registered_at, "last_seen_at": now}
    cmd = parse_create({"title": title, "content": json.dumps(metadata, sort_keys=True), "tier": "long",
                        "namespace": AGENTS_NAMESPACE, "tags": ["agent-registration"], "source": "system",
                        "metadata": metadata, "on_conflict": "merge"}, now=now)
    result = await ctx.service.store(cmd, agent_id=agent_id)
    return {"registered": True, "id": result.memory.id, "agent_id": agent_id, "agent_type": agent_type,
            "capabilities": caps}


async def agent_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    fields = ("agent_id", "agent_type", "capabilities", "registered_at", "last_seen_at")
    agents = [{f: m.metadata.get(f, [] if f == "capabilities" else "") for f in fields}
              for m in await all_in(ctx, AGENTS_NAMESPACE)]
    agents.sort(key=lambda a: str(a["registered_at"]))
    return {"count": len(agents), "agents": agents}


async def session_start(ctx: ToolContext, args: dict[str, Any]) -> Any:
    namespace = opt_str(args, "namespace")
    out = await ctx.node.lifecycle.session_start(namespace=check_namespace(namespace) if namespace else None,
                                                 limit=opt_int(args, "limit", 10))
    if ctx.llm is not None and out["memories"]:
        out["summary"] = await ctx.llm.summarize([(m["title"], m["content"]) for m in out["memories"]])
    return out


async def stats(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await stats_body(ctx.node)


HANDLERS: dict[str, Handler] = {
    "memory_capabilities": capabilities_tool, "memory_agent_register": agent_register,
    "memory_agent_list": agent_list, "memory_session_start": session_start, "memory_stats": stats,
}
