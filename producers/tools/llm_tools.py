"""The power family's LLM tools (expand_query, auto_tag, detect_contradiction): they call the configured
OpenAI-compatible endpoint, or fail with the original's "requires smart or autonomous tier" message."""

from __future__ import annotations

from typing import Any

from producers.errors import NotFoundError
from producers.input.commands import parse_update
from producers.llm.client import require_llm
from producers.tools.base import Handler, ToolContext, req_str
from schemas import Memory

__all__ = ["HANDLERS"]


async def _memory(ctx: ToolContext, memory_id: str, what: str) -> Memory:
    try:
        return await ctx.service.resolve(memory_id)
    except NotFoundError:
        raise NotFoundError(f"{what} not found") from None


async def expand_query(ctx: ToolContext, args: dict[str, Any]) -> Any:
    llm = require_llm(ctx.llm, "query expansion")
    query = req_str(args, "query")
    return {"original": query, "expanded_terms": await llm.expand_query(query)}


async def auto_tag(ctx: ToolContext, args: dict[str, Any]) -> Any:
    llm = require_llm(ctx.llm, "auto-tagging")
    memory = await _memory(ctx, req_str(args, "id"), "memory")
    tags = await llm.auto_tag(memory.title, memory.content)
    merged = list(memory.tags) + [t for t in tags if t not in memory.tags]
    await ctx.service.update(memory.id, parse_update({"tags": merged}), agent_id=ctx.agent_id({}))
    return {"id": memory.id, "new_tags": tags, "all_tags": merged}


async def detect_contradiction(ctx: ToolContext, args: dict[str, Any]) -> Any:
    llm = require_llm(ctx.llm, "contradiction detection")
    a = await _memory(ctx, req_str(args, "id_a"), "memory A")
    b = await _memory(ctx, req_str(args, "id_b"), "memory B")
    contradicts = await llm.detect_contradiction(a.content, b.content)
    return {"contradicts": contradicts, "memory_a": {"id": a.id, "title": a.title},
            "memory_b": {"id": b.id, "title": b.title}}


HANDLERS: dict[str, Handler] = {
    "memory_expand_query": expand_query, "memory_auto_tag": auto_tag,
    "memory_detect_contradiction": detect_contradiction,
}
