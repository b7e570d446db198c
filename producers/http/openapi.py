"""The HTTP API as an OpenAPI 3.1 document (``GET /api/v1/openapi.json``), built from the app's routes.

Paths, methods and path parameters come from the Starlette routes themselves, so an API route cannot be missing
from the document; what each route reads (query parameters, the JSON body) is described in
:data:`REQUESTS`, with the limits taken from the validators' own constants. A route with no entry there is
documented without parameters, and ``tests/producers/test_openapi.py`` fails on it (and on an entry that
names no route), so the two cannot drift apart.

Every error answer is ``{"error": "..."}`` (some add fields, e.g. ``code`` and ``existing_id`` on a 409).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Route

from producers.http.tools import BRIDGED_TOOLS
from producers.input.commands import MAX_INT64, RECALL_MODES
from producers.input.validation import (
    MAX_BULK,
    MAX_CONTENT_BYTES,
    MAX_NAMESPACE_CHARS,
    MAX_TAG_BYTES,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    MAX_TTL_SECS,
    ON_CONFLICT,
    SOURCES,
)
from producers.tools.registry import all_tools
from schemas import SCOPES, TIERS

__all__ = ["API_PATHS", "REQUESTS", "RouteInput", "openapi_document", "operations"]

Schema = dict[str, Any]

_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


# -- schema helpers ---------------------------------------------------------------------------------------

def _int(minimum: int = 0, maximum: int = MAX_INT64) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def _str(max_length: int | None = None, *, min_length: int = 0) -> Schema:
    schema: Schema = {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def _enum(values: Iterable[str]) -> Schema:
    return {"type": "string", "enum": list(values)}


def _obj(properties: dict[str, Schema], *required: str) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


_TS: Schema = {"type": "string", "format": "date-time"}
_BOOL_Q = _enum(("true", "false"))
_NAMESPACE = _str(MAX_NAMESPACE_CHARS, min_length=1)
_AGENT = _str(128, min_length=1)
_IDS: Schema = {"type": "array", "items": _str(128, min_length=1), "maxItems": MAX_BULK}
_TAGS: Schema = {"type": "array", "items": _str(MAX_TAG_BYTES, min_length=1), "maxItems": MAX_TAGS}
_METADATA: Schema = {"type": "object"}

_MEMORY_FIELDS: dict[str, Schema] = {
    "title": _str(MAX_TITLE_CHARS, min_length=1),
    "content": _str(MAX_CONTENT_BYTES, min_length=1),
    "tier": _enum(TIERS),
    "namespace": _NAMESPACE,
    "tags": _TAGS,
    "priority": _int(1, 10),
    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    "expires_at": _TS,
    "metadata": _METADATA,
}
CREATE_BODY = _obj({**_MEMORY_FIELDS, "source": _enum(SOURCES), "ttl_secs": _int(1, MAX_TTL_SECS),
                    "agent_id": _AGENT, "scope": _enum(SCOPES), "on_conflict": _enum(ON_CONFLICT)},
                   "title", "content")
UPDATE_BODY = _obj(dict(_MEMORY_FIELDS))
_LIST_QUERY: dict[str, Schema] = {
    "namespace": _NAMESPACE, "tier": _enum(TIERS), "limit": _int(), "offset": _int(), "min_priority": _int(),
    "since": _TS, "until": _TS, "tags": _str(), "agent_id": _AGENT, "as_agent": _NAMESPACE}
_RECALL: dict[str, Schema] = {"context": _str(min_length=1), **_LIST_QUERY, "budget_tokens": _int(),
                              "mode": _enum(RECALL_MODES)}
_AS_AGENT: dict[str, Schema] = {"as_agent": _NAMESPACE}
_GRAPH_READ: dict[str, Schema] = {"as_of": _TS, "as_agent": _AGENT}
_MEMORIES_BODY = _obj({"memories": {"type": "array", "items": {"type": "object"}, "maxItems": MAX_BULK}},
                      "memories")
_STANDARD_BODY = _obj({"id": _str(128), "parent": _NAMESPACE, "namespace": _NAMESPACE,
                       "governance": {"type": "object"}})
_FILTERS: dict[str, Schema] = {"namespace": _NAMESPACE, "pattern": _str(), "tier": _enum(TIERS)}


@dataclass(frozen=True)
class RouteInput:
    """What one route reads: its query parameters (name → schema; ``required`` lists the mandatory ones)
    and its JSON body (None: it reads none)."""

    query: dict[str, Schema] = field(default_factory=dict)
    body: Schema | None = None
    required: tuple[str, ...] = ()
    summary: str = ""


#: (METHOD, path as routed) → what the route reads.
REQUESTS: dict[tuple[str, str], RouteInput] = {
    ("GET", "/api/v1/health"): RouteInput(summary="Liveness, version and the node's clock"),
    ("GET", "/metrics"): RouteInput(summary="Prometheus metrics"),
    ("GET", "/api/v1/metrics"): RouteInput(summary="Prometheus metrics"),
    ("GET", "/api/v1/openapi.json"): RouteInput(summary="This document"),
    ("GET", "/api/v1/status"): RouteInput(summary="The node's status as JSON"),
    ("GET", "/api/v1/memories"): RouteInput(_LIST_QUERY, summary="List memories"),
    ("POST", "/api/v1/memories"): RouteInput(body=CREATE_BODY, summary="Store a memory"),
    ("POST", "/api/v1/memories/bulk"): RouteInput(
        body={"type": "array", "items": CREATE_BODY, "maxItems": MAX_BULK}, summary="Store many memories"),
    ("GET", "/api/v1/memories/{id}"): RouteInput(_AS_AGENT, summary="One memory and its links"),
    ("PUT", "/api/v1/memories/{id}"): RouteInput(body=UPDATE_BODY, summary="Update a memory"),
    ("DELETE", "/api/v1/memories/{id}"): RouteInput(summary="Delete a memory"),
    ("POST", "/api/v1/memories/{id}/promote"): RouteInput(summary="Promote a memory to the long tier"),
    ("GET", "/api/v1/search"): RouteInput({"q": _str(), **_LIST_QUERY}, required=("q",), summary="Keyword search"),
    ("GET", "/api/v1/contradictions"): RouteInput(
        {"topic": _str(), "namespace": _NAMESPACE, "limit": _int(), **_AS_AGENT}, summary="Contradiction pairs"),
    ("GET", "/api/v1/recall"): RouteInput(_RECALL, required=("context",), summary="Recall by context"),
    ("POST", "/api/v1/recall"): RouteInput(body=_obj(_RECALL, "context"), summary="Recall by context"),
    ("POST", "/api/v1/check_duplicate"): RouteInput(body=_obj(
        {"title": _str(), "content": _str(), "namespace": _NAMESPACE, "threshold": {"type": "number"},
         "as_agent": _NAMESPACE}, "title", "content"), summary="Is this memory a near-duplicate?"),
    ("POST", "/api/v1/forget"): RouteInput(_FILTERS, body=_obj(_FILTERS), summary="Delete memories by filter"),
    ("GET", "/api/v1/stats"): RouteInput(_AS_AGENT, summary="Counts by tier and namespace"),
    ("GET", "/api/v1/namespaces"): RouteInput(
        {"namespace": _NAMESPACE, "inherit": _BOOL_Q, **_AS_AGENT}, summary="Namespaces, or one's standard"),
    ("POST", "/api/v1/namespaces"): RouteInput({"namespace": _NAMESPACE}, body=_STANDARD_BODY,
                                            summary="Set a namespace standard"),
    ("DELETE", "/api/v1/namespaces"): RouteInput({"namespace": _NAMESPACE}, required=("namespace",),
                                              summary="Clear a namespace standard"),
    ("GET", "/api/v1/namespaces/{ns:path}/standard"): RouteInput({"inherit": _BOOL_Q}, summary="A namespace standard"),
    ("POST", "/api/v1/namespaces/{ns:path}/standard"): RouteInput(body=_STANDARD_BODY,
                                                                  summary="Set a namespace standard"),
    ("DELETE", "/api/v1/namespaces/{ns:path}/standard"): RouteInput(summary="Clear a namespace standard"),
    ("POST", "/api/v1/gc"): RouteInput(summary="Expire memories past their TTL"),
    ("GET", "/api/v1/export"): RouteInput(_AS_AGENT, summary="Every memory and link"),
    ("POST", "/api/v1/import"): RouteInput(body=_MEMORIES_BODY, summary="Import exported memories"),
    ("GET", "/api/v1/capabilities"): RouteInput(summary="What this node can do"),
    ("GET", "/api/v1/sync/since"): RouteInput(
        {"clock": _str(), "since": _TS, "limit": _int(), **_AS_AGENT}, summary="Changes after a clock or time"),
    ("POST", "/api/v1/sync/push"): RouteInput(body={"type": "object"}, summary="Apply a peer's changes"),
    # -- subscriptions
    ("POST", "/api/v1/subscriptions"): RouteInput(body=_obj(
        {"url": _str(min_length=1), "events": {"type": "array", "items": _str()}, "secret": _str(),
         "namespace_filter": _NAMESPACE, "agent_filter": _str(), "agent_id": _AGENT}, "url"),
        summary="Subscribe a webhook"),
    ("GET", "/api/v1/subscriptions"): RouteInput(summary="The caller's subscriptions"),
    ("DELETE", "/api/v1/subscriptions"): RouteInput({"id": _str(min_length=1)}, required=("id",),
                                                 summary="Unsubscribe"),
    ("GET", "/api/v1/subscriptions/dlq"): RouteInput({"subscription_id": _str(), "limit": _int()},
                                                  summary="Dead letters"),
    ("GET", "/api/v1/subscriptions/replay"): RouteInput(
        {"subscription_id": _str(min_length=1), "since": _str(min_length=1)},
        required=("subscription_id", "since"), summary="Replay events to a subscriber"),
    ("POST", "/api/v1/memory_subscription_dlq_list"): RouteInput(
        body=_obj({"subscription_id": _str(), "limit": _int(), "agent_id": _AGENT}), summary="Dead letters"),
    ("POST", "/api/v1/memory_subscription_replay"): RouteInput(
        body=_obj({"subscription_id": _str(min_length=1), "since": _str(min_length=1), "agent_id": _AGENT},
                  "subscription_id", "since"), summary="Replay events to a subscriber"),
    # -- lifecycle
    ("GET", "/api/v1/archive"): RouteInput({"namespace": _NAMESPACE, "limit": _int(1), "offset": _int()},
                                        summary="Archived memories"),
    ("POST", "/api/v1/archive"): RouteInput(body=_obj({"ids": _IDS, "reason": _str(), "agent_id": _AGENT}, "ids"),
                                         summary="Archive memories"),
    ("DELETE", "/api/v1/archive"): RouteInput({"older_than_days": _int(), "ids": _str()},
                                           summary="Purge archived memories"),
    ("GET", "/api/v1/archive/stats"): RouteInput(summary="Archive counts"),
    ("POST", "/api/v1/archive/{id}/restore"): RouteInput(summary="Restore an archived memory"),
    ("POST", "/api/v1/consolidate"): RouteInput(body=_obj(
        {"ids": _IDS, "title": _str(MAX_TITLE_CHARS, min_length=1), "summary": _str(min_length=1),
         "namespace": _NAMESPACE, "tier": _enum(TIERS), "agent_id": _AGENT}, "ids", "title", "summary"),
        summary="Merge memories into one"),
    ("POST", "/api/v1/session/start"): RouteInput(body=_obj(
        {"namespace": _NAMESPACE, "limit": _int(), "agent_id": _AGENT}), summary="Context for a new session"),
    ("POST", "/api/v1/notify"): RouteInput(body=_obj(
        {"target_agent_id": _AGENT, "title": _str(MAX_TITLE_CHARS, min_length=1), "payload": {},
         "content": {}, "priority": _int(1, 10), "tier": _enum(TIERS), "agent_id": _AGENT},
        "target_agent_id", "title"), summary="Message another agent"),
    ("GET", "/api/v1/inbox"): RouteInput({"agent_id": _AGENT, "unread_only": _BOOL_Q, "limit": _int()},
                                      summary="An agent's messages"),
    # -- governance
    ("GET", "/api/v1/agents"): RouteInput(summary="Registered agents"),
    ("POST", "/api/v1/agents"): RouteInput(body=_obj(
        {"agent_id": _AGENT, "agent_type": _str(), "capabilities": {"type": "array", "items": _str()}},
        "agent_id"), summary="Register an agent"),
    ("GET", "/api/v1/pending"): RouteInput({"status": _str(), "limit": _int()}, summary="Pending actions"),
    ("POST", "/api/v1/pending/{id}/approve"): RouteInput(summary="Approve a pending action"),
    ("POST", "/api/v1/pending/{id}/reject"): RouteInput(summary="Reject a pending action"),
    ("GET", "/api/v1/approvals/stream"): RouteInput(summary="Pending actions as server-sent events"),
    ("POST", "/api/v1/approvals/{id}"): RouteInput(body=_obj(
        {"decision": _enum(("approve", "deny")), "remember": _enum(("once", "session", "forever"))},
        "decision"), summary="An HMAC-signed approval decision"),
    ("GET", "/api/v1/quotas"): RouteInput({"agent_id": _AGENT}, summary="Quota use"),
    # -- graph
    ("POST", "/api/v1/links"): RouteInput(body=_obj(
        {"source_id": _str(128, min_length=1), "target_id": _str(128, min_length=1), "relation": _str(),
         "agent_id": _AGENT}, "source_id", "target_id"), summary="Link two memories"),
    ("DELETE", "/api/v1/links"): RouteInput(body=_obj(
        {"source_id": _str(128, min_length=1), "target_id": _str(128, min_length=1), "relation": _str()},
        "source_id", "target_id"), summary="Remove a link"),
    ("GET", "/api/v1/links/{id}"): RouteInput(_GRAPH_READ, summary="A memory's links"),
    ("GET", "/api/v1/memories/{id}/lineage"): RouteInput({"max_depth": _int(), **_GRAPH_READ},
                                                      summary="Where a memory came from"),
    ("POST", "/api/v1/kg/query"): RouteInput(body=_obj(
        {"source_id": _str(128, min_length=1), "max_depth": _int(1, 5), "valid_at": _TS,
         "allowed_agents": {"type": "array", "items": _AGENT}, "limit": _int(1, 1000), **_GRAPH_READ},
        "source_id"), summary="Walk the knowledge graph"),
    ("GET", "/api/v1/kg/timeline"): RouteInput(
        {"source_id": _str(128, min_length=1), "since": _TS, "until": _TS, "limit": _int(1, 1000),
         **_GRAPH_READ}, required=("source_id",), summary="A memory's links over time"),
    ("POST", "/api/v1/kg/invalidate"): RouteInput(body=_obj(
        {"source_id": _str(128, min_length=1), "target_id": _str(128, min_length=1), "relation": _str(),
         "valid_until": _TS, "agent_id": _AGENT}, "source_id", "target_id", "relation"),
        summary="End a link's validity"),
    ("POST", "/api/v1/entities"): RouteInput(body=_obj(
        {"canonical_name": _str(min_length=1), "namespace": _NAMESPACE,
         "aliases": {"type": "array", "items": _str()}, "metadata": _METADATA, "agent_id": _AGENT},
        "canonical_name", "namespace"), summary="Register an entity"),
    ("GET", "/api/v1/entities/by_alias"): RouteInput(
        {"alias": _str(min_length=1), "namespace": _NAMESPACE, **_GRAPH_READ}, required=("alias",),
        summary="Find an entity by alias"),
    ("GET", "/api/v1/entities/by-alias"): RouteInput(
        {"alias": _str(min_length=1), "namespace": _NAMESPACE, **_GRAPH_READ}, required=("alias",),
        summary="Find an entity by alias"),
    # -- identity
    ("POST", "/api/v1/identity/keys"): RouteInput(body=_obj(
        {"agent_id": _AGENT, "public_key": _str(min_length=1), "timestamp": _int(),
         "proof": _str(min_length=1)}, "agent_id", "public_key", "timestamp", "proof"),
        summary="Register an agent's signing key"),
    ("GET", "/api/v1/identity/keys"): RouteInput(summary="Registered keys"),
    ("DELETE", "/api/v1/identity/keys/{agent_id}"): RouteInput({"reason": _str()}, summary="Revoke a key (admin)"),
    ("GET", "/api/v1/admin/as_agent_required"): RouteInput(summary="Subtrees that require as_agent (admin)"),
    ("POST", "/api/v1/admin/as_agent_required"): RouteInput(body=_obj(
        {"prefix": _NAMESPACE, "required": {"type": "boolean"}, "reason": _str()}, "prefix"),
        summary="Require as_agent under a subtree (admin)"),
    ("GET", "/api/v1/taxonomy"): RouteInput(
        {"prefix": _str(), "namespace_prefix": _str(), "depth": _int(), "limit": _int(1), **_AS_AGENT},
        summary="The namespace tree"),
}



def _tool_body(tool: str, *, without: Iterable[str] = ()) -> Schema:
    """The JSON body of a route that runs an MCP tool: the tool's own input schema (less what the path
    carries), so the document and the tool cannot disagree."""
    schema = next(t["inputSchema"] for t in all_tools() if t["name"] == tool)
    dropped = set(without)
    properties = {k: v for k, v in schema.get("properties", {}).items() if k not in dropped}
    body: Schema = {"type": "object", "properties": properties}
    if required := [r for r in schema.get("required", []) if r not in dropped]:
        body["required"] = required
    return body


# The original's v0.7.0 routes that expose MCP tools over HTTP (producers/http/tools.py).
REQUESTS.update({("POST", f"/api/v1/memory_{name}"): RouteInput(body=_tool_body(f"memory_{name}"),
                                                                summary=f"The memory_{name} tool")
                 for name in BRIDGED_TOOLS})
REQUESTS.update({
    ("GET", "/api/v1/tools/list"): RouteInput(summary="The MCP tool catalog of the serving profile"),
    ("POST", "/api/v1/kg/find_paths"): RouteInput(body=_tool_body("memory_find_paths"), summary="Paths between "
                                                                                                  "two memories"),
    ("POST", "/api/v1/find_paths"): RouteInput(body=_tool_body("memory_find_paths"), summary="Paths between two "
                                                                                              "memories"),
    ("POST", "/api/v1/links/verify"): RouteInput(body=_tool_body("memory_verify"), summary="Verify a link's "
                                                                                            "signature"),
    ("POST", "/api/v1/quota/status"): RouteInput(body=_obj({"agent_id": _AGENT, "namespace": _NAMESPACE}),
                                                 summary="An agent's quota usage"),
    ("POST", "/api/v1/share"): RouteInput(body=_tool_body("memory_share"), summary="Share a memory with an agent"),
    ("POST", "/api/v1/capture_turn"): RouteInput(body=_tool_body("memory_capture_turn"),
                                                 summary="Capture one conversation turn (idempotent)"),
    ("POST", "/api/v1/auto_tag"): RouteInput(body=_tool_body("memory_auto_tag"), summary="Tags from the LLM"),
    ("POST", "/api/v1/expand_query"): RouteInput(body=_tool_body("memory_expand_query"),
                                                 summary="Query expansion by the LLM"),
    ("POST", "/api/v1/skill/register"): RouteInput(body=_tool_body("memory_skill_register"),
                                                   summary="Register a skill"),
    ("GET", "/api/v1/skill/list"): RouteInput({"namespace": _NAMESPACE, "filter": _str()}, summary="Skills"),
    ("GET", "/api/v1/skill/{id}"): RouteInput(summary="One skill"),
    ("GET", "/api/v1/skill/{id}/resource"): RouteInput({"path": _str(min_length=1)}, required=("path",),
                                                       summary="A skill's resource file"),
    ("POST", "/api/v1/skill/{id}/export"): RouteInput(body=_obj({"target_folder": _str(min_length=1)}),
                                                      summary="Export a skill to a folder (admin)"),
    ("POST", "/api/v1/skill/{id}/promote"): RouteInput(
        body=_obj({"name": _str(min_length=1), "description": _str(), "parameters_schema": {"type": "object"}}),
        summary="A reflection ({id}) promoted to a skill"),
    ("POST", "/api/v1/skill/{id}/compose"): RouteInput(body=_obj({"budget_tokens": _int(1)}),
                                                       summary="A skill with the reflections it composes with"),
})

_ERROR: Schema = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


#: What the document covers: the JSON API and the original's Prometheus endpoint (not the HTML pages, /status
#: and the /ui browser, nor the MCP endpoint).
API_PATHS = ("/api/", "/metrics")


def operations(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str, Route]]:
    """Every (METHOD, path as routed, route) of ``routes`` that belongs to the HTTP API (see API_PATHS)."""
    for route in routes:
        if isinstance(route, Route) and route.methods and route.path.startswith(API_PATHS):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route.path, route


def _operation(method: str, path: str, route: Route) -> Schema:
    spec = REQUESTS.get((method, path), RouteInput())
    params: list[Schema] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                            for name in route.param_convertors]
    params += [{"name": name, "in": "query", "required": name in spec.required, "schema": schema}
               for name, schema in spec.query.items()]
    slug = re.sub(r"\W+", "_", _PATH_PARAM.sub(r"\1", path)).strip("_")
    op: Schema = {"operationId": f"{method.lower()}_{slug}", "summary": spec.summary, "parameters": params,
                  "responses": {"2XX": {"description": "success"},
                                "4XX": {"description": "the request was refused; the body says why",
                                        "content": {"application/json": {"schema": _ERROR}}}}}
    if spec.body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": spec.body}}}
    return op


def openapi_document(routes: Iterable[BaseRoute], *, version: str) -> Schema:
    paths: dict[str, Schema] = {}
    for method, path, route in operations(routes):
        paths.setdefault(_PATH_PARAM.sub(r"{\1}", path), {})[method.lower()] = _operation(method, path, route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ai-memory", "version": version,
                 "description": "Persistent memory for AI agents, wire-compatible with ai-memory's /api/v1. "
                                "Every error is JSON {\"error\": ...} with a 4xx status (503 when the log "
                                "or a quorum cannot serve now)."},
        "components": {"schemas": {"Error": _ERROR},
                       "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
        "security": [{}, {"apiKey": []}],
        "paths": paths,
    }
