"""The MCP surface: the original ai-memory's 51 tools, profiles, capabilities, TOON and prompts, over stdio
(``ai-memory mcp``) and streamable HTTP (``/mcp`` in ``ai-memory serve``). Every tool runs through
:class:`~producers.memory.service.MemoryService` and the same ``parse_*`` functions as the HTTP API.

    server = McpApp(node, Profile.parse("full")).build()   # an mcp SDK low-level Server
    async with mcp.Client(server) as client:               # in-process, e.g. in tests
        await client.call_tool("memory_store", {"title": "t", "content": "c"})
"""

from __future__ import annotations

from producers.mcp.server import McpApp
from producers.mcp.transport import McpHttpEndpoint, run_stdio
from producers.tools.registry import TOOLS_VERSION, Profile, ProfileError

__all__ = ["TOOLS_VERSION", "McpApp", "McpHttpEndpoint", "Profile", "ProfileError", "run_stdio"]
