"""Input rules and messages of the original ai-memory (its validate.rs), as pure functions.

Each ``check_*`` raises :class:`ValidationError` with the original's message, or returns the cleaned value.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from producers.errors import ValidationError
from producers.input.jsonbody import check_json_value
from schemas import SCOPES, TIERS, parse_ts

__all__ = [
    "MAX_BULK",
    "SOURCES",
    "check_agent_id",
    "check_confidence",
    "check_content",
    "check_expires_at",
    "check_id",
    "check_metadata",
    "check_namespace",
    "check_on_conflict",
    "check_priority",
    "check_scope",
    "check_source",
    "check_tags",
    "check_tier",
    "check_timestamp",
    "check_title",
    "check_ttl_secs",
]

MAX_TITLE_CHARS = 512
MAX_CONTENT_BYTES = 65_536
MAX_NAMESPACE_CHARS = 512
MAX_NAMESPACE_DEPTH = 8
MAX_TAGS = 50
MAX_TAG_BYTES = 128
MAX_SOURCE_BYTES = 64
MAX_METADATA_BYTES = 65_536
MAX_METADATA_DEPTH = 32
MAX_TTL_SECS = 31_536_000
MAX_BULK = 1000
SOURCES = ("user", "nhi", "claude", "hook", "api", "cli", "import", "consolidation", "system", "chaos", "notify")
ON_CONFLICT = ("error", "merge", "version")
_AGENT_ID = re.compile(r"^[A-Za-z0-9_\-:@./]+$")


def _bad_controls(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text)


def check_title(title: Any) -> str:
    if not isinstance(title, str):
        raise ValidationError("title must be a string")
    trimmed = title.strip()
    if not trimmed:
        raise ValidationError("title cannot be empty")
    if len(trimmed) > MAX_TITLE_CHARS:
        raise ValidationError(f"title exceeds max length of {MAX_TITLE_CHARS} characters")
    if _bad_controls(trimmed):
        raise ValidationError("title contains invalid characters")
    return trimmed  # what was checked is what is stored


def check_content(content: Any) -> str:
    if not isinstance(content, str):
        raise ValidationError("content must be a string")
    if not content.strip():
        raise ValidationError("content cannot be empty")
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise ValidationError(f"content exceeds max size of {MAX_CONTENT_BYTES} bytes")
    if _bad_controls(content):
        raise ValidationError("content contains invalid characters")
    return content


def check_namespace(namespace: Any, *, what: str = "namespace") -> str:
    if not isinstance(namespace, str):
        raise ValidationError(f"{what} must be a string")
    ns = namespace.strip()
    rules = (
        (not ns, "namespace cannot be empty"),
        (len(ns) > MAX_NAMESPACE_CHARS, f"namespace exceeds max length of {MAX_NAMESPACE_CHARS} characters"),
        ("\\" in ns or "\0" in ns, "namespace cannot contain backslashes or null bytes"),
        (" " in ns, "namespace cannot contain spaces (use hyphens or underscores)"),
        (_bad_controls(ns) or "\n" in ns or "\t" in ns, "namespace contains invalid control characters"),
        (ns.startswith("/"), "namespace cannot start with '/' (normalize input first)"),
        (ns.endswith("/"), "namespace cannot end with '/' (normalize input first)"),
        ("//" in ns, "namespace cannot contain empty segments (e.g. '//')"),
        (any(seg in (".", "..") for seg in ns.split("/")), "namespace segments '.' and '..' are not allowed"),
    )
    for failed, message in rules:
        if failed:
            raise ValidationError(message if what == "namespace" else f"invalid {what}: {message}")
    depth = len([s for s in ns.split("/") if s])
    if depth > MAX_NAMESPACE_DEPTH:
        raise ValidationError(f"namespace depth {depth} exceeds max of {MAX_NAMESPACE_DEPTH}")
    return ns


def check_source(source: Any) -> str:
    if not isinstance(source, str) or not source.strip():
        raise ValidationError("source cannot be empty")
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise ValidationError(f"source exceeds max length of {MAX_SOURCE_BYTES} bytes")
    if source not in SOURCES:
        raise ValidationError(f"invalid source '{source}' \u2014 must be one of: {', '.join(SOURCES)}")
    return source


def check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValidationError("tags must be an array of strings")
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"too many tags (max {MAX_TAGS})")
    for tag in tags:
        trimmed = tag.strip()
        if not trimmed:
            raise ValidationError("tags cannot contain empty strings")
        if len(trimmed.encode("utf-8")) > MAX_TAG_BYTES:
            raise ValidationError(f"tag '{trimmed[:20]}...' exceeds max length of {MAX_TAG_BYTES} bytes")
        if _bad_controls(trimmed):
            raise ValidationError("tag contains invalid characters")
    return [tag.strip() for tag in tags]  # what was checked is what is stored


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationError("priority must be an integer")
    if not 1 <= priority <= 10:
        raise ValidationError(f"priority must be between 1 and 10 (got {priority})")
    return priority


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def check_confidence(confidence: Any) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValidationError("confidence must be a number")
    value = float(confidence)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError("confidence must be a finite number")
    if not 0.0 <= value <= 1.0:
        raise ValidationError(f"confidence must be between 0.0 and 1.0 (got {_num(value)})")
    return value


def check_timestamp(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} is not valid RFC3339: '{value}'")
    try:
        parse_ts(value)
    except ValueError:
        raise ValidationError(f"{name} is not valid RFC3339: '{value}'") from None
    if "T" not in value.upper() and " " not in value:
        raise ValidationError(f"{name} is not valid RFC3339: '{value}'")
    return value


def check_expires_at(value: Any, *, now: str | None) -> str:
    """RFC 3339, and (when ``now`` is given) not in the past."""
    check_timestamp(value, "expires_at")
    if now is not None and parse_ts(value) <= parse_ts(now):
        raise ValidationError("expires_at is in the past")
    return str(value)


def check_ttl_secs(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("ttl_secs must be an integer")
    if value <= 0:
        raise ValidationError(f"ttl_secs must be positive (got {value})")
    if value > MAX_TTL_SECS:
        raise ValidationError("ttl_secs exceeds maximum of 1 year")
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def check_metadata(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be a JSON object")
    check_json_value(metadata)  # also for the CLI, whose --metadata never passed the HTTP body's parser
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata exceeds max size of {MAX_METADATA_BYTES} bytes (got {size})")
    depth = _depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise ValidationError(f"metadata nesting depth exceeds limit of {MAX_METADATA_DEPTH} (got {depth})")
    return metadata


def check_agent_id(agent_id: Any) -> str:
    if not isinstance(agent_id, str) or not agent_id:
        raise ValidationError("agent_id cannot be empty")
    if len(agent_id.encode("utf-8")) > 128:
        raise ValidationError("agent_id exceeds max length of 128 bytes")
    if not _AGENT_ID.match(agent_id) or not agent_id.isascii():
        bad = next((c for c in agent_id if not (c.isascii() and (c.isalnum() or c in "_-:@./"))), "?")
        raise ValidationError(f"agent_id contains invalid character '{bad}' (allowed: alphanumeric, _-:@./)")
    return agent_id


def check_scope(scope: Any) -> str:
    if not isinstance(scope, str) or not scope.strip():
        raise ValidationError("scope cannot be empty")
    if scope not in SCOPES:
        raise ValidationError(f"invalid scope '{scope}' \u2014 must be one of: {', '.join(SCOPES)}")
    return scope


def check_tier(tier: Any) -> str:
    if tier not in TIERS:
        raise ValidationError(f"invalid tier '{tier}' (expected short|mid|long)")
    return str(tier)


def check_on_conflict(value: Any) -> str:
    if value not in ON_CONFLICT:
        raise ValidationError(f"invalid on_conflict '{value}' (expected error|merge|version)")
    return str(value)


def check_id(memory_id: Any) -> str:
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise ValidationError("id cannot be empty")
    if len(memory_id.encode("utf-8")) > 128:
        raise ValidationError("id exceeds max length of 128 bytes")
    if _bad_controls(memory_id) or "\n" in memory_id or "\t" in memory_id:
        raise ValidationError("id contains invalid characters")
    return memory_id.strip()
