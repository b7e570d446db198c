"""The governance tools: namespace standards, pending actions, quota status. Handlers parse, call
:class:`~producers.governance.GovernanceService` and answer in the original's shapes."""

from __future__ import annotations

from typing import Any

from producers.governance import REMEMBER
from producers.identity.visibility import current_caller
from producers.tools.base import Handler, ToolContext, opt_bool, opt_int, opt_str, req_str

__all__ = ["HANDLERS", "inject_standards"]


def inject_standards(ctx: ToolContext, namespace: str | None, response: dict[str, Any]) -> dict[str, Any]:
    """The original's recall and session_start answers carry the namespace's standards: ``standard`` when one
    applies, ``standards`` (most general first) when several; a standard is not repeated among the memories."""
    standards = [m.to_api() for m in ctx.node.governance.standards_for(namespace)]
    if not standards:
        return response
    ids = {s["id"] for s in standards}
    response["memories"] = [m for m in response["memories"] if m["id"] not in ids]
    response["count"] = len(response["memories"])
    if len(standards) == 1:
        response["standard"] = standards[0]
    else:
        response["standards"] = standards
    return response


def _remember(args: dict[str, Any]) -> str:
    """The original's MCP reading of ``remember``: unknown values fall back to ``once``."""
    value = args.get("remember")
    return value if value in REMEMBER else "once"


async def set_standard(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.node.governance.set_standard(
        req_str(args, "namespace"), standard_id=req_str(args, "id"), parent=opt_str(args, "parent"),
        governance=args.get("governance"), agent_id=ctx.agent_id(args))


async def get_standard(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.node.governance.get_standard(req_str(args, "namespace"), inherit=opt_bool(args, "inherit"))


async def clear_standard(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.node.governance.clear_standard(req_str(args, "namespace"), agent_id=ctx.agent_id(args))


async def pending_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    # Over HTTP (/mcp) the caller is named and sees what GET /api/v1/pending shows it; stdio is local: all.
    found = await ctx.node.governance.list_pending(status=opt_str(args, "status"), limit=opt_int(args, "limit", 100),
                                                   reader=current_caller())
    return {"count": len(found), "pending": [p.to_api() for p in found]}


async def pending_approve(ctx: ToolContext, args: dict[str, Any]) -> Any:
    decision = await ctx.node.governance.approve(req_str(args, "id"), agent_id=ctx.agent_id(args),
                                                 remember=_remember(args))
    return decision.body


async def pending_reject(ctx: ToolContext, args: dict[str, Any]) -> Any:
    decision = await ctx.node.governance.reject(req_str(args, "id"), agent_id=ctx.agent_id(args),
                                                remember=_remember(args))
    return decision.body


async def quota_status(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.node.governance.quota_status(opt_str(args, "agent_id"))


HANDLERS: dict[str, Handler] = {
    "memory_namespace_set_standard": set_standard, "memory_namespace_get_standard": get_standard,
    "memory_namespace_clear_standard": clear_standard, "memory_pending_list": pending_list,
    "memory_pending_approve": pending_approve, "memory_pending_reject": pending_reject,
    "memory_quota_status": quota_status,
}
