"""HTTP routes that move memories between nodes and files, with the original's paths and bodies:
``GET /api/v1/sync/since``, ``POST /api/v1/sync/push``, ``GET /api/v1/export``, ``POST /api/v1/import``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.errors import ValidationError
from producers.http.base import V1, ApiContext, JSONBody, body_items, read_json, written
from producers.input.validation import MAX_BULK
from producers.memory.export import export_document
from producers.memory.taxonomy import as_agent_param
from producers.memory.wire import memory_from_import
from producers.sync.service import Peers, parse_clock, push, since_clock, since_time
from schemas import Memory

__all__ = ["SyncRoutes", "routes"]


class SyncRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.node = api.node
        self.service = api.service

    async def sync_since(self, request: Request) -> Response:
        params = request.query_params
        reader = self.node.identity.visibility.reader(as_agent_param(params))
        if (clock := params.get("clock")) is not None:
            return JSONBody(await since_clock(self.service, parse_clock(clock), params.get("limit"), reader=reader))
        return JSONBody(await since_time(self.service, params.get("since"), params.get("limit"), reader=reader))

    async def sync_push(self, request: Request) -> Response:
        body = await read_json(request)
        peers = Peers(lifecycle=self.node.lifecycle, graph=self.node.graph, governance=self.node.governance)
        return JSONBody(await push(self.service, body, agent_id=self.api.agent(request),
                                   node_clock=self.service.runner.position, peers=peers))

    async def export(self, request: Request) -> Response:
        return JSONBody(await export_document(self.node, as_agent_param(request.query_params)))

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
        write = await self.service.import_memories(good, agent_id=self.api.agent(request))
        return JSONBody(written({"imported": len(good), "errors": errors + refused}, write))


def routes(api: ApiContext) -> list[Route]:
    s, e = SyncRoutes(api), api.endpoint
    return [
        Route(f"{V1}/export", e(s.export), methods=["GET"]),
        Route(f"{V1}/import", e(s.import_), methods=["POST"]),
        Route(f"{V1}/sync/since", e(s.sync_since), methods=["GET"]),
        Route(f"{V1}/sync/push", e(s.sync_push), methods=["POST"]),
    ]
