"""The two ways to reach the MCP server: stdio (``ai-memory mcp``) and streamable HTTP (``/mcp`` in ``serve``).

Both serve the same :class:`~producers.mcp.server.McpApp` over one :class:`~producers.runtime.node.Node`, so an MCP
process and an HTTP server pointed at the same data dir (or log) see one memory.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from infra.log import redact_url
from producers.llm.client import LlmClient, open_llm
from producers.mcp.server import McpApp
from producers.runtime.node import Node, NodeConfig
from producers.tools.registry import Profile

__all__ = ["McpHttpEndpoint", "run_stdio"]

log = logging.getLogger("ai_memory.mcp")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_IDLE_TICK = 0.02


async def _until_idle(app: McpApp, pending: MemoryObjectReceiveStream[Any]) -> None:
    """Return once nothing is queued or being answered, twice in a row a tick apart."""
    quiet = 0
    while quiet < 2:
        await anyio.sleep(_IDLE_TICK)
        busy = app.in_flight or pending.statistics().current_buffer_used
        quiet = 0 if busy else quiet + 1


async def _serve_draining(app: McpApp, read: MemoryObjectReceiveStream[Any],
                          write: MemoryObjectSendStream[Any]) -> None:
    """Serve until stdin ends, then let the requests already read finish before the SDK sees end-of-input.

    The SDK cancels in-flight handlers at end-of-input; the original answers every line it has read, which
    scripts that pipe a batch of requests into ``ai-memory mcp`` rely on.
    """
    server = app.build()
    forward, pending = anyio.create_memory_object_stream[Any](max_buffer_size=1024)

    async def pump() -> None:
        async with forward:
            async for item in read:
                await forward.send(item)
            await _until_idle(app, pending)

    async with anyio.create_task_group() as tg:
        tg.start_soon(pump)
        await server.run(pending, write, server.create_initialization_options())


async def run_stdio(config: NodeConfig, profile: Profile) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin. Logs go to stderr: stdout is the protocol."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node = await Node.open(config)
    llm = open_llm()
    try:
        await node.start()
        app = McpApp(node, profile, llm=llm, serial=True)
        log.info("ai-memory MCP server started (stdio, node %s, log %s, profile %s: %d tools)", node.key.key_id,
                 redact_url(node.log.url), profile.label, len(profile.tool_names()))
        async with stdio_server() as (read, write):
            await _serve_draining(app, read, write)
    finally:
        if llm is not None:
            await llm.aclose()
        await node.close()
        log.info("ai-memory MCP server stopped")


class McpHttpEndpoint:
    """Streamable HTTP for one node: an ASGI app to mount at ``/mcp``, and the session manager's lifetime.

    Bound to a loopback host, DNS-rebinding protection is on (only loopback Host and Origin headers pass).
    """

    def __init__(self, node: Node, profile: Profile, *, host: str = "127.0.0.1", llm: LlmClient | None = None):
        self.profile = profile
        self.app = McpApp(node, profile, llm=llm)
        security = None
        if host in _LOOPBACK:
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True, allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
        self.manager = StreamableHTTPSessionManager(app=self.app.build(), security_settings=security)
        self.asgi: Any = StreamableHTTPASGIApp(self.manager)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield
