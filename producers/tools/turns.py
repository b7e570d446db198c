"""``memory_capture_turn``: a host volunteers one conversation turn (the original's RFC-0001 "L4" capture),
stored once per ``(host_session_id, host_turn_index)`` whatever the retries.

The turn is an ordinary memory (one ``memory.stored`` event) tagged with a hash of its idempotency key, so a
repeat finds it (``dedup_hit``) on any node that has the event. Its title names the session and turn, so two
captures of one turn racing on different nodes meet at the title-conflict check the log already decides. An
optional host signature (Ed25519 over ``session\\0turn\\0role\\0content``) is checked against the operator's
allow-list ``AI_MEMORY_L4_HOST_PUBKEY_ALLOWLIST`` (comma-separated base64 keys), as the original.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from producers.errors import ConflictError, ValidationError
from producers.input.commands import CreateCommand, parse_list_query
from producers.input.validation import check_content, check_namespace
from producers.tools.base import Handler, ToolContext

__all__ = ["ALLOWLIST_ENV", "HANDLERS", "turn_tag"]

ALLOWLIST_ENV = "AI_MEMORY_L4_HOST_PUBKEY_ALLOWLIST"
_INVALID = "INVALID_INPUT"


def turn_tag(session: str, turn: int) -> str:
    """The tag that marks the capture of one (session, turn): its idempotency key, hashed to a tag's size."""
    return "l4-turn:" + hashlib.sha256(f"{session}\0{turn}".encode()).hexdigest()[:32]


def _field(args: dict[str, Any], name: str, kind: type) -> Any:
    value = args.get(name)
    if value is None:
        raise ValidationError(f"{_INVALID}: missing field `{name}`")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValidationError(f"{_INVALID}: `{name}` must be {'an integer' if kind is int else 'a string'}")
    return value


def _optional(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{_INVALID}: `{name}` must be a string")
    return value


def _b64(value: str, name: str, size: int) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"{_INVALID}: {name} not valid base64: {exc}") from None
    if len(raw) != size:
        raise ValidationError(f"{_INVALID}: {name} must decode to {size} bytes (Ed25519)")
    return raw


def _enrolled(key: bytes) -> bool:
    for entry in (e.strip() for e in os.environ.get(ALLOWLIST_ENV, "").split(",")):
        try:
            if entry and base64.b64decode(entry, validate=True) == key:
                return True
        except (binascii.Error, ValueError):
            continue
    return False


def _attest(args: dict[str, Any], canonical: bytes) -> str:
    """``self_signed`` without a host signature; ``signed_by_peer`` with one from an allow-listed key."""
    sig, pub = _optional(args, "host_signature_b64"), _optional(args, "host_pubkey_b64")
    if sig is None and pub is None:
        return "self_signed"
    if sig is None or pub is None:
        raise ValidationError(f"{_INVALID}: host_signature_b64 and host_pubkey_b64 must both be present or both "
                              "absent")
    key = _b64(pub, "host_pubkey_b64", 32)
    if not _enrolled(key):
        raise ValidationError(f"HOST_PUBKEY_NOT_ENROLLED: {pub}")
    try:
        VerifyKey(key).verify(canonical, _b64(sig, "host_signature_b64", 64))
    except BadSignatureError:
        raise ValidationError(f"{_INVALID}: signature_verification_failed: signature error") from None
    return "signed_by_peer"


async def _existing(ctx: ToolContext, tag: str) -> str | None:
    found = await ctx.service.list_memories(parse_list_query({"tag": tag, "limit": 1}))
    return found[0].id if found else None


async def capture_turn(ctx: ToolContext, args: dict[str, Any]) -> Any:
    started = time.monotonic()
    session = _field(args, "host_session_id", str)
    turn = _field(args, "host_turn_index", int)
    role, content = _field(args, "role", str), _field(args, "content", str)
    caller = ctx.agent_id(args)
    metadata = args.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(f"{_INVALID}: `metadata` must be an object")
    claimed = (metadata or {}).get("agent_id")
    if isinstance(claimed, str) and claimed != caller:
        raise ValidationError(f"{_INVALID}: metadata.agent_id ({claimed!r}) does not match resolved caller "
                              f"({caller!r})")
    attest = _attest(args, f"{session}\0{turn}\0{role}\0{content}".encode())
    tag = turn_tag(session, turn)

    def answer(memory_id: str, *, dedup: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"memory_id": memory_id, "dedup_hit": dedup, "layer": "L4"}
        if not dedup:
            out["attest_level"] = attest
        out["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        return out

    if (found := await _existing(ctx, tag)) is not None:
        return answer(found, dedup=True)
    kind = _optional(args, "host_kind") or "unknown"
    tags = ["captured-via-l4", f"host:{kind}", f"role:{role}", f"attest:{attest}", tag]
    if version := _optional(args, "host_version"):
        tags.append(f"host-version:{version}")
    meta = {**(metadata or {}), "host_session_id": session, "host_turn_index": turn,
            "captured_at": _optional(args, "timestamp_iso")}
    cmd = CreateCommand(title=f"L4 capture {kind} {session} turn {turn} ({role})", content=check_content(content),
                        tier="long", namespace=check_namespace(_optional(args, "namespace") or "global"), tags=tags,
                        source="hook", metadata=meta, on_conflict="error")
    try:
        stored = await ctx.service.store(cmd, agent_id=caller, metered=True)
    except ConflictError as exc:
        if exc.existing_id is None:
            raise
        return answer(exc.existing_id, dedup=True)  # the same turn, captured concurrently
    return answer(stored.memory.id, dedup=False)


HANDLERS: dict[str, Handler] = {"memory_capture_turn": capture_turn}
