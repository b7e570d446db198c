"""The seven ``memory_skill_*`` tools over :class:`producers.memory.skills.SkillService` (skills kept as memories)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from producers.errors import NotFoundError, ValidationError
from producers.input.commands import parse_list_query
from producers.memory.skills import (
    SkillManifest,
    SkillService,
    check_skill_name,
    parse_skill_md,
    read_skill_folder,
    skill_of,
)
from producers.tools.base import Handler, ToolContext, opt_int, opt_str, req_str
from producers.tools.reflection import DEFAULT_MAX_REFLECTION_DEPTH, REFLECTS_ON, reflection_depth
from projectors import count_tokens

__all__ = ["HANDLERS"]


def _skills(ctx: ToolContext) -> SkillService:
    return SkillService(ctx.service)


async def register(ctx: ToolContext, args: dict[str, Any]) -> Any:
    folder, inline = opt_str(args, "folder_path"), opt_str(args, "inline_skill")
    if folder is not None:
        text, files = read_skill_folder(Path(folder))
    elif inline is not None:
        text, files = inline, []
    else:
        raise ValidationError("memory_skill_register requires either 'folder_path' or 'inline_skill'")
    return await _skills(ctx).register(parse_skill_md(text), files, agent_id=ctx.agent_id(args))


async def list_skills(ctx: ToolContext, args: dict[str, Any]) -> Any:
    needle = (opt_str(args, "filter") or "").lower()
    rows = [skill_of(m) for m in await _skills(ctx).versions(opt_str(args, "namespace"))
            if m.metadata["skill"].get("superseded_by") is None]
    rows = [r for r in rows if needle in r["name"].lower() or needle in r["description"].lower()]
    rows.sort(key=lambda r: (r["namespace"], r["name"]))
    return {"count": len(rows), "skills": rows}


async def get(ctx: ToolContext, args: dict[str, Any]) -> Any:
    memory = await _skills(ctx).get(req_str(args, "skill_id"))
    out = {**skill_of(memory), "body": memory.content, "current": memory.metadata["skill"].get("superseded_by") is None}
    out["resources"] = [{"path": r["path"], "kind": r["kind"], "digest": r["digest"]}
                        for r in memory.metadata["skill"]["resources"]]
    return out


def _resource(memory_meta: dict[str, Any], path: str) -> tuple[dict[str, Any], bytes]:
    for res in memory_meta["resources"]:
        if res["path"] == path:
            content = base64.b64decode(res["content_b64"])
            if hashlib.sha256(content).hexdigest() != res["digest"]:
                raise ValidationError(f"resource '{path}' digest mismatch (content tampered)")
            return res, content
    raise NotFoundError(f"resource not found: {path}")


async def resource(ctx: ToolContext, args: dict[str, Any]) -> Any:
    skill_id, path = req_str(args, "skill_id"), req_str(args, "resource_path")
    res, content = _resource((await _skills(ctx).get(skill_id)).metadata["skill"], path)
    try:
        value, encoding = content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        value, encoding = base64.b64encode(content).decode(), "base64"
    return {"skill_id": skill_id, "resource_path": path, "resource_kind": res["kind"], "content": value,
            "encoding": encoding, "digest": res["digest"], "digest_verified": True}


def _yaml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ":#\n\"'") or not value else value


def _skill_md(meta: dict[str, Any], body: str) -> str:
    lines = [f"namespace: {meta['namespace']}", f"name: {meta['name']}", f"description: {_yaml(meta['description'])}"]
    lines += [f"{k}: {_yaml(meta[k])}" for k in ("license", "compatibility") if meta.get(k)]
    if meta.get("allowed_tools"):
        lines += ["allowed-tools:", *[f"  - {t}" for t in meta["allowed_tools"]]]
    extra = meta.get("metadata") or {}
    scalars = {k: v for k, v in extra.items() if isinstance(v, str)}
    if scalars:
        lines += ["metadata:", *[f"  {k}: {_yaml(v)}" for k, v in sorted(scalars.items())]]
    return "---\n" + "\n".join(lines) + "\n---\n\n" + body


async def export(ctx: ToolContext, args: dict[str, Any]) -> Any:
    skill_id, target = req_str(args, "skill_id"), Path(req_str(args, "target_folder"))
    memory = await _skills(ctx).get(skill_id)
    meta = memory.metadata["skill"]
    written = []
    target.mkdir(parents=True, exist_ok=True)
    (target / "SKILL.md").write_text(_skill_md(meta, memory.content), encoding="utf-8")
    for res in meta["resources"]:
        rel = Path(res["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise ValidationError(f"resource path '{res['path']}' escapes the target folder")
        _, content = _resource(meta, res["path"])
        path = target / "resources" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(res["path"])
    return {"exported": True, "skill_id": skill_id, "target_folder": str(target), "digest": meta["digest"],
            "resources_written": written}


async def promote_from_reflection(ctx: ToolContext, args: dict[str, Any]) -> Any:
    what = "memory_skill_promote_from_reflection requires"
    reflection_id = args.get("reflection_id")
    name, description = args.get("skill_name"), args.get("skill_description")
    for key, value in (("reflection_id", reflection_id), ("skill_name", name), ("skill_description", description)):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"{what} '{key}'")
    assert isinstance(reflection_id, str) and isinstance(name, str) and isinstance(description, str)
    try:
        reflection = await ctx.service.get(reflection_id)
    except NotFoundError:
        raise NotFoundError(f"reflection not found: {reflection_id}") from None
    if reflection_depth(reflection) < 1:
        raise ValidationError(f"memory '{reflection_id}' is not a reflection (reflection_depth=0)")
    links = await ctx.node.graph.get_links(reflection.id)
    sources = [lk.target_id for lk in links if lk.source_id == reflection.id and lk.relation == REFLECTS_ON]
    body = f"# {name}\n\n{description}\n\n{reflection.content}\n"
    metadata: dict[str, Any] = {"derived_from_reflection_id": reflection_id,
                                "original_reflection_depth": reflection_depth(reflection), "reflects_on": sources}
    if args.get("parameters_schema") is not None:
        metadata["parameters_schema"] = args["parameters_schema"]
    manifest = SkillManifest(namespace=reflection.namespace, name=check_skill_name(name), description=description,
                             body=body)
    out = await _skills(ctx).register(manifest, [], agent_id=ctx.agent_id(args), extra_metadata=metadata)
    return {"promoted": True, "skill_id": out["id"], "namespace": out["namespace"], "name": out["name"],
            "digest": out["digest"], "derived_from_reflection_id": reflection_id}


async def compositional_context(ctx: ToolContext, args: dict[str, Any]) -> Any:
    skill_id = args.get("skill_id")
    if not isinstance(skill_id, str) or not skill_id:
        raise ValidationError("memory_skill_compositional_context requires 'skill_id'")
    memory = await _skills(ctx).get(skill_id)
    meta = memory.metadata["skill"]
    budget = opt_int(args, "budget_tokens", 0) or None
    bounded, reflections = [], []
    for entry in (meta.get("metadata") or {}).get("composes_with_reflections", []):
        bounded.append({**entry, "max_reflection_depth": DEFAULT_MAX_REFLECTION_DEPTH})
        found = await ctx.service.list_memories(parse_list_query({"namespace": entry["namespace"], "limit": 200}))
        reflections += [m for m in found if entry["min_depth"] <= reflection_depth(m) <= DEFAULT_MAX_REFLECTION_DEPTH
                        and reflection_depth(m) > 0]
    used, dropped, emitted = count_tokens(memory.content), 0, []
    for m in sorted(reflections, key=lambda m: (-reflection_depth(m), m.created_at)):
        cost = count_tokens(m.content)
        if budget is not None and used + cost > budget:
            dropped += 1
            continue
        used += cost
        emitted.append({"id": m.id, "namespace": m.namespace, "title": m.title, "content": m.content,
                        "created_at": m.created_at, "access_count": m.access_count,
                        "reflection_depth": reflection_depth(m), "memory_kind": "reflection"})
    return {"skill_id": skill_id, "skill_namespace": meta["namespace"], "skill_name": meta["name"],
            "body": memory.content, "compositional_namespaces": bounded, "reflections": emitted,
            "budget_tokens": budget, "tokens_used": used, "memories_dropped": dropped}


HANDLERS: dict[str, Handler] = {
    "memory_skill_register": register, "memory_skill_list": list_skills, "memory_skill_get": get,
    "memory_skill_resource": resource, "memory_skill_export": export,
    "memory_skill_promote_from_reflection": promote_from_reflection,
    "memory_skill_compositional_context": compositional_context,
}
