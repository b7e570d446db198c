"""Requests as they arrive (HTTP body, query string, CLI flags), parsed and validated into typed commands.

Parsing is pure: nothing here touches the log or a read model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from producers.errors import ValidationError
from producers.input.validation import (
    check_agent_id,
    check_confidence,
    check_content,
    check_expires_at,
    check_metadata,
    check_namespace,
    check_on_conflict,
    check_priority,
    check_scope,
    check_source,
    check_tags,
    check_tier,
    check_timestamp,
    check_title,
    check_ttl_secs,
)

__all__ = [
    "MAX_INT64",
    "RANKINGS",
    "CreateCommand",
    "ListQuery",
    "RecallQuery",
    "UpdateCommand",
    "check_ranking",
    "parse_create",
    "parse_int",
    "parse_list_query",
    "parse_recall",
    "parse_update",
]


def _opt(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    return None if value is None else value


@dataclass(frozen=True)
class CreateCommand:
    title: str
    content: str
    tier: str = "mid"
    namespace: str = "global"
    tags: list[str] = field(default_factory=list)
    priority: int = 5
    confidence: float = 1.0
    source: str = "api"
    expires_at: str | None = None
    ttl_secs: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None
    scope: str | None = None
    on_conflict: str | None = None


def parse_create(body: Any, *, now: str) -> CreateCommand:
    """Validate a create body in the original's order: title, content, namespace, source, tags, priority,
    confidence, expires_at, ttl_secs, metadata, then agent_id, scope and on_conflict."""
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    for required in ("title", "content"):
        if required not in body:
            raise ValidationError(f"missing field `{required}`")
    cmd = CreateCommand(
        title=check_title(body["title"]),
        content=check_content(body["content"]),
        tier=check_tier(body.get("tier") or "mid"),
        namespace=check_namespace(body.get("namespace") or "global"),
        source=check_source(body.get("source") or "api"),
        tags=check_tags(body.get("tags") or []),
        priority=check_priority(body["priority"]) if _opt(body, "priority") is not None else 5,
        confidence=check_confidence(body["confidence"]) if _opt(body, "confidence") is not None else 1.0,
        expires_at=check_expires_at(body["expires_at"], now=now) if _opt(body, "expires_at") else None,
        ttl_secs=check_ttl_secs(body["ttl_secs"]) if _opt(body, "ttl_secs") is not None else None,
        metadata=dict(check_metadata(body["metadata"])) if _opt(body, "metadata") is not None else {},
        agent_id=body.get("agent_id"),
        scope=check_scope(body["scope"]) if _opt(body, "scope") is not None else None,
        on_conflict=check_on_conflict(body["on_conflict"]) if _opt(body, "on_conflict") is not None else None,
    )
    if cmd.agent_id is not None and cmd.agent_id != "":
        try:
            check_agent_id(cmd.agent_id)
        except ValidationError as exc:
            raise ValidationError(f"invalid agent_id: {exc}") from None
    return cmd


@dataclass(frozen=True)
class UpdateCommand:
    title: str | None = None
    content: str | None = None
    tier: str | None = None
    namespace: str | None = None
    tags: list[str] | None = None
    priority: int | None = None
    confidence: float | None = None
    expires_at: str | None = None
    metadata: dict[str, Any] | None = None


def parse_update(body: Any) -> UpdateCommand:
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    checks: dict[str, Callable[[Any], Any]] = {
        "title": check_title, "content": check_content, "tier": check_tier, "namespace": check_namespace,
        "tags": check_tags, "priority": check_priority, "confidence": check_confidence,
        "expires_at": lambda v: check_expires_at(v, now=None), "metadata": check_metadata}
    values = {name: check(body[name]) for name, check in checks.items() if body.get(name) is not None}
    return UpdateCommand(**values)


#: The largest integer a query parameter may be: the original parses them as 64-bit, and so do the read models.
MAX_INT64 = 2**63 - 1


def parse_int(value: Any, name: str, *, default: int | None = None, minimum: int = 0,
              maximum: int = MAX_INT64) -> int | None:
    """An integer from a query string or a JSON body, within [minimum, maximum]; None or "" gives ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        raise ValidationError(f"{name} must be an integer (got {str(value)[:40]!r})") from None
    if number < minimum:
        raise ValidationError(f"{name} must be at least {minimum} (got {number})")
    if number > maximum:
        raise ValidationError(f"{name} must be at most {maximum}")
    return number


@dataclass(frozen=True)
class ListQuery:
    namespace: str | None = None
    tier: str | None = None
    limit: int = 20
    offset: int = 0
    min_priority: int | None = None
    since: str | None = None
    until: str | None = None
    tag: str | None = None
    agent_id: str | None = None
    as_agent: str | None = None


def _tag(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value)


def parse_list_query(params: dict[str, Any], *, default_limit: int = 20, max_limit: int = 200) -> ListQuery:
    limit = parse_int(params.get("limit"), "limit", default=default_limit) or 0
    agent = params.get("agent_id") or None
    if agent is not None:
        try:
            check_agent_id(agent)
        except ValidationError as exc:
            raise ValidationError(f"invalid agent_id filter: {exc}") from None
    as_agent = params.get("as_agent") or None
    if as_agent is not None:
        check_namespace(as_agent, what="as_agent")
    return ListQuery(
        namespace=check_namespace(params["namespace"]) if params.get("namespace") else None,
        tier=check_tier(params["tier"]) if params.get("tier") else None,
        limit=min(limit, max_limit),
        offset=parse_int(params.get("offset"), "offset", default=0) or 0,
        min_priority=parse_int(params.get("min_priority"), "min_priority"),
        since=check_timestamp(params["since"], "since") if params.get("since") else None,
        until=check_timestamp(params["until"], "until") if params.get("until") else None,
        tag=_tag(params.get("tags") if params.get("tags") is not None else params.get("tag")),
        agent_id=agent,
        as_agent=as_agent,
    )


RECALL_MODES = ("auto", "hybrid", "semantic", "keyword")
#: Recall rankings: our own (the default) and the original's formula, kept selectable (producers.memory.recall).
RANKINGS = ("ours", "original")


@dataclass(frozen=True)
class RecallQuery:
    """``mode`` (an extension; the original has none): "auto" is hybrid when a model is loaded, else keyword;
    "semantic" ranks by cosine alone and "keyword" forces the keyword path (both for comparisons)."""

    context: str
    filters: ListQuery
    budget_tokens: int | None = None
    mode: str = "auto"
    #: "ours" or "original" (producers.memory.recall); None: the node's configured default.
    ranking: str | None = None


def check_ranking(value: Any) -> str:
    if value not in RANKINGS:
        raise ValidationError(f"ranking must be one of {', '.join(RANKINGS)} (got {value!r})")
    return str(value)


def parse_recall(params: dict[str, Any]) -> RecallQuery:
    context = params.get("context")
    if context is None and params.get("query") is not None:
        context = params.get("query")
    if not isinstance(context, str) or not context.strip():
        raise ValidationError("context is required")
    filters = parse_list_query(params, default_limit=10, max_limit=50)
    mode = params.get("mode") or "auto"
    if mode not in RECALL_MODES:
        raise ValidationError(f"mode must be one of {', '.join(RECALL_MODES)} (got {mode!r})")
    ranking = params.get("ranking")
    return RecallQuery(context=context, filters=filters,
                       budget_tokens=parse_int(params.get("budget_tokens"), "budget_tokens"), mode=mode,
                       ranking=None if ranking is None else check_ranking(ranking))
