"""The archive family: archive_list, archive_restore, archive_purge, archive_stats (the original's shapes)."""

from __future__ import annotations

from typing import Any

from producers.errors import ValidationError
from producers.input.validation import check_namespace
from producers.memory.taxonomy import as_agent_param
from producers.tools.base import Handler, ToolContext, opt_int, opt_str, req_str

__all__ = ["HANDLERS", "MAX_ARCHIVE_LIST"]

MAX_ARCHIVE_LIST = 1000


async def archive_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    namespace = opt_str(args, "namespace")
    limit = min(max(opt_int(args, "limit", 50), 0), MAX_ARCHIVE_LIST)
    offset = max(opt_int(args, "offset", 0), 0)
    items = await ctx.node.lifecycle.list_archived(namespace=check_namespace(namespace) if namespace else None,
                                                   limit=limit, offset=offset, as_agent=as_agent_param(args))
    return {"archived": [a.to_api() for a in items], "count": len(items)}


async def archive_restore(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory, _ = await ctx.node.lifecycle.restore(req_str(args, "id"), agent_id=ctx.agent_id(args))
    return {"restored": True, "id": memory.id}


async def archive_purge(ctx: ToolContext, args: dict[str, Any]) -> Any:
    days = args.get("older_than_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise ValidationError("older_than_days must be an integer")
    ids = args.get("ids")
    if ids is not None and not isinstance(ids, list):
        raise ValidationError("ids must be an array of memory ids")
    purged, _ = await ctx.node.lifecycle.purge(older_than_days=days, ids=ids, agent_id=ctx.agent_id(args))
    return {"purged": purged}


async def archive_stats(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return (await ctx.node.lifecycle.archive_stats(as_agent=as_agent_param(args))).to_api()


HANDLERS: dict[str, Handler] = {
    "memory_archive_list": archive_list, "memory_archive_restore": archive_restore,
    "memory_archive_purge": archive_purge, "memory_archive_stats": archive_stats,
}
