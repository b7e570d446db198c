"""``ai-memory serve``: the node, its projector in the background, the webhook sender, the HTTP API, and the GC
timer."""

from __future__ import annotations

import asyncio
import logging
import os

import uvicorn

from infra.log import redact_url
from infra.tasks import stop_task
from producers.http import create_app
from producers.mcp import McpHttpEndpoint, Profile
from producers.mcp.transport import open_llm
from producers.node import Node, NodeConfig

__all__ = ["serve"]

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


async def serve(config: NodeConfig, *, host: str, port: int, api_key: str | None = None,
                gc_interval: float = 1800.0, profile: Profile | None = None,
                archive_max_days: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_key = api_key or os.environ.get("AI_MEMORY_API_KEY") or None
    node = await Node.open(config)
    try:
        await node.start()
        await node.webhooks.start()
        gc_task = asyncio.create_task(_gc_forever(node, gc_interval, archive_max_days=archive_max_days), name="gc")
        sweep_task = asyncio.create_task(
            _sweep_pending_forever(node, config.governance.sweep_interval_secs), name="pending-sweeper")
        mcp = McpHttpEndpoint(node, profile or Profile(), host=host, llm=open_llm())
        app = create_app(node, api_key=api_key, mcp=mcp)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                               access_log=False))
        log.info("ai-memory node %s serving http://%s:%d/api/v1 and MCP at /mcp (log %s, api key %s, governance %s)",
                 node.key.key_id, host, port, redact_url(node.log.url), "required" if api_key else "off",
                 config.governance.mode)
        async with mcp.running():
            await server.serve()
        await stop_task(gc_task)
        await stop_task(sweep_task)
    finally:
        await node.webhooks.stop()  # the sender and its runner (stop_task inside), before the node closes
        await node.close()
