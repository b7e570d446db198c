"""The core family: store, recall, list, get, search, load_family, smart_load."""

from __future__ import annotations

import re
from typing import Any

from producers.errors import ValidationError
from producers.graph.service import link_json
from producers.input.commands import parse_create, parse_list_query, parse_recall
from producers.input.validation import check_namespace
from producers.memory.recall import RecallResult, round_score
from producers.memory.taxonomy import as_agent_param
from producers.memory.wire import recall_body
from producers.tools.base import Handler, ToolContext, opt_int, opt_str, req_str
from producers.tools.governance import inject_standards
from producers.tools.registry import FAMILIES, Profile, ProfileError
from schemas import Memory, now_ts

__all__ = ["HANDLERS", "family_memories"]

_PAGE = 200
# Words that route a free-text intent to a family (the original's keyword router, used when no embedder is loaded).
_FAMILY_WORDS = {
    "core": "store remember save record memory note write recall fetch get search find list browse read load family "
            "core baseline",
    "lifecycle": "update edit modify change delete remove forget purge garbage collect promote upgrade downgrade "
                 "migrate refresh rotate",
    "graph": "graph link relation entity knowledge kg query timeline replay verify path traverse find_paths connect "
             "taxonomy alias debug flaky test investigate trace ancestry",
    "governance": "approve reject pending policy permission rule namespace standard subscribe unsubscribe "
                  "governance review audit",
    "power": "consolidate merge contradiction duplicate auto tag expand query inbox subscription replay dlq dead "
             "letter retry power llm augment",
    "meta": "capabilities agent register session start stats meta info discovery introspection bootstrap",
    "archive": "archive backup restore purge old historical retention cold storage",
    "other": "subscription notify subscribe webhook event other miscellaneous",
}
_TOKEN = re.compile(r"[A-Za-z0-9]+")


def _store_body(args: dict[str, Any], ctx: ToolContext) -> tuple[dict[str, Any], str]:
    raw = args.get("metadata")
    metadata: dict[str, Any] = raw if isinstance(raw, dict) else {}
    explicit_agent = args.get("agent_id") or metadata.get("agent_id")
    agent = ctx.claim(explicit_agent)
    body = {name: args.get(name) for name in ("title", "content", "tier", "namespace", "tags", "priority",
                                              "confidence", "metadata")}
    body["source"] = args.get("source") or "claude"
    body["scope"] = args.get("scope") or metadata.get("scope")
    body["on_conflict"] = args.get("on_conflict") or ctx.identity.on_conflict
    return body, agent


async def store(ctx: ToolContext, args: dict[str, Any]) -> Any:
    req_str(args, "title")
    req_str(args, "content")
    body, agent = _store_body(args, ctx)
    cmd = parse_create(body, now=now_ts())
    await ctx.service.sync()
    existing = ctx.service.queries.find_by_title(cmd.title, cmd.namespace)
    result = await ctx.service.store(cmd, agent_id=agent, metered=True)
    memory = result.memory
    if existing is not None and existing.id == memory.id:
        # The merge path kept the existing memory (and its author).
        return {"id": memory.id, "tier": memory.tier, "title": memory.title, "namespace": memory.namespace,
                "agent_id": memory.metadata.get("agent_id"), "duplicate": True, "action": "updated existing memory"}
    out: dict[str, Any] = {"id": memory.id, "tier": result.requested_tier, "title": memory.title,
                           "namespace": memory.namespace, "agent_id": result.agent_id}
    contradictions = [i for i in result.potential_contradictions if i != memory.id]
    if contradictions:
        out["potential_contradictions"] = contradictions
    return out


def recall_answer(result: RecallResult) -> dict[str, Any]:
    """The HTTP API's recall answer (``wire.recall_body``) with the meta block the original's MCP recall always
    carries: ``recall_mode`` hybrid | keyword_only, ``reranker_used``, ``candidate_counts``, ``blend_weight``."""
    out = recall_body(result)
    meta: dict[str, Any] = out.setdefault("meta", {})
    meta.update({"recall_mode": "keyword_only" if result.mode == "keyword" else "hybrid", "ranking": result.ranking,
                 "reranker_used": "none",
                 "candidate_counts": {"fts": result.fts_candidates, "hnsw": result.semantic_candidates},
                 "blend_weight": round_score(result.blend_weight or 0.0)})
    return out


async def recall(ctx: ToolContext, args: dict[str, Any]) -> Any:
    context = req_str(args, "context")
    params = {name: args.get(name) for name in ("namespace", "limit", "tags", "since", "until", "as_agent",
                                                "budget_tokens", "ranking")}
    query = parse_recall({**params, "context": context})
    result = await ctx.service.recall(query, agent_id=ctx.agent_id({}))
    return inject_standards(ctx, query.filters.namespace, recall_answer(result))


