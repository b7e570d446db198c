"""The original's v0.7.0 curator tools, which need an LLM (``AI_MEMORY_LLM_URL``): ``memory_atomise``,
``memory_persona_generate`` and ``memory_ingest_multistep``; and ``memory_persona``, which reads what
``persona_generate`` wrote.

Without an LLM they answer exactly as the original does on a keyword or semantic node: ``atomise`` and
``ingest_multistep`` succeed with a ``tier-locked`` object, ``persona_generate`` fails with "requires smart tier
or higher". With one: ``atomise`` asks it (the original's curator prompt) for 2-10 atomic propositions, stores
each as a memory with a ``derived_from`` link to the source and archives the source (memory, link and archive
events); ``persona_generate`` summarises the entity's reflections into a persona memory (``memory_kind:
"persona"``, versioned, ``derived_from`` each source). ``ingest_multistep``'s staged pipeline is not built here:
with an LLM it says so.
"""

from __future__ import annotations

import json
import re
from typing import Any

from producers.errors import FeatureUnavailableError, NotFoundError, UnavailableError, ValidationError
from producers.input.commands import CreateCommand, parse_list_query
from producers.input.validation import check_namespace
from producers.memory.wire import embedder_status
from producers.tools.base import Handler, ToolContext, opt_bool, req_str
from producers.tools.reflection import reflection_depth
from projectors import count_tokens
from schemas import Memory, now_ts

__all__ = ["CURATOR_SYSTEM_PROMPT", "HANDLERS", "parse_atoms"]

REQUIRED_TIER = "smart"
MIN_ATOMS, MAX_ATOMS = 2, 10
CURATOR_SYSTEM_PROMPT = """You are decomposing a long memory into atomic propositions.
Each atom must:
(1) Be self-contained — readable without the original context
(2) Be at most {max_atom_tokens} tokens
(3) Contain exactly one fact, decision, observation, or relation
(4) Preserve original meaning — no editorial additions
Return JSON: { atoms: [{ text: string }] } with 2 to 10 atoms.
If the input cannot be decomposed (already atomic, all-or-nothing),
return { atoms: [] }."""


def _tier(ctx: ToolContext) -> str:
    if ctx.llm is not None:
        return "smart"
    return "semantic" if embedder_status(ctx.node)["embedder_ready"] else "keyword"


def _tier_locked(tool: str, ctx: ToolContext) -> dict[str, Any]:
    return {"tier-locked": f"{tool} requires smart tier or higher", "current_tier": _tier(ctx),
            "required_tier": REQUIRED_TIER}


def parse_atoms(text: str) -> list[str]:
    """The atoms of a curator answer: plain JSON, JSON in a code fence, or the first JSON object in prose."""
    candidates = [text.strip(), re.sub(r"^```(?:json|JSON)?\s*|\s*```$", "", text.strip())]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            parsed = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        atoms = parsed.get("atoms") if isinstance(parsed, dict) else None
        if isinstance(atoms, list):
            return [a["text"] for a in atoms if isinstance(a, dict) and isinstance(a.get("text"), str)]
    raise UnavailableError("curator response malformed: no {atoms: [...]} object in the answer")


