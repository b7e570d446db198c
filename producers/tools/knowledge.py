"""The graph family's link, knowledge-graph and entity tools, over :class:`producers.graph.service.GraphService`:
arguments, defaults and answers as the original's (``handle_link``, ``handle_kg_query``, …). Every query also
takes ``as_of`` (a log offset) and ``as_agent`` (only memories that agent may see)."""

from __future__ import annotations

from typing import Any

from producers.errors import SourceNotFoundError, ValidationError
from producers.graph.service import check_as_of, invalidation_body, kg_body, link_json
from producers.input.validation import check_agent_id
from producers.tools.base import Handler, ToolContext, opt_int, opt_str, req_str
from schemas import parse_link_id

__all__ = ["HANDLERS"]


def _as_agent(args: dict[str, Any]) -> str | None:
    value = opt_str(args, "as_agent")
    return check_agent_id(value) if value else None


def _opt_int(args: dict[str, Any], name: str) -> int | None:
    return None if args.get(name) is None else opt_int(args, name, 0)


async def link(ctx: ToolContext, args: dict[str, Any]) -> Any:
    source_id, target_id = req_str(args, "source_id"), req_str(args, "target_id")
    relation = opt_str(args, "relation") or "related_to"
    made, _ = await ctx.node.graph.link(source_id, target_id, relation, agent_id=ctx.agent_id(args))
    return {"linked": True, "source_id": source_id, "target_id": target_id, "relation": relation,
            "attest_level": made.attest_level}


async def get_links(ctx: ToolContext, args: dict[str, Any]) -> Any:
    links = await ctx.node.graph.get_links(req_str(args, "id"), as_of=check_as_of(args.get("as_of")),
                                           as_agent=_as_agent(args))
    return {"links": [link_json(lk) for lk in links], "count": len(links)}


async def verify(ctx: ToolContext, args: dict[str, Any]) -> Any:
    link_id = opt_str(args, "link_id")
    if link_id is not None:
        parsed = parse_link_id(link_id)
        if parsed is None:
            raise ValidationError(f"link_id '{link_id}' is not in the expected form 'source_id--relation-->target_id'")
        source_id, target_id, relation = parsed
    else:
        src, dst = opt_str(args, "source_id"), opt_str(args, "target_id")
        if src is None or dst is None:
            raise ValidationError("link_id or source_id+target_id is required")
        source_id, target_id = src, dst
        relation = opt_str(args, "relation") or "related_to"
    return await ctx.node.graph.verify(source_id, target_id, relation, as_of=check_as_of(args.get("as_of")))


async def kg_query(ctx: ToolContext, args: dict[str, Any]) -> Any:
    source_id = req_str(args, "source_id")
    agents = args.get("allowed_agents")
    if agents is not None and not isinstance(agents, list):
        raise ValidationError("allowed_agents must be an array of agent ids")
    depth, rows = await ctx.node.graph.kg_query(
        source_id, max_depth=_opt_int(args, "max_depth"), valid_at=opt_str(args, "valid_at"),
        allowed_agents=agents, limit=_opt_int(args, "limit"), as_of=check_as_of(args.get("as_of")),
        as_agent=_as_agent(args))
    return kg_body(source_id, depth, rows)


async def kg_timeline(ctx: ToolContext, args: dict[str, Any]) -> Any:
    source_id = req_str(args, "source_id")
    try:
        events = await ctx.node.graph.timeline(source_id, since=opt_str(args, "since"), until=opt_str(args, "until"),
                                               limit=_opt_int(args, "limit"), as_of=check_as_of(args.get("as_of")),
                                               as_agent=_as_agent(args))
    except SourceNotFoundError:
        events = []  # the original's tool answers an unknown source with no events (its HTTP route with 404)
    return {"source_id": source_id, "events": events, "count": len(events)}


async def kg_invalidate(ctx: ToolContext, args: dict[str, Any]) -> Any:
    result = await ctx.node.graph.invalidate(req_str(args, "source_id"), req_str(args, "target_id"),
                                             req_str(args, "relation"), opt_str(args, "valid_until"),
                                             agent_id=ctx.agent_id(args))
    return invalidation_body(args, result)


async def find_paths(ctx: ToolContext, args: dict[str, Any]) -> Any:
    source_id, target_id = req_str(args, "source_id"), req_str(args, "target_id")
    paths = await ctx.node.graph.find_paths(source_id, target_id, max_depth=_opt_int(args, "max_depth"),
                                            max_results=_opt_int(args, "max_results"),
                                            as_of=check_as_of(args.get("as_of")), as_agent=_as_agent(args))
    return {"source_id": source_id, "target_id": target_id, "paths": paths, "count": len(paths)}


async def entity_register(ctx: ToolContext, args: dict[str, Any]) -> Any:
    explicit = opt_str(args, "agent_id")
    if explicit is not None:
        check_agent_id(explicit)
    aliases = args.get("aliases")
    reg = await ctx.node.graph.entity_register(
        req_str(args, "canonical_name"), req_str(args, "namespace"), aliases if isinstance(aliases, list) else [],
        args.get("metadata"), agent_id=ctx.agent_id(args))
    return {"entity_id": reg.entity_id, "canonical_name": reg.canonical_name, "namespace": reg.namespace,
            "aliases": reg.aliases, "created": reg.created}


async def entity_get_by_alias(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.node.graph.entity_by_alias(req_str(args, "alias"), opt_str(args, "namespace"),
                                                as_of=check_as_of(args.get("as_of")), as_agent=_as_agent(args))


HANDLERS: dict[str, Handler] = {
    "memory_link": link, "memory_get_links": get_links, "memory_verify": verify, "memory_kg_query": kg_query,
    "memory_kg_timeline": kg_timeline, "memory_kg_invalidate": kg_invalidate, "memory_find_paths": find_paths,
    "memory_entity_register": entity_register, "memory_entity_get_by_alias": entity_get_by_alias,
}
