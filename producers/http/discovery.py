"""HTTP routes that say what this node serves: ``GET /api/v1/openapi.json`` (built from the app's own routes) and
``GET /api/v1/capabilities`` (the original's capabilities document, negotiated by ``Accept-Capabilities``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.http.base import V1, VERSION, ApiContext, JSONBody
from producers.http.openapi import openapi_document
from producers.tools.capabilities import document, parse_accept

__all__ = ["DiscoveryRoutes", "routes"]


class DiscoveryRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api

    async def openapi(self, request: Request) -> Response:
        return JSONBody(openapi_document(request.app.routes, version=VERSION))

    async def capabilities(self, request: Request) -> Response:
        accept = parse_accept(request.headers.get("accept-capabilities"))
        return JSONBody(await document(self.api.node, self.api.profile, accept=accept))


def routes(api: ApiContext) -> list[Route]:
    d, e = DiscoveryRoutes(api), api.endpoint
    return [
        Route(f"{V1}/openapi.json", e(d.openapi), methods=["GET"]),
        Route(f"{V1}/capabilities", e(d.capabilities), methods=["GET"]),
    ]
