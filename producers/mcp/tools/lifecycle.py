"""The lifecycle family: update, delete, forget, gc, promote."""

from __future__ import annotations

from typing import Any

from producers.commands import parse_update
from producers.errors import FeatureUnavailableError
from producers.mcp.tools.base import Handler, ToolContext, opt_bool, opt_str, req_str
from producers.validation import check_namespace, check_tier
from schemas import now_ts

__all__ = ["HANDLERS"]

_UPDATABLE = ("title", "content", "tier", "namespace", "tags", "priority", "confidence", "expires_at", "metadata")


async def update(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory_id = req_str(args, "id")
    cmd = parse_update({name: args.get(name) for name in _UPDATABLE})
    memory, _ = await ctx.service.update(memory_id, cmd, agent_id=ctx.agent_id(args))
    return {"updated": True, "memory": memory.to_api()}


async def delete(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await ctx.service.delete(req_str(args, "id"), agent_id=ctx.agent_id(args))
    return {"deleted": True}


def _forget_filters(args: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    namespace = opt_str(args, "namespace")
    tier = opt_str(args, "tier")
    return (check_namespace(namespace) if namespace else None, opt_str(args, "pattern") or None,
            check_tier(tier) if tier else None)


async def forget(ctx: ToolContext, args: dict[str, Any]) -> Any:
    namespace, pattern, tier = _forget_filters(args)
    if opt_bool(args, "dry_run"):
        await ctx.service.sync()
        ids = ctx.service.queries.forget_ids(namespace=namespace, pattern=pattern, tier=tier)
        return {"would_delete": len(ids), "dry_run": True}
    deleted, _ = await ctx.service.forget(namespace=namespace, pattern=pattern, tier=tier,
                                          agent_id=ctx.agent_id(args))
    # Nothing is archived: the archive arrives with its own issue; forgotten memories stay in the log.
    return {"deleted": deleted, "archived": False}


async def gc(ctx: ToolContext, args: dict[str, Any]) -> Any:
    if opt_bool(args, "dry_run"):
        await ctx.service.sync()
        return {"collected": len(ctx.service.queries.expired_ids(now_ts())), "dry_run": True}
    collected, _ = await ctx.service.gc(agent_id=ctx.agent_id(args))
    return {"collected": collected, "dry_run": False}


async def promote(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory_id = req_str(args, "id")
    if opt_str(args, "to_namespace") is not None:
        msg = ("memory_promote with to_namespace (vertical promotion) clones the memory and adds a derived_from "
               "link; memory links are not available on this node yet (knowledge graph, issue #6)")
        raise FeatureUnavailableError(msg)
    memory, _ = await ctx.service.promote(memory_id, agent_id=ctx.agent_id(args))
    return {"promoted": True, "mode": "tier", "id": memory.id, "tier": "long"}


HANDLERS: dict[str, Handler] = {
    "memory_update": update, "memory_delete": delete, "memory_forget": forget, "memory_gc": gc,
    "memory_promote": promote,
}
