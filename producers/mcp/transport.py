"""The two ways to reach the MCP server: stdio (``ai-memory mcp``) and streamable HTTP (``/mcp`` in ``serve``).

Both serve the same :class:`~producers.mcp.server.McpApp` over one :class:`~producers.node.Node`, so an MCP
process and an HTTP server pointed at the same data dir (or log) see one memory.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from infra.log import redact_url
from producers.mcp.llm import LlmClient, LlmConfig
from producers.mcp.registry import Profile
from producers.mcp.server import McpApp
from producers.node import Node, NodeConfig

__all__ = ["McpHttpEndpoint", "open_llm", "run_stdio"]

log = logging.getLogger("ai_memory.mcp")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def open_llm() -> LlmClient | None:
    config = LlmConfig.from_env()
    return LlmClient(config) if config is not None else None


async def run_stdio(config: NodeConfig, profile: Profile) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin. Logs go to stderr: stdout is the protocol."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node = await Node.open(config)
    llm = open_llm()
    try:
        await node.start()
        server = McpApp(node, profile, llm=llm).build()
        log.info("ai-memory MCP server started (stdio, node %s, log %s, profile %s: %d tools)", node.key.key_id,
                 redact_url(node.log.url), profile.label, len(profile.tool_names()))
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
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
