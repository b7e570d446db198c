"""``ai-memory serve``: the node, its projector in the background, the webhook sender, the HTTP API, and the GC
timer."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from infra.log import redact_url
from infra.tasks import stop_task
from producers.errors import UnavailableError
from producers.http import create_app
from producers.llm.client import open_llm
from producers.mcp import McpHttpEndpoint
from producers.memory.vector_catchup import catch_up_vectors_forever
from producers.runtime.bind_guard import check_bind
from producers.runtime.gc_tuning import tune_for_serving
from producers.runtime.http_writes import CoalescingHttpToolsProtocol
from producers.runtime.mtls import HttpTls, uvicorn_tls_options
from producers.runtime.node import Node, NodeConfig
from producers.runtime.running import registered
from producers.tools.registry import Profile

__all__ = ["http_server", "serve"]

log = logging.getLogger("ai_memory.serve")


async def _gc_forever(node: Node, interval: float, *, archive_max_days: int | None = None) -> None:
    """Every ``interval`` seconds: GC (expired memories go to the archive), then, with ``archive_max_days``,
    purge what was archived longer ago than that (the original's ``auto_purge_archive``)."""
    while True:
        await asyncio.sleep(interval)
        try:
            removed, _ = await node.service.gc()
            if removed:
                log.info("gc removed %d expired memories", removed)
            if archive_max_days is not None and archive_max_days > 0:
                purged, _ = await node.lifecycle.purge(older_than_days=archive_max_days, agent_id="system:gc")
                if purged:
                    log.info("gc purged %d archived memories older than %d days", purged, archive_max_days)
        except Exception:
            log.exception("gc failed; retrying at the next interval")


async def _sweep_pending_forever(node: Node, interval: float) -> None:
    """The original's pending-action timeout sweeper: expiry events for requests whose time ran out."""
    while True:
        await asyncio.sleep(interval)
        try:
            await node.governance.expire_due()
        except Exception:
            log.exception("pending-action sweep failed; retrying at the next interval")


def _embedder_line(node: Node) -> str:
    """What the start-up log says about embeddings: the model, where it runs, and whether /v1/embeddings serves."""
    e = node.semantic.status()
    if e.model is None:
        return f"off ({e.reason})"
    if e.device == "remote":
        return f"{e.model} ({e.dim} dimensions) from {(e.service or {}).get('url')}; POST /v1/embeddings not served"
    return f"{e.model} ({e.dim} dimensions) on the {(e.device or 'cpu').upper()}; POST /v1/embeddings served"


def check_port_free(host: str, port: int) -> None:
    """Refuse to start, in one line, when the port is taken (uvicorn would say so only after the node opened,
    among a page of tracebacks)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UnavailableError(f"cannot serve on {host}:{port}: {exc.strerror}; pass --host") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UnavailableError(f"cannot serve on {host}:{port}: {exc.strerror} (another ai-memory serve?); "
                                   "stop it or pass --port") from exc


def http_server(app: ASGIApp, *, host: str, port: int, tls: HttpTls | None = None) -> uvicorn.Server:
    """The uvicorn server for the API: plain HTTP, HTTPS, or HTTPS with the client-certificate allowlist."""
    options: dict[str, Any] = {"http": CoalescingHttpToolsProtocol, **uvicorn_tls_options(tls)}
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                         access_log=False, **options))


async def serve(config: NodeConfig, *, host: str, port: int, api_key: str | None = None,
                gc_interval: float = 1800.0, profile: Profile | None = None,
                archive_max_days: int | None = None, tls: HttpTls | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_key = api_key or os.environ.get("AI_MEMORY_API_KEY") or None
    if warning := check_bind(host, api_key=api_key is not None,
                             client_certificates=tls is not None and tls.allowlist is not None):
        log.warning("%s", warning)
    check_port_free(host, port)
    node = await Node.open(config)
    try:
        await node.start()
        await node.webhooks.start()
        gc_task = asyncio.create_task(_gc_forever(node, gc_interval, archive_max_days=archive_max_days), name="gc")
        sweep_task = asyncio.create_task(
            _sweep_pending_forever(node, config.governance.sweep_interval_secs), name="pending-sweeper")
        catch_up_task = asyncio.create_task(
            catch_up_vectors_forever(node, config.embedding.catch_up_secs), name="vector-catch-up")
        mcp = McpHttpEndpoint(node, profile or Profile(), host=host, llm=open_llm())
        app = create_app(node, api_key=api_key, mcp=mcp)
        server = http_server(app, host=host, port=port, tls=tls)
        mtls = "off" if tls is None or tls.allowlist is None else f"{len(tls.allowlist)} allowed certificates"
        log.info("ai-memory node %s serving %s://%s:%d/api/v1 and MCP at /mcp (log %s, api key %s, mTLS %s, "
                 "governance %s)", node.key.key_id, "https" if tls else "http", host, port,
                 redact_url(node.log.url), "required" if api_key else "off", mtls, config.governance.mode)
        log.info("embeddings: %s", _embedder_line(node))
        url = f"{'https' if tls else 'http'}://{host}:{port}"
        tune_for_serving()  # the node and the app are built: their objects are never scanned again
        with registered(config.data_dir, url):
            async with mcp.running():
                await server.serve()
        await stop_task(gc_task)
        await stop_task(sweep_task)
        await stop_task(catch_up_task)
    finally:
        await node.webhooks.stop()  # the sender and its runner (stop_task inside), before the node closes
        await node.close()
