"""Messaging between agents (notify, inbox): the MCP face of :class:`producers.lifecycle.messaging.MessagingService`
(messages are memories in ``_messages/<recipient>``; unread means never recalled, as in the original)."""

from __future__ import annotations

from typing import Any

from producers.tools.base import Handler, ToolContext, opt_bool, opt_int, req_str

__all__ = ["HANDLERS"]


async def notify(ctx: ToolContext, args: dict[str, Any]) -> Any:
    # The sender is the caller's identity, never an argument (as the original).
    return await ctx.node.messaging.notify(target=req_str(args, "target_agent_id"), title=req_str(args, "title"),
                                           payload=req_str(args, "payload"), tier=args.get("tier") or "mid",
                                           priority=opt_int(args, "priority", 5), sender=ctx.claim(None))


async def inbox(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.node.messaging.inbox(ctx.claim(args.get("agent_id")),
                                          unread_only=opt_bool(args, "unread_only"), limit=opt_int(args, "limit", 50))


HANDLERS: dict[str, Handler] = {"memory_notify": notify, "memory_inbox": inbox}
