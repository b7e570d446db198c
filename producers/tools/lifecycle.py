"""The lifecycle family (update, delete, forget, gc, promote) and memory_consolidate (of the power family)."""

from __future__ import annotations

from typing import Any, Literal

from producers.errors import NotFoundError, ValidationError
from producers.input.commands import parse_update
from producers.input.validation import check_namespace, check_tier
from producers.tools.base import Handler, ToolContext, opt_bool, opt_str, req_str
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
    return {"deleted": deleted, "archived": ctx.service.config.archive_on_gc}


async def gc(ctx: ToolContext, args: dict[str, Any]) -> Any:
    if opt_bool(args, "dry_run"):
        await ctx.service.sync()
        return {"collected": len(ctx.service.queries.expired_ids(now_ts())), "dry_run": True}
    collected, _ = await ctx.service.gc(agent_id=ctx.agent_id(args))
    return {"collected": collected, "dry_run": False}


async def promote(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory_id = req_str(args, "id")
    to_namespace = opt_str(args, "to_namespace")
    if to_namespace is not None:
        done = await ctx.node.lifecycle.promote_to_namespace(memory_id, to_namespace, agent_id=ctx.agent_id(args))
        return {"promoted": True, "mode": "vertical", "source_id": done.source_id, "clone_id": done.clone_id,
                "to_namespace": done.to_namespace}
    target = opt_str(args, "target_tier")
    if target == "short":
        raise ValidationError("target_tier 'short' is not a valid promote target (would be a downgrade)")
    if target not in (None, "mid", "long"):
        raise ValidationError(f"target_tier must be one of 'mid' or 'long' (got '{target}')")
    tier: Literal["mid", "long"] = "mid" if target == "mid" else "long"
    memory, _ = await ctx.service.promote(memory_id, agent_id=ctx.agent_id(args), tier=tier)
    return {"promoted": True, "mode": "tier", "id": memory.id, "tier": tier}


async def consolidate(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """The original's tool: the tier is always long; without a summary, an LLM (when configured) writes one."""
    ids = args.get("ids")
    if not isinstance(ids, list):
        raise ValidationError("ids is required (array of memory IDs)")
    title = req_str(args, "title")
    summary = opt_str(args, "summary")
    auto = summary is None
    if summary is None:
        summary = await _summarize(ctx, ids)
    done = await ctx.node.lifecycle.consolidate(ids, title=title, summary=summary,
                                                namespace=opt_str(args, "namespace") or "global", tier="long",
                                                agent_id=ctx.agent_id(args))
    out: dict[str, Any] = {"id": done.memory.id, "consolidated": len(done.sources)}
    if auto:
        out |= {"auto_summary": True, "summary_preview": summary[:200]}
    return out


async def _summarize(ctx: ToolContext, ids: list[Any]) -> str:
    if ctx.llm is None:
        raise ValidationError("summary is required (or use smart/autonomous tier for auto-summarization)")
    await ctx.service.sync()
    pairs = []
    for memory_id in ids:
        memory = ctx.service.queries.get_many([memory_id]) if isinstance(memory_id, str) else []
        if not memory:
            raise NotFoundError(f"memory not found: {memory_id}")
        pairs.append((memory[0].title, memory[0].content))
    return await ctx.llm.summarize(pairs)


HANDLERS: dict[str, Handler] = {
    "memory_update": update, "memory_delete": delete, "memory_forget": forget, "memory_gc": gc,
    "memory_promote": promote, "memory_consolidate": consolidate,
}
