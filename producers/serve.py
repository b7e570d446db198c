"""``ai-memory serve``: the node, its projector in the background, the HTTP API, and the GC timer."""

from __future__ import annotations

import asyncio
import logging
import os

import uvicorn
from starlette.types import ASGIApp

from infra.log import redact_url
from infra.tasks import stop_task
from producers.http import create_app
from producers.http.mtls import HttpTls, uvicorn_tls_options
from producers.mcp import McpHttpEndpoint, Profile
from producers.mcp.transport import open_llm
from producers.node import Node, NodeConfig

__all__ = ["http_server", "serve"]

log = logging.getLogger("ai_memory.serve")


async def _gc_forever(node: Node, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            removed, _ = await node.service.gc()
            if removed:
                log.info("gc removed %d expired memories", removed)
        except Exception:
            log.exception("gc failed; retrying at the next interval")


def http_server(app: ASGIApp, *, host: str, port: int, tls: HttpTls | None = None) -> uvicorn.Server:
    """The uvicorn server for the API: plain HTTP, HTTPS, or HTTPS with the client-certificate allowlist."""
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                         access_log=False, **uvicorn_tls_options(tls)))


async def serve(config: NodeConfig, *, host: str, port: int, api_key: str | None = None,
                gc_interval: float = 1800.0, profile: Profile | None = None, tls: HttpTls | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_key = api_key or os.environ.get("AI_MEMORY_API_KEY") or None
    node = await Node.open(config)
    try:
        await node.start()
        gc_task = asyncio.create_task(_gc_forever(node, gc_interval), name="gc")
        mcp = McpHttpEndpoint(node, profile or Profile(), host=host, llm=open_llm())
        app = create_app(node, api_key=api_key, mcp=mcp)
        server = http_server(app, host=host, port=port, tls=tls)
        mtls = "off" if tls is None or tls.allowlist is None else f"{len(tls.allowlist)} allowed certificates"
        log.info("ai-memory node %s serving %s://%s:%d/api/v1 and MCP at /mcp (log %s, api key %s, mTLS %s)",
                 node.key.key_id, "https" if tls else "http", host, port, redact_url(node.log.url),
                 "required" if api_key else "off", mtls)
        async with mcp.running():
            await server.serve()
        await stop_task(gc_task)
    finally:
        await node.close()
