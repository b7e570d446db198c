"""Messaging between agents (notify, inbox): a message is a memory in ``_messages/<recipient>``; unread means
never recalled (``access_count == 0``), as in the original."""

from __future__ import annotations

from typing import Any

from producers.commands import parse_create
from producers.mcp.tools.base import Handler, ToolContext, all_in, opt_bool, opt_int, req_str
from producers.validation import check_agent_id, check_content, check_tier, check_title
from schemas import now_ts

__all__ = ["HANDLERS"]


def messages_namespace(agent_id: str) -> str:
    return f"_messages/{agent_id}"


async def notify(ctx: ToolContext, args: dict[str, Any]) -> Any:
    target = check_agent_id(req_str(args, "target_agent_id"))
    title = check_title(req_str(args, "title"))
    payload = check_content(req_str(args, "payload"))
    tier = check_tier(args.get("tier") or "mid")
    priority = max(1, min(10, opt_int(args, "priority", 5)))
    sender = ctx.claim(None)
    namespace = messages_namespace(target)
    cmd = parse_create({"title": title, "content": payload, "tier": tier, "namespace": namespace,
                        "tags": ["_message"], "priority": priority, "source": "notify", "on_conflict": "merge",
                        "metadata": {"agent_id": sender, "recipient_agent_id": target, "message_kind": "notify"}},
                       now=now_ts())
    result = await ctx.service.store(cmd, agent_id=sender)
    return {"id": result.memory.id, "from": sender, "to": target, "namespace": namespace, "tier": tier,
            "delivered_at": result.memory.created_at}


async def inbox(ctx: ToolContext, args: dict[str, Any]) -> Any:
    owner = ctx.claim(args.get("agent_id"))
    unread_only = opt_bool(args, "unread_only")
    limit = min(opt_int(args, "limit", 50), 500)
    namespace = messages_namespace(owner)
    items = (await all_in(ctx, namespace))[:limit]
    messages = [{"id": m.id, "from": m.metadata.get("agent_id", ""), "title": m.title, "payload": m.content,
                 "priority": m.priority, "tier": m.tier, "created_at": m.created_at, "read": m.access_count > 0,
                 "access_count": m.access_count}
                for m in items if not unread_only or m.access_count == 0]
    return {"agent_id": owner, "namespace": namespace, "count": len(messages), "unread_only": unread_only,
            "messages": messages}


HANDLERS: dict[str, Handler] = {"memory_notify": notify, "memory_inbox": inbox}
