"""The original's v0.7.0 reflection tools: ``memory_reflect`` (a memory that reflects on others, with a
``reflects_on`` link to each), ``memory_reflection_origin``, ``memory_dependents_of_invalidated`` and
``memory_export_reflection``.

A reflection is an ordinary memory (a ``memory.stored`` event) whose metadata says so — ``memory_kind:
"reflection"`` and ``reflection_depth`` (one more than its deepest source) — plus one signed ``link.created``
event per source: nothing here writes state any other way, so reflections replay and reach every node like the
rest. The original keeps ``memory_kind`` and ``reflection_depth`` as columns; the metadata keys carry the same.
"""

from __future__ import annotations

import json
from typing import Any

from producers.errors import NotFoundError, ValidationError
from producers.input.commands import CreateCommand
from producers.input.validation import check_confidence, check_namespace, check_priority, check_tags, check_tier
from producers.tools.base import Handler, ToolContext, opt_str, req_str
from schemas import Memory

__all__ = ["HANDLERS", "reflection_depth"]

#: The original's default ``max_reflection_depth`` for a namespace whose policy sets none.
DEFAULT_MAX_REFLECTION_DEPTH = 3
REFLECTS_ON = "reflects_on"
_ATTEST_RANK = {"signed": 3, "peer_attested": 2, "self_signed": 1}


def reflection_depth(memory: Memory) -> int:
    depth = memory.metadata.get("reflection_depth")
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else 0


def _is_reflection(memory: Memory) -> bool:
    return memory.metadata.get("memory_kind") == "reflection" or reflection_depth(memory) > 0


def _source_ids(args: dict[str, Any]) -> list[str]:
    ids = args.get("source_ids")
    if not isinstance(ids, list):
        raise ValidationError("source_ids is required (array of memory IDs)")
    if not ids:
        raise ValidationError("source_ids cannot be empty")
    for i, value in enumerate(ids):
        if not isinstance(value, str):
            raise ValidationError(f"source_ids[{i}] must be a string")
    return ids


async def _sources(ctx: ToolContext, ids: list[str]) -> list[Memory]:
    out = []
    for source_id in ids:
        try:
            out.append(await ctx.service.get(source_id))
        except NotFoundError:
            raise ValidationError(f"source memory not found: {source_id}") from None
    return out


def _depth_cap(ctx: ToolContext, namespace: str) -> int:
    resolved = ctx.node.governance.gate.resolve(namespace)
    cap = getattr(resolved[0], "max_reflection_depth", None) if resolved is not None else None
    return cap if isinstance(cap, int) else DEFAULT_MAX_REFLECTION_DEPTH


def _caller_depth(args: dict[str, Any], computed: int) -> None:
    depth = args.get("depth")
    if depth is None:
        return
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValidationError(f"CALLER_DEPTH_MISMATCH: depth must be a non-negative integer (got depth={depth})")
    if depth != computed:
        raise ValidationError(f"CALLER_DEPTH_MISMATCH: caller asserted depth={depth} but substrate computed "
                              f"reflection_depth={computed} from sources (max(source_depths)+1). Omit the `depth` "
                              "field to defer to the substrate, or pass the matching value.")


def _metadata(args: dict[str, Any], depth: int, source_ids: list[str]) -> dict[str, Any]:
    metadata = args.get("metadata")
    out = dict(metadata) if isinstance(metadata, dict) else {}
    out.update(memory_kind="reflection", reflection_depth=depth, reflects_on=source_ids)
    return out


async def reflect(ctx: ToolContext, args: dict[str, Any]) -> Any:
    source_ids = _source_ids(args)
    title, content = req_str(args, "title"), req_str(args, "content")
    tier = args.get("tier") or "mid"
    if not isinstance(tier, str) or tier not in ("short", "mid", "long"):
        raise ValidationError(f"invalid tier: {tier}")
    agent = ctx.agent_id(args)
    sources = await _sources(ctx, source_ids)
    depth = max(reflection_depth(m) for m in sources) + 1
    _caller_depth(args, depth)
    namespace = check_namespace(opt_str(args, "namespace") or sources[0].namespace)
    cap = _depth_cap(ctx, namespace)
    if depth > cap:
        raise ValidationError(f"REFLECTION_DEPTH_EXCEEDED: reflection depth {depth} would exceed namespace "
                              f"max_reflection_depth {cap} (namespace='{namespace}')")
    cmd = CreateCommand(title=title, content=content, tier=check_tier(tier), namespace=namespace,
                        tags=check_tags(args.get("tags") or []),
                        priority=check_priority(args["priority"]) if args.get("priority") is not None else 5,
                        confidence=check_confidence(args["confidence"]) if args.get("confidence") is not None
                        else 1.0, source="nhi", metadata=_metadata(args, depth, source_ids), on_conflict="error")
    stored = await ctx.service.store(cmd, agent_id=agent, metered=True)
    for source in sources:
        await ctx.node.graph.link(stored.memory.id, source.id, REFLECTS_ON, agent_id=agent, any_relation=True)
    return {"id": stored.memory.id, "reflection_depth": depth, "reflects_on": source_ids,
            "namespace": stored.memory.namespace}


