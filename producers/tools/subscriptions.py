"""Webhook subscription tools: memory_subscribe, memory_unsubscribe, memory_list_subscriptions,
memory_subscription_replay, memory_subscription_dlq_list. Same service and JSON shapes as the HTTP routes."""

from __future__ import annotations

from typing import Any

from producers.tools.base import Handler, ToolContext, opt_str, req_str
from producers.webhooks.subscriptions import SubscribeCommand
from producers.webhooks.wire import dead_letter_body, dlq_limit, subscription_body

__all__ = ["HANDLERS"]


async def subscribe(ctx: ToolContext, args: dict[str, Any]) -> Any:
    agent = ctx.agent_id(args)
    row, write = await ctx.node.subscriptions.subscribe(SubscribeCommand.parse(args), agent_id=agent)
    return {"id": row.id, "url": row.url, "events": row.events, "namespace_filter": row.namespace_filter,
            "agent_filter": row.agent_filter, "created_by": row.created_by, "offset": write.offset}


async def unsubscribe(ctx: ToolContext, args: dict[str, Any]) -> Any:
    sub_id = req_str(args, "id")
    removed, _ = await ctx.node.subscriptions.unsubscribe(sub_id, agent_id=ctx.agent_id(args))
    return {"id": sub_id, "removed": removed}


async def list_subscriptions(ctx: ToolContext, args: dict[str, Any]) -> Any:
    service = ctx.node.subscriptions
    counts = service.dispatch_counts()
    owned = service.owned(agent_id=ctx.agent_id(args))
    rows = [subscription_body(r, dispatch_count=counts.get(r.id, 0)) for r in owned]
    return {"count": len(rows), "subscriptions": rows}


async def replay(ctx: ToolContext, args: dict[str, Any]) -> Any:
    sub_id = req_str(args, "subscription_id")
    since = args.get("since")
    since = str(since) if isinstance(since, int) and not isinstance(since, bool) else req_str(args, "since")
    result = await ctx.node.subscriptions.replay(sub_id, since, agent_id=ctx.agent_id(args))
    return {"subscription_id": result.subscription_id, "since": result.since, "count": len(result.events),
            "events": result.events, "truncated": result.truncated}


async def dlq_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    sub_id, limit = opt_str(args, "subscription_id"), dlq_limit(args.get("limit"))
    rows = ctx.node.subscriptions.dead_letters(agent_id=ctx.agent_id(args), subscription_id=sub_id, limit=limit)
    return {"count": len(rows), "subscription_id": sub_id, "limit": limit,
            "entries": [dead_letter_body(d) for d in rows]}


HANDLERS: dict[str, Handler] = {
    "memory_subscribe": subscribe, "memory_unsubscribe": unsubscribe,
    "memory_list_subscriptions": list_subscriptions, "memory_subscription_replay": replay,
    "memory_subscription_dlq_list": dlq_list,
}