async def search(ctx: ToolContext, args: dict[str, Any]) -> Any:
    text = req_str(args, "query")
    q = parse_list_query({name: args.get(name) for name in ("namespace", "tier", "limit", "agent_id", "as_agent")})
    found = [m.to_api() for m in await ctx.service.search(text, q)]
    return {"results": found, "count": len(found)}


async def list_memories(ctx: ToolContext, args: dict[str, Any]) -> Any:
    q = parse_list_query({name: args.get(name) for name in ("namespace", "tier", "limit", "agent_id", "as_agent")})
    memories = [m.to_api() for m in await ctx.service.list_memories(q)]
    return {"memories": memories, "count": len(memories)}


async def get(ctx: ToolContext, args: dict[str, Any]) -> Any:
    as_agent = as_agent_param(args)
    memory = await ctx.service.get(req_str(args, "id"), as_agent=as_agent)
    links = await ctx.node.graph.get_links(memory.id, as_agent=as_agent)
    return {**memory.to_api(), "links": [link_json(lk) for lk in links]}


def _family(name: str) -> str:
    try:
        Profile.parse(name)
    except ProfileError as exc:
        raise ValidationError(str(exc)) from None
    if name not in FAMILIES:
        valid = ", ".join(FAMILIES)
        raise ValidationError(f"unknown profile or family '{name}'. Valid profiles: core, graph, admin, power, "
                              f"full. Valid families: {valid}.")
    return name


async def family_memories(ctx: ToolContext, family: str, namespace: str | None, k: int,
                          as_agent: str | None = None) -> list[Memory]:
    """The k highest-priority, most recently updated live memories with ``metadata.family == family`` that the
    reader may see.

    Pages through the list query (which already orders by priority, then recency) instead of adding a
    metadata index to the read model: families are a small, rarely used tag.
    """
    found: list[Memory] = []
    offset = 0
    while len(found) < k:
        page = await ctx.service.list_memories(parse_list_query(
            {"namespace": namespace, "limit": _PAGE, "offset": offset, "as_agent": as_agent}))
        found.extend(m for m in page if m.metadata.get("family") == family)
        if len(page) < _PAGE:
            break
        offset += _PAGE
    return found[:k]


def _k(args: dict[str, Any]) -> int:
    return max(1, min(100, opt_int(args, "k", 20)))


async def load_family(ctx: ToolContext, args: dict[str, Any]) -> Any:
    family = _family(req_str(args, "family"))
    namespace = opt_str(args, "namespace")
    if namespace is not None:
        check_namespace(namespace)
    k = _k(args)
    memories = [m.to_api() for m in await family_memories(ctx, family, namespace, k, as_agent_param(args))]
    return {"family": family, "namespace": namespace, "k": k, "count": len(memories), "memories": memories}


def route_intent(intent: str) -> tuple[str, float, str]:
    """(family, score, source): the family whose keywords overlap most of the intent's words."""
    tokens = [t.lower() for t in _TOKEN.findall(intent)]
    if not tokens:
        return "core", 0.0, "fallback"
    best: tuple[str, float] | None = None
    for family in FAMILIES:
        words = set(_TOKEN.findall(_FAMILY_WORDS[family].lower()))
        overlap = sum(1 for t in tokens if t in words)
        score = overlap / len(tokens)
        if overlap and (best is None or score > best[1]):
            best = (family, score)
    return (best[0], best[1], "keyword") if best else ("core", 0.0, "fallback")


async def route_by_embedder(ctx: ToolContext, intent: str) -> tuple[str, float, str] | None:
    """The family whose keyword description is closest in meaning to the intent (the original's first choice
    when an embedder is loaded); None without one."""
    semantic = getattr(ctx.node, "semantic", None)
    if semantic is None or not semantic.ready:
        return None
    vectors = await semantic.embed([intent, *(_FAMILY_WORDS[f] for f in FAMILIES)])
    if vectors is None:
        return None
    scores = [float(v @ vectors[0]) for v in vectors[1:]]
    best = max(range(len(FAMILIES)), key=lambda i: (scores[i], -i))  # ties: the first family, as the original
    return FAMILIES[best], scores[best], "embedder"


async def smart_load(ctx: ToolContext, args: dict[str, Any]) -> Any:
    intent = req_str(args, "intent").strip()
    routed = await route_by_embedder(ctx, intent) if intent else None
    family, score, source = routed or route_intent(intent)
    inner = await load_family(ctx, {**args, "family": family})
    return {"chosen_family": family, "score": round_score(score), "chosen_family_source": source, "intent": intent,
            "namespace": inner["namespace"], "k": inner["k"], "count": inner["count"], "memories": inner["memories"]}


HANDLERS: dict[str, Handler] = {
    "memory_store": store, "memory_recall": recall, "memory_search": search, "memory_list": list_memories,
    "memory_get": get, "memory_load_family": load_family, "memory_smart_load": smart_load,
}
