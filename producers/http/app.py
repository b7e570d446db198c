"""The HTTP API, wire-compatible with the original ai-memory under ``/api/v1``.

Handlers are thin: parse → call the service → shape the original's JSON. Errors are turned into a status and
``{"error": ...}`` in exactly one place (:func:`_endpoint`, through ``producers.errors.reply_for``).
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.errors import CommandError, ValidationError, reply_for
from producers.graph.contradictions import contradictions
from producers.graph.service import link_json
from producers.http import embeddings, governance, lifecycle, status, subscriptions, ui
from producers.http import graph as graph_routes
from producers.http import identity as identity_routes
from producers.http import tools as tool_routes
from producers.http.base import MAX_BODY_BYTES, ApiContext, JSONBody, body_items, read_json, written
from producers.http.boundary import BODY_TIMEOUT, HttpBoundary, http_exception
from producers.http.openapi import openapi_document
from producers.http.timeout import RequestTimeout, timeout_from_env
from producers.input.commands import parse_create, parse_list_query, parse_recall, parse_update
from producers.input.validation import MAX_BULK, check_namespace, check_tier
from producers.memory.export import export_document
from producers.memory.taxonomy import as_agent_param, visible_namespace_counts, visible_stats
from producers.memory.wire import duplicate_body, embedder_status, memory_from_import, recall_body
from producers.runtime.metrics import render
from producers.runtime.node import Node
from producers.sync.service import Peers, parse_clock, push, since_clock, since_time
from producers.tools.calls import ATTESTATION_STATE, READER_STATE
from producers.tools.capabilities import document, parse_accept
from schemas import Memory, now_ts

if TYPE_CHECKING:
    from producers.mcp import McpHttpEndpoint

__all__ = ["MAX_BODY_BYTES", "VERSION", "create_app"]

log = logging.getLogger("ai_memory.http")

VERSION = "0.1.0"
#: Route modules of the other domains, each exporting ``routes(api: ApiContext) -> list[Route]``.
_DOMAIN_ROUTES: tuple[ModuleType, ...] = (status, subscriptions, lifecycle, governance, graph_routes, identity_routes,
                                          ui, embeddings, tool_routes)


class Api(ApiContext):
    """The memory routes of the original's API; other domains' routes live in their own modules."""

    # -- routes ---------------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        quorum = self.node.config.quorum
        return JSONBody({"status": "ok", "service": "ai-memory", "version": VERSION, **embedder_status(self.node),
                         "federation_enabled": quorum.needed > 1, "node_id": self.node.key.key_id,
                         "clock": self.service.runner.position,
                         "cluster": {"quorum_writes": quorum.needed, "cluster_size": quorum.nodes,
                                     "peers": self.node.quorum.peers,
                                     "last_confirmation": self.node.confirmer.last_sent}})

    async def openapi(self, request: Request) -> Response:
        return JSONBody(openapi_document(request.app.routes, version=VERSION))

    async def capabilities(self, request: Request) -> Response:
        accept = parse_accept(request.headers.get("accept-capabilities"))
        return JSONBody(await document(self.node, self.profile, accept=accept))

    async def metrics(self, request: Request) -> Response:
        samples = self.node.metrics.samples()
        stats = self.service.queries.stats(now_ts(), now_ts())
        samples["ai_memory_memories"] = {(): stats.total}
        samples["ai_memory_rejected_events"] = {(): self.node.model.rejected_count()}
        samples["ai_memory_log_chain_breaks"] = {(): self.node.runner.chain.status(limit=0)["breaks"]}
        samples["ai_memory_log_end_offset"] = {(("partition", p),): o for p, o in
                                               (await self.node.log.end_offsets()).items()}
        samples["ai_memory_projector_offset"] = {(("partition", p),): o for p, o in
                                                 self.node.runner.position.items()}
        samples.update(await self.node.webhooks.samples())
        return PlainTextResponse(render(samples), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def create(self, request: Request) -> Response:
        body = await read_json(request)
        cmd = parse_create(body, now=now_ts())
        result = await self.service.store(cmd, agent_id=self.agent(request, body), metered=True)
        self.node.metrics.inc("ai_memory_store_total", tier=cmd.tier)
        out: dict[str, Any] = {"id": result.memory.id, "tier": result.requested_tier,
                               "namespace": result.memory.namespace, "title": result.memory.title,
                               "agent_id": result.agent_id}
        if result.potential_contradictions:
            out["potential_contradictions"] = result.potential_contradictions
        return JSONBody(written(out, result.write), status_code=201)

    async def bulk(self, request: Request) -> Response:
        items = body_items(await read_json(request), shape="bulk body must be a JSON array of memories",
                       limit=f"bulk operations limited to {MAX_BULK} items")
        now = now_ts()
        parsed: list[Any] = []
        for item in items:
            try:
                parsed.append(parse_create(item, now=now))
            except ValidationError as exc:
                title = item.get("title") if isinstance(item, dict) else None
                parsed.append(ValidationError(f"{title}: {exc}" if title else str(exc)))
        ids, errors, write = await self.service.bulk_store(parsed, agent_id=self.agent(request))
        for error in errors:
            item = items[error["index"]]
            error["title"] = item.get("title") if isinstance(item, dict) else None
        return JSONBody(written({"created": len(ids), "ids": ids, "errors": errors}, write))

    async def get(self, request: Request) -> Response:
        memory = await self.service.get(request.path_params["id"], as_agent=as_agent_param(request.query_params))
        # Both shapes at once: the original server wraps ({memory, links}); its Python client reads the
        # memory's fields at the top level.
        links = [link_json(lk) for lk in await self.node.graph.get_links(
            memory.id, as_agent=as_agent_param(request.query_params))]
        return JSONBody({**memory.to_api(), "memory": memory.to_api(), "links": links})

    async def update(self, request: Request) -> Response:
        body = await read_json(request)
        memory, write = await self.service.update(request.path_params["id"], parse_update(body or {}),
                                                  agent_id=self.agent(request))
        return JSONBody(written(memory.to_api(), write))

    async def delete(self, request: Request) -> Response:
        write = await self.service.delete(request.path_params["id"], agent_id=self.agent(request))
        return JSONBody(written({"deleted": True}, write))

    async def promote(self, request: Request) -> Response:
        memory, write = await self.service.promote(request.path_params["id"], agent_id=self.agent(request))
        return JSONBody(written({"id": memory.id, "promoted": True, "tier": memory.tier}, write))

    async def list_memories(self, request: Request) -> Response:
        # v0.7.0 clamps HTTP list/search limits at MAX_BULK_SIZE (1000), no longer 200 (MCP stays at 200).
        memories = await self.service.list_memories(parse_list_query(dict(request.query_params), max_limit=MAX_BULK))
        return JSONBody({"memories": [m.to_api() for m in memories], "count": len(memories)})

    async def search(self, request: Request) -> Response:
        params = dict(request.query_params)
        text = params.get("q")
        if text is None:
            raise ValidationError("Failed to deserialize query string: missing field `q`")
        memories = await self.service.search(text, parse_list_query(params, max_limit=MAX_BULK))
        found = [m.to_api() for m in memories]
        return JSONBody({"results": found, "memories": found, "count": len(found), "query": text})

    async def recall(self, request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            params = body if isinstance(body, dict) else {}
        else:
            params = dict(request.query_params)
        q = parse_recall(params)
        result = await self.service.recall(q, agent_id=self.agent(request, params))
        self.node.metrics.inc("ai_memory_recall_total", mode=result.mode)
        return JSONBody(recall_body(result))

    async def check_duplicate(self, request: Request) -> Response:
        body = await read_json(request)
        params = body if isinstance(body, dict) else {}
        title, content = params.get("title"), params.get("content")
        if not isinstance(title, str) or not isinstance(content, str):
            raise ValidationError("title and content are required strings")
        threshold = params.get("threshold", 0.85)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValidationError("threshold must be a number")
        namespace = check_namespace(params["namespace"]) if params.get("namespace") else None
        check = await self.service.check_duplicate(title, content, namespace=namespace, threshold=float(threshold),
                                                   as_agent=as_agent_param(params))
        return JSONBody(duplicate_body(check))

    async def forget(self, request: Request) -> Response:
        body = await read_json(request)
        params: dict[str, Any] = dict(request.query_params)
        if isinstance(body, dict):
            params.update({k: v for k, v in body.items() if v is not None})
        namespace = check_namespace(params["namespace"]) if params.get("namespace") else None
        tier = check_tier(params["tier"]) if params.get("tier") else None
        pattern = params.get("pattern") or None
        if pattern is not None and not isinstance(pattern, str):
            raise ValidationError("pattern must be a string")
        deleted, write = await self.service.forget(namespace=namespace, pattern=pattern, tier=tier,
                                                   agent_id=self.agent(request))
        return JSONBody(written({"deleted": deleted}, write))

    async def stats(self, request: Request) -> Response:
        return JSONBody(await visible_stats(self.node, as_agent_param(request.query_params)))

    async def contradictions(self, request: Request) -> Response:
        params = request.query_params
        return JSONBody(await contradictions(self.node, topic=params.get("topic") or None,
                                             namespace=params.get("namespace") or None, limit=params.get("limit"),
                                             as_agent=as_agent_param(params)))

    async def namespaces(self, request: Request) -> Response:
        if (namespace := request.query_params.get("namespace")) is not None:
            # The original's GET /namespaces?namespace=X answers with X's standard (inherit=true: the chain).
            inherit = request.query_params.get("inherit", "false").lower() == "true"
            return JSONBody(await self.node.governance.get_standard(namespace, inherit=inherit))
        await self.service.sync()
        # The names and counts follow the same visibility as the memories (as_agent, mandatory subtrees).
        counts = await visible_namespace_counts(self.node, as_agent_param(request.query_params))
        return JSONBody({"namespaces": [{"namespace": ns, "count": n} for ns, n in counts]})

    async def gc(self, request: Request) -> Response:
        deleted, write = await self.service.gc(agent_id=self.agent(request))
        return JSONBody(written({"expired_deleted": deleted}, write))

    async def export(self, request: Request) -> Response:
        return JSONBody(await export_document(self.node, as_agent_param(request.query_params)))

    async def sync_since(self, request: Request) -> Response:
        params = request.query_params
        reader = self.node.identity.visibility.reader(as_agent_param(params))
        if (clock := params.get("clock")) is not None:
            return JSONBody(await since_clock(self.service, parse_clock(clock), params.get("limit"), reader=reader))
        return JSONBody(await since_time(self.service, params.get("since"), params.get("limit"), reader=reader))

    async def sync_push(self, request: Request) -> Response:
        body = await read_json(request)
        peers = Peers(lifecycle=self.node.lifecycle, graph=self.node.graph, governance=self.node.governance)
        return JSONBody(await push(self.service, body, agent_id=self.agent(request),
                                   node_clock=self.service.runner.position, peers=peers))

    async def import_(self, request: Request) -> Response:
        items = body_items(await read_json(request), shape='import body must be {"memories": [...]}',
                       limit=f"import limited to {MAX_BULK} memories")
        good: list[Memory] = []
        errors: list[str] = []
        for item in items:
            try:
                good.append(memory_from_import(item))
            except ValidationError as exc:
                ident = item.get("id") if isinstance(item, dict) else None
                errors.append(f"{ident}: {exc}")
        good, refused = self.service.split_tombstoned(good)
        write = await self.service.import_memories(good, agent_id=self.agent(request))
        return JSONBody(written({"imported": len(good), "errors": errors + refused}, write))


class _Guarded:
    """The MCP endpoint behind the same API key as the HTTP API (an ASGI app, so Starlette mounts it as is)."""

    def __init__(self, api: Api, app: ASGIApp) -> None:
        self._api = api
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                self._api._authorize(request)
                # The same signed-request headers as the HTTP API; the verified attestation rides on the
                # request's state to the tool handler (the SDK runs it in another task: no context variable).
                state = scope.setdefault("state", {})
                state[ATTESTATION_STATE] = await self._api.attest(request)
                state[READER_STATE] = self._api.reader_id(request)
            except CommandError as exc:
                reply = reply_for(exc)
                await JSONBody(reply.body, status_code=reply.status, headers=reply.headers)(scope, receive, send)
                return
            if (body := getattr(request, "_body", None)) is not None:
                receive = _replay(body, receive)
        await self._app(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """An ASGI ``receive`` that hands the already-read body on once, then waits on the client as before."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app(node: Node, *, api_key: str | None = None, mcp: McpHttpEndpoint | None = None,
               body_timeout: float = BODY_TIMEOUT) -> Starlette:
    """The HTTP API; with ``mcp``, also MCP over streamable HTTP at ``/mcp`` (run it inside ``mcp.running()``).
    A request body must arrive within ``body_timeout`` seconds (else 408)."""
    api = Api(node, api_key=api_key, profile=mcp.profile if mcp is not None else None)
    e = api.endpoint
    v1 = "/api/v1"
    routes = [
        Route(f"{v1}/health", e(api.health), methods=["GET"]),
        Route(f"{v1}/openapi.json", e(api.openapi), methods=["GET"]),
        Route("/metrics", e(api.metrics), methods=["GET"]),
        Route(f"{v1}/metrics", e(api.metrics), methods=["GET"]),
        Route(f"{v1}/memories", e(api.list_memories), methods=["GET"]),
        Route(f"{v1}/memories", e(api.create), methods=["POST"]),
        Route(f"{v1}/memories/bulk", e(api.bulk), methods=["POST"]),
        Route(f"{v1}/memories/{{id}}", e(api.get), methods=["GET"]),
        Route(f"{v1}/memories/{{id}}", e(api.update), methods=["PUT"]),
        Route(f"{v1}/memories/{{id}}", e(api.delete), methods=["DELETE"]),
        Route(f"{v1}/memories/{{id}}/promote", e(api.promote), methods=["POST"]),
        Route(f"{v1}/search", e(api.search), methods=["GET"]),
        Route(f"{v1}/contradictions", e(api.contradictions), methods=["GET"]),
        Route(f"{v1}/recall", e(api.recall), methods=["GET", "POST"]),
        Route(f"{v1}/check_duplicate", e(api.check_duplicate), methods=["POST"]),
        Route(f"{v1}/forget", e(api.forget), methods=["POST"]),
        Route(f"{v1}/stats", e(api.stats), methods=["GET"]),
        Route(f"{v1}/namespaces", e(api.namespaces), methods=["GET"]),
        Route(f"{v1}/gc", e(api.gc), methods=["POST"]),
        Route(f"{v1}/export", e(api.export), methods=["GET"]),
        Route(f"{v1}/import", e(api.import_), methods=["POST"]),
        Route(f"{v1}/capabilities", e(api.capabilities), methods=["GET"]),
        Route(f"{v1}/sync/since", e(api.sync_since), methods=["GET"]),
        Route(f"{v1}/sync/push", e(api.sync_push), methods=["POST"]),
    ]
    for module in _DOMAIN_ROUTES:
        routes.extend(module.routes(api))
    if mcp is not None:
        routes.append(Route("/mcp", _Guarded(api, mcp.asgi)))
    # The boundary is outermost: whatever the timeout or a route lets escape is translated there.
    return Starlette(routes=routes, middleware=[
        Middleware(HttpBoundary, body_timeout=body_timeout),
        Middleware(RequestTimeout, seconds=timeout_from_env()),  # the original's 504 after 60 s (H7)
    ], exception_handlers={HTTPException: http_exception})
