"""``memory_check_duplicate``: the nearest stored memory by embedding, through the service's check (as HTTP's
``/check_duplicate``); without a loaded embedder it fails saying so."""

from __future__ import annotations

from typing import Any

from producers.errors import ValidationError
from producers.input.validation import check_content, check_namespace, check_title
from producers.memory.taxonomy import as_agent_param
from producers.memory.wire import duplicate_body
from producers.tools.base import Handler, ToolContext, opt_str, req_str

__all__ = ["HANDLERS"]


async def check_duplicate(ctx: ToolContext, args: dict[str, Any]) -> Any:
    title = check_title(req_str(args, "title"))
    content = check_content(req_str(args, "content"))
    namespace = (opt_str(args, "namespace") or "").strip() or None
    if namespace is not None:
        check_namespace(namespace)
    threshold = args.get("threshold", 0.85)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValidationError("threshold must be a number")
    check = await ctx.service.check_duplicate(title, content, namespace=namespace, threshold=float(threshold),
                                              as_agent=as_agent_param(args))
    return duplicate_body(check)


HANDLERS: dict[str, Handler] = {"memory_check_duplicate": check_duplicate}
