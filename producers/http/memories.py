"""HTTP routes of the memory domain, with the original's paths and bodies: create (one and bulk), get, update,
delete, promote, list, search, recall, check_duplicate, forget, stats, contradictions, namespaces, gc."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.errors import ValidationError
from producers.graph.contradictions import contradictions
from producers.graph.service import link_json
from producers.http.base import V1, ApiContext, JSONBody, body_items, read_json, written
from producers.http.params import query_flag
from producers.input.commands import parse_create, parse_list_query, parse_recall, parse_update
from producers.input.validation import MAX_BULK, check_namespace, check_tier
from producers.memory.taxonomy import as_agent_param, visible_namespace_counts, visible_stats
from producers.memory.wire import duplicate_body, recall_body
from schemas import now_ts

__all__ = ["MemoryRoutes", "routes"]


def _params(body: Any) -> dict[str, Any]:
    # These routes read a non-object body as no parameters (the original's serde defaults), not as an error.
    return body if isinstance(body, dict) else {}


class MemoryRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.node = api.node
        self.service = api.service

    # -- writes -----------------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        body = await read_json(request)
        cmd = parse_create(body, now=now_ts())
        result = await self.service.store(cmd, agent_id=self.api.agent(request, body), metered=True)
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
        ids, errors, write = await self.service.bulk_store(parsed, agent_id=self.api.agent(request))
        for error in errors:
            item = items[error["index"]]
            error["title"] = item.get("title") if isinstance(item, dict) else None
        return JSONBody(written({"created": len(ids), "ids": ids, "errors": errors}, write))

    async def update(self, request: Request) -> Response:
        body = await read_json(request)
        agent = self.api.agent(request)
        memory, write = await self.service.update(request.path_params["id"], parse_update(body or {}),
                                                  agent_id=agent, gate=self.api.memory_gate(request, agent))
        return JSONBody(written(memory.to_api(), write))

    async def delete(self, request: Request) -> Response:
        agent = self.api.agent(request)
        # An inbox message's recipient may delete it, as its owner.
        write = await self.service.delete(request.path_params["id"], agent_id=agent,
                                          gate=self.api.memory_gate(request, agent, inbox=True))
        return JSONBody(written({"deleted": True}, write))

    async def promote(self, request: Request) -> Response:
        agent = self.api.agent(request)
        memory, write = await self.service.promote(request.path_params["id"], agent_id=agent,
                                                   gate=self.api.memory_gate(request, agent))
        return JSONBody(written({"id": memory.id, "promoted": True, "tier": memory.tier}, write))

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
                                                   agent_id=self.api.agent(request))
        return JSONBody(written({"deleted": deleted}, write))

    async def gc(self, request: Request) -> Response:
        deleted, write = await self.service.gc(agent_id=self.api.agent(request))
        return JSONBody(written({"expired_deleted": deleted}, write))

    # -- reads ------------------------------------------------------------------------------------------

    async def get(self, request: Request) -> Response:
        as_agent = as_agent_param(request.query_params)
        memory = await self.service.get(request.path_params["id"], as_agent=as_agent)
        # Both shapes at once: the original server wraps ({memory, links}); its Python client reads the
        # memory's fields at the top level.
        links = [link_json(lk) for lk in await self.node.graph.get_links(memory.id, as_agent=as_agent)]
        return JSONBody({**memory.to_api(), "memory": memory.to_api(), "links": links})

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
        params = _params(await read_json(request)) if request.method == "POST" else dict(request.query_params)
        result = await self.service.recall(parse_recall(params), agent_id=self.api.agent(request, params))
        self.node.metrics.inc("ai_memory_recall_total", mode=result.mode)
        return JSONBody(recall_body(result))

    async def check_duplicate(self, request: Request) -> Response:
        params = _params(await read_json(request))
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
            return JSONBody(await self.node.governance.get_standard(
                namespace, inherit=query_flag(request.query_params, "inherit")))
        await self.service.sync()
        # The names and counts follow the same visibility as the memories (as_agent, mandatory subtrees).
        counts = await visible_namespace_counts(self.node, as_agent_param(request.query_params))
        return JSONBody({"namespaces": [{"namespace": ns, "count": n} for ns, n in counts]})


def routes(api: ApiContext) -> list[Route]:
    m, e = MemoryRoutes(api), api.endpoint
    return [
        Route(f"{V1}/memories", e(m.list_memories), methods=["GET"]),
        Route(f"{V1}/memories", e(m.create), methods=["POST"]),
        Route(f"{V1}/memories/bulk", e(m.bulk), methods=["POST"]),
        Route(f"{V1}/memories/{{id}}", e(m.get), methods=["GET"]),
        Route(f"{V1}/memories/{{id}}", e(m.update), methods=["PUT"]),
        Route(f"{V1}/memories/{{id}}", e(m.delete), methods=["DELETE"]),
        Route(f"{V1}/memories/{{id}}/promote", e(m.promote), methods=["POST"]),
        Route(f"{V1}/search", e(m.search), methods=["GET"]),
        Route(f"{V1}/contradictions", e(m.contradictions), methods=["GET"]),
        Route(f"{V1}/recall", e(m.recall), methods=["GET", "POST"]),
        Route(f"{V1}/check_duplicate", e(m.check_duplicate), methods=["POST"]),
        Route(f"{V1}/forget", e(m.forget), methods=["POST"]),
        Route(f"{V1}/stats", e(m.stats), methods=["GET"]),
        Route(f"{V1}/namespaces", e(m.namespaces), methods=["GET"]),
        Route(f"{V1}/gc", e(m.gc), methods=["POST"]),
    ]
