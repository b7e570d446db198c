"""The graph family's one tool that needs no links: ``memory_get_taxonomy``, the namespace tree with counts
(built in :mod:`producers.memory.taxonomy`, shared with ``GET /api/v1/taxonomy``), as ``as_agent`` may see it."""

from __future__ import annotations

from typing import Any

from producers.memory.taxonomy import as_agent_param, taxonomy, visible_taxonomy
from producers.tools.base import Handler, ToolContext, opt_int, opt_str

__all__ = ["HANDLERS", "taxonomy"]


async def get_taxonomy(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await visible_taxonomy(ctx.node, prefix=opt_str(args, "namespace_prefix") or "",
                                  depth=opt_int(args, "depth", 8), limit=opt_int(args, "limit", 1000),
                                  as_agent=as_agent_param(args))


HANDLERS: dict[str, Handler] = {"memory_get_taxonomy": get_taxonomy}
