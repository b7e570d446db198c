"""Handing content on: ``memory_share`` (a copy of a memory for another agent, with provenance) and
``memory_offload`` / ``memory_deref`` (verbatim content parked under a content-addressed ``ref_id``).

Both write ordinary memories (``memory.stored`` events), so they replay and reach every node like the rest:
a share is a copy in ``_shared/<from>→<to>`` (the original's namespace without its trailing ``/``, which our
namespace rules refuse); an offload is a memory titled ``offload:<ref_id>`` and tagged with the ref, owned by
the caller, whose SHA-256 is checked again on every deref (the original's tamper check).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from producers.errors import NotFoundError, ValidationError
from producers.input.commands import CreateCommand, parse_list_query
from producers.input.validation import MAX_TTL_SECS, check_agent_id, check_id, check_namespace
from producers.tools.base import Handler, ToolContext, opt_str, req_str
from schemas import Memory

__all__ = ["HANDLERS", "MAX_OFFLOAD_BYTES", "ref_id_for", "shared_namespace"]

#: The original's ``DEFAULT_MAX_OFFLOAD_BLOB_BYTES``.
MAX_OFFLOAD_BYTES = 1_048_576
_OFFLOAD_TAG = "offload"


def shared_namespace(from_agent: str, to_agent: str) -> str:
    return f"_shared/{from_agent}\u2192{to_agent}"


async def share(ctx: ToolContext, args: dict[str, Any]) -> Any:
    source_id, target = req_str(args, "source_memory_id"), req_str(args, "target_agent_id")
    check_id(source_id)
    check_agent_id(target)
    try:
        source = await ctx.service.get(source_id)
    except NotFoundError:
        raise NotFoundError(f"source memory {source_id} not found") from None
    author = source.metadata.get("agent_id")
    from_agent = author if isinstance(author, str) else "unknown"
    namespace = check_namespace(shared_namespace(from_agent, target))
    stored = await ctx.service.store(_shared_copy(source, from_agent, target, namespace), agent_id=target,
                                     on_conflict="merge", metered=True)
    return {"shared_memory_id": stored.memory.id, "source_memory_id": source_id, "target_namespace": namespace,
            "target_agent_id": target, "from_agent_id": from_agent}


def _shared_copy(source: Memory, from_agent: str, target: str, namespace: str) -> CreateCommand:
    metadata = {k: v for k, v in source.metadata.items() if k != "scope"}
    metadata.update(shared_from_memory_id=source.id, shared_from_agent_id=from_agent, shared_to_agent_id=target)
    return CreateCommand(title=source.title, content=source.content, tier=source.tier, namespace=namespace,
                         tags=list(source.tags), priority=source.priority, confidence=source.confidence,
                         source=source.source, metadata=metadata)


def ref_id_for(sha_hex: str) -> str:
    """``ofl_`` + the base32 of the digest's first 8 bytes, as the original."""
    return "ofl_" + base64.b32encode(bytes.fromhex(sha_hex[:16])).decode().rstrip("=")


async def offload(ctx: ToolContext, args: dict[str, Any]) -> Any:
    content = req_str(args, "content")
    size = len(content.encode("utf-8"))
    if size > MAX_OFFLOAD_BYTES:
        raise ValidationError(f"offload blob {size} bytes exceeds policy max {MAX_OFFLOAD_BYTES}")
    namespace = check_namespace(opt_str(args, "namespace") or "auto")
    ttl = args.get("ttl_seconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise ValidationError("ttl_seconds must be a positive integer")
    if ttl is not None and ttl > MAX_TTL_SECS:
        raise ValidationError(f"ttl_seconds must be at most {MAX_TTL_SECS}")
    sha = hashlib.sha256(content.encode("utf-8")).hexdigest()
    ref_id = ref_id_for(sha)
    cmd = CreateCommand(title=f"offload:{ref_id}", content=content, tier="long", namespace=namespace,
                        tags=[_OFFLOAD_TAG, ref_id], source="api", ttl_secs=ttl,
                        metadata={"offload_ref": ref_id, "content_sha256": sha})
    stored = await ctx.service.store(cmd, agent_id=ctx.agent_id(args), on_conflict="merge", metered=True)
    return {"ref_id": ref_id, "content_sha256": sha, "stored_at": stored.memory.updated_at, "namespace": namespace}


async def deref(ctx: ToolContext, args: dict[str, Any]) -> Any:
    ref_id = req_str(args, "ref_id")
    caller = ctx.agent_id(args)
    found = [m for m in await ctx.service.list_memories(parse_list_query({"tag": ref_id, "limit": 50}))
             if m.metadata.get("offload_ref") == ref_id and m.metadata.get("agent_id") == caller]
    if not found:
        # Another agent's blob is "not found" too, as the original (no existence oracle).
        raise NotFoundError(f"offloaded blob {ref_id} not found")
    blob = found[0]
    sha = hashlib.sha256(blob.content.encode("utf-8")).hexdigest()
    if sha != blob.metadata.get("content_sha256"):
        raise ValidationError(f"offloaded blob {ref_id} integrity check failed (content tampered)")
    return {"ref_id": ref_id, "content": blob.content, "stored_at": blob.updated_at, "sha256": sha}


HANDLERS: dict[str, Handler] = {"memory_share": share, "memory_offload": offload, "memory_deref": deref}