def _memory_id(args: dict[str, Any]) -> str:
    memory_id = req_str(args, "memory_id")
    if not memory_id:
        raise ValidationError("memory_id cannot be empty")
    return memory_id


async def _memory(ctx: ToolContext, memory_id: str) -> Memory:
    try:
        return await ctx.service.get(memory_id)
    except NotFoundError:
        raise NotFoundError(f"memory not found: {memory_id}") from None


async def reflection_origin(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory = await _memory(ctx, _memory_id(args))
    origin = memory.metadata.get("reflection_origin")
    origin = origin if isinstance(origin, dict) else {}
    agent, depth = memory.metadata.get("agent_id"), reflection_depth(memory)
    return {"memory_id": memory.id, "peer_origin": origin.get("peer_origin"),
            "signing_agent": agent if isinstance(agent, str) else None, "original_depth": depth,
            "local_depth_at_arrival": origin.get("local_depth_at_arrival"), "is_reflection": depth > 0}


async def dependents_of_invalidated(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """The memories that reflect on ``memory_id`` (what its invalidation puts in doubt)."""
    memory_id = _memory_id(args)
    links = await ctx.node.graph.get_links(memory_id)
    sources = [lk.source_id for lk in links if lk.target_id == memory_id and lk.relation == REFLECTS_ON]
    nodes = ctx.node.graph.graph.nodes(sources)
    dependents = [{"id": sid, "namespace": nodes[sid].namespace} for sid in sources if sid in nodes]
    return {"memory_id": memory_id, "count": len(dependents), "dependents": dependents}


def _yaml_scalar(text: str) -> str:
    special = text == "" or text[0] in "-?*&!|>'\"%@`" or any(c in text for c in ":#\n")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' if special else text


def _render_markdown(memory: Memory, edges: list[dict[str, str]], attest: str) -> str:
    agent = memory.metadata.get("agent_id") if isinstance(memory.metadata.get("agent_id"), str) else ""
    lines = ["---", f"memory_id: {memory.id}", f"namespace: {_yaml_scalar(memory.namespace)}",
             f"title: {_yaml_scalar(memory.title)}", f"reflection_depth: {reflection_depth(memory)}",
             f"attest_level: {attest}", f"created_at: {memory.created_at}", f"agent_id: {_yaml_scalar(str(agent))}",
             "reflects_on:"]
    lines += ["  []"] if not edges else [
        f"  - target_id: {e['target_id']}\n    attest_level: {e['attest_level']}\n    created_at: {e['created_at']}"
        for e in edges]
    body = memory.content if memory.content.endswith("\n") else memory.content + "\n"
    return "\n".join(lines) + "\n---\n\n" + body


async def export_reflection(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory_id = _memory_id(args)
    fmt = (opt_str(args, "format") or "md").lower()
    if fmt not in ("md", "markdown", "json"):
        raise ValidationError(f"unsupported export format '{fmt}' (expected 'md' or 'json')")
    memory = await _memory(ctx, memory_id)
    if not _is_reflection(memory):
        raise ValidationError(f"memory is not a reflection: {memory_id}")
    edges = [{"target_id": lk.target_id, "attest_level": lk.attest_level, "created_at": lk.created_at}
             for lk in await ctx.node.graph.get_links(memory.id)
             if lk.source_id == memory.id and lk.relation == REFLECTS_ON]
    best = max((_ATTEST_RANK.get(e["attest_level"], 0) for e in edges), default=0)
    attest = next((name for name, rank in _ATTEST_RANK.items() if rank == best), "unsigned")
    if fmt == "json":
        agent = memory.metadata.get("agent_id")
        content = json.dumps({"memory_id": memory.id, "namespace": memory.namespace, "title": memory.title,
                              "reflection_depth": reflection_depth(memory), "attest_level": attest,
                              "created_at": memory.created_at, "agent_id": agent if isinstance(agent, str) else "",
                              "reflects_on": [e["target_id"] for e in edges], "content": memory.content}, indent=2)
    else:
        content = _render_markdown(memory, edges, attest)
    ns = memory.namespace.strip("/")
    ext = "json" if fmt == "json" else "md"
    return {"content": content, "suggested_filename": f"{ns}/{memory.id}.{ext}" if ns else f"{memory.id}.{ext}"}


HANDLERS: dict[str, Handler] = {
    "memory_reflect": reflect, "memory_reflection_origin": reflection_origin,
    "memory_dependents_of_invalidated": dependents_of_invalidated, "memory_export_reflection": export_reflection,
}
