"""The HTTP API, wire-compatible with the original ai-memory under ``/api/v1``: the app assembled from the route
modules' tables, the middleware and the MCP mount.

Handlers live in one module per domain and are thin: parse → call the service → shape the original's JSON.
Errors are turned into a status and ``{"error": ...}`` in exactly one place (:meth:`ApiContext.endpoint`,
through ``producers.errors.reply_for``).
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.errors import CommandError, reply_for
from producers.http import (
    discovery,
    embeddings,
    governance,
    graph,
    identity,
    lifecycle,
    memories,
    status,
    subscriptions,
    sync,
    tools,
    ui,
)
from producers.http.base import MAX_BODY_BYTES, VERSION, ApiContext, JSONBody
from producers.http.boundary import BODY_TIMEOUT, HttpBoundary, http_exception
from producers.http.timeout import timeout_from_env
from producers.runtime.node import Node
from producers.tools.calls import ATTESTATION_STATE, READER_STATE

if TYPE_CHECKING:
    from producers.mcp import McpHttpEndpoint

__all__ = ["MAX_BODY_BYTES", "VERSION", "create_app"]

log = logging.getLogger("ai_memory.http")

#: The route modules, one per domain, each a ``<Domain>Routes`` class and a ``routes(api) -> list[Route]`` table.
#: Starlette tries routes in this order; it matters only where two routes share a path (the first route whose
#: path matches, whatever its methods, names the ``Allow`` of a 405): memories' ``GET /namespaces`` stays before
#: governance's ``POST``/``DELETE``.
DOMAIN_ROUTES: tuple[ModuleType, ...] = (status, discovery, memories, sync, subscriptions, lifecycle, governance,
                                         graph, identity, ui, embeddings, tools)


class _Guarded:
    """The MCP endpoint behind the same API key as the HTTP API (an ASGI app, so Starlette mounts it as is)."""

    def __init__(self, api: ApiContext, app: ASGIApp) -> None:
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
    api = ApiContext(node, api_key=api_key, profile=mcp.profile if mcp is not None else None)
    routes = [route for module in DOMAIN_ROUTES for route in module.routes(api)]
    if mcp is not None:
        routes.append(Route("/mcp", _Guarded(api, mcp.asgi)))
    # One middleware: the body deadline, the original's 504 after 60 s (H7), and whatever a route lets escape.
    return Starlette(routes=routes, middleware=[
        Middleware(HttpBoundary, body_timeout=body_timeout, request_timeout=timeout_from_env()),
    ], exception_handlers={HTTPException: http_exception})