def _int_arg(args: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer in [{low}, {high}] (default {default})")
    if not low <= value <= high:
        raise ValidationError(f"{name} out of range [{low}, {high}]: {value}")
    return value


def _text_arg(args: dict[str, Any], name: str) -> str:
    """A required, non-empty string argument, refused in the original's words for these tools."""
    value = args.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    if not value:
        raise ValidationError(f"{name} must not be empty")
    return value


async def atomise(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory_id = _text_arg(args, "memory_id")
    budget = _int_arg(args, "max_atom_tokens", 200, 50, 1000)
    force = opt_bool(args, "force_re_atomise")
    if ctx.llm is None:
        return _tier_locked("memory_atomise", ctx)
    agent = ctx.agent_id(args)
    try:
        source = await ctx.service.get(memory_id)
    except NotFoundError:
        raise NotFoundError(f"MEMORY_NOT_FOUND: {memory_id}") from None
    existing = await _atoms_of(ctx, source)
    if existing and not force:
        return {"already_atomised": True, "source_id": source.id, "existing_atom_ids": existing,
                "atom_count": len(existing)}
    answer = await ctx.llm.generate(source.content, system=CURATOR_SYSTEM_PROMPT.replace("{max_atom_tokens}",
                                                                                         str(budget)))
    # Atoms far over the budget are dropped, as the original's fail-soft check.
    atoms = [a for a in parse_atoms(answer) if count_tokens(a) <= budget * 2][:MAX_ATOMS]
    if len(atoms) < MIN_ATOMS:
        raise ValidationError(f"memory {source.id} is too small to atomise (the curator found {len(atoms)} atoms)")
    ids = []
    for i, text in enumerate(atoms):
        cmd = CreateCommand(title=f"{source.title} [atom {i + 1}/{len(atoms)}]", content=text, tier=source.tier,
                            namespace=source.namespace, tags=list(source.tags), priority=source.priority,
                            confidence=source.confidence, source="nhi",
                            metadata={"atom_of": source.id, "atom_index": i}, on_conflict="version")
        stored = await ctx.service.store(cmd, agent_id=agent, metered=True)
        await ctx.node.graph.link(stored.memory.id, source.id, "derived_from", agent_id=agent)
        ids.append(stored.memory.id)
    archived_at = now_ts()
    await ctx.node.lifecycle.archive([source.id], reason="atomised", agent_id=agent)
    return {"source_id": source.id, "atom_ids": ids, "atom_count": len(ids), "archived_at": archived_at}


async def _atoms_of(ctx: ToolContext, source: Memory) -> list[str]:
    found = await ctx.service.list_memories(parse_list_query({"namespace": source.namespace, "limit": 1000},
                                                             max_limit=1000))
    return [m.id for m in found if m.metadata.get("atom_of") == source.id]


async def ingest_multistep(ctx: ToolContext, args: dict[str, Any]) -> Any:
    _text_arg(args, "content")
    if ctx.llm is None:
        return _tier_locked("memory_ingest_multistep", ctx)
    raise FeatureUnavailableError("memory_ingest_multistep's staged pipeline is not available on this node yet "
                                  "(issue #17)")


def _entity(args: dict[str, Any]) -> str:
    entity_id = req_str(args, "entity_id")
    if not entity_id:
        raise ValidationError("entity_id cannot be empty")
    return entity_id


def _persona_namespace(args: dict[str, Any]) -> str | None:
    value = args.get("namespace")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("namespace must be a string or null")
    return check_namespace(value)


async def _personas(ctx: ToolContext, entity_id: str, namespace: str) -> list[Memory]:
    found = await ctx.service.list_memories(parse_list_query({"namespace": namespace, "tag": "persona",
                                                              "limit": 1000}, max_limit=1000))
    mine = [m for m in found if m.metadata.get("memory_kind") == "persona"
            and m.metadata.get("persona", {}).get("entity_id") == entity_id]
    return sorted(mine, key=lambda m: (m.metadata["persona"]["version"], m.created_at), reverse=True)


def _persona_json(memory: Memory) -> dict[str, Any]:
    meta = memory.metadata["persona"]
    return {"id": memory.id, "entity_id": meta["entity_id"], "namespace": memory.namespace, "body_md": memory.content,
            "sources": meta["sources"], "generated_at": meta["generated_at"], "version": meta["version"],
            "attest_level": meta.get("attest_level", "unsigned")}


async def persona(ctx: ToolContext, args: dict[str, Any]) -> Any:
    entity_id = _entity(args)
    latest = await _personas(ctx, entity_id, _persona_namespace(args) or "global")
    return {"persona": _persona_json(latest[0]) if latest else None}


async def persona_generate(ctx: ToolContext, args: dict[str, Any]) -> Any:
    if ctx.llm is None:
        tier = _tier(ctx)
        raise ValidationError(f"memory_persona_generate requires smart tier or higher (current: {tier.title()})")
    entity_id = _entity(args)
    scoped = _persona_namespace(args)
    namespace = scoped or "global"
    found = await ctx.service.list_memories(parse_list_query({"namespace": scoped, "limit": 1000}, max_limit=1000))
    sources = [m for m in found if reflection_depth(m) > 0 and m.metadata.get("entity_id") == entity_id][:20]
    if not sources:
        raise ValidationError(f"no reflections found for entity '{entity_id}' in namespace "
                              f"'{scoped or '*'}'")
    body = await ctx.llm.summarize([(m.title, m.content) for m in sources])
    footnotes = "\n".join(f"[^{i}]: {m.title} \u2014 `{m.id}`" for i, m in enumerate(sources, 1))
    previous = await _personas(ctx, entity_id, namespace)
    version = previous[0].metadata["persona"]["version"] + 1 if previous else 1
    agent = ctx.agent_id(args)
    meta = {"entity_id": entity_id, "sources": [m.id for m in sources], "version": version,
            "attest_level": "unsigned", "generated_at": now_ts()}
    cmd = CreateCommand(title=f"__persona_{entity_id}_v{version}", content=f"{body}\n\n{footnotes}\n", tier="long",
                        namespace=namespace, tags=["persona"], priority=7, source="nhi",
                        metadata={"memory_kind": "persona", "entity_id": entity_id, "persona": meta})
    stored = await ctx.service.store(cmd, agent_id=agent, metered=True)
    for source in sources:
        await ctx.node.graph.link(stored.memory.id, source.id, "derived_from", agent_id=agent)
    scope = "single" if scoped else "cross_namespace"
    return {"persona": _persona_json(stored.memory), "regenerated": True, "namespace_scope": scope}


HANDLERS: dict[str, Handler] = {"memory_atomise": atomise, "memory_ingest_multistep": ingest_multistep,
                                "memory_persona": persona, "memory_persona_generate": persona_generate}
