"""The MCP server: the official SDK's low-level ``Server`` with the original's tools, prompts and error rules.

The SDK owns JSON-RPC framing, ``initialize`` and protocol-version negotiation (a client asking for 2024-11-05
gets 2024-11-05; newer clients get what they ask for, up to 2026-07-28). This module owns what the original
decides:

- ``tools/list`` is the profile's tools, trimmed, with ``toolsVersion`` beside them;
- a call to a tool that is unknown or not loaded is JSON-RPC -32601 with a hint naming family and profile;
- a tool's own failure is a *successful* result with ``isError: true`` and the message as text;
- recall, list, search and session_start answer in TOON compact unless ``format`` says otherwise; everything
  else is pretty-printed JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import mcp_types as types
from mcp import MCPError
from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.lowlevel import Server

from producers.errors import ActionPendingError, FeatureUnavailableError, reply_for
from producers.identity.attestation import attested
from producers.identity.visibility import reading_as
from producers.input.jsonbody import check_json_value
from producers.llm.client import LlmClient
from producers.mcp import toon
from producers.mcp.prompts import PROMPTS, prompt_text
from producers.runtime.node import Node
from producers.tools import HANDLERS, ToolContext
from producers.tools.calls import ATTESTATION_STATE, READER_STATE, error_text
from producers.tools.capabilities import version
from producers.tools.client import ClientIdentity
from producers.tools.registry import TOOLS_VERSION, Profile, all_tools, tools_for_profile, unloaded_hint

__all__ = ["ATTESTATION_STATE", "READER_STATE", "McpApp", "error_text", "render"]

log = logging.getLogger("ai_memory.mcp")

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
_MEMORY_LISTS = ("memory_recall", "memory_list", "memory_session_start")
_REQUIRED = {t["name"]: tuple(t["inputSchema"].get("required", [])) for t in all_tools()}


def render(tool: str, args: dict[str, Any], value: Any) -> str:
    """The text a successful call answers with."""
    fmt = args.get("format", "toon_compact")
    if tool in _MEMORY_LISTS and fmt in ("toon", "toon_compact"):
        return toon.memories_to_toon(value, compact=fmt == "toon_compact")
    if tool == "memory_search" and fmt in ("toon", "toon_compact"):
        return toon.search_to_toon(value, compact=fmt == "toon_compact")
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _client_name(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """``clientInfo.name`` from the handshake, or (2026-07-28 clients, no handshake) from the request's ``_meta``."""
    try:
        params = ctx.session.client_params
        if params is not None and params.client_info.name:
            return str(params.client_info.name)
    except (AttributeError, RuntimeError):
        pass
    meta = ctx.meta or {}
    info_meta = meta.get("io.modelcontextprotocol/clientInfo") if isinstance(meta, dict) else None
    name = info_meta.get("name") if isinstance(info_meta, dict) else None
    return name if isinstance(name, str) and name else None


class McpApp:
    """One node's MCP surface. ``build()`` gives an SDK server; stdio and streamable HTTP both serve it."""

    def __init__(self, node: Node, profile: Profile, *, llm: LlmClient | None = None, serial: bool = False) -> None:
        self.node = node
        self.profile = profile
        self.llm = llm
        self.in_flight = 0
        # stdio answers one call at a time, in arrival order, as the original does: a piped "store, then recall"
        # must see the store. (Over HTTP, sessions are independent and calls run concurrently.)
        self._serial = asyncio.Lock() if serial else None

    def build(self) -> Server[Any]:
        server: Server[Any] = Server("ai-memory", version=version(), on_list_tools=self._list_tools,
                                     on_call_tool=self._call_tool, on_list_prompts=self._list_prompts,
                                     on_get_prompt=self._get_prompt)
        server.middleware.extend([self._count, self._tools_version])
        return server

    def context(self, client_name: str | None) -> ToolContext:
        return ToolContext(self.node, self.profile, ClientIdentity(client_name), self.llm)

    async def _count(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        """Requests being answered now, so stdio can let them finish when the client closes its input."""
        self.in_flight += 1
        try:
            return await call_next(ctx)
        finally:
            self.in_flight -= 1

    async def _tools_version(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        # The SDK's result model has no room for the original's top-level toolsVersion; add it on the way out.
        result = await call_next(ctx)
        if ctx.method == "tools/list" and isinstance(result, dict):
            result["toolsVersion"] = TOOLS_VERSION
        return result

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        tools = [types.Tool.model_validate(t) for t in tools_for_profile(self.profile)]
        return types.ListToolsResult(tools=tools)

    async def call(self, name: str, args: dict[str, Any], *, client_name: str | None = None) -> tuple[str, bool]:
        """Run one tool: ``(text, is_error)``. Raises :class:`MCPError` for protocol errors (-32601, -32602)."""
        if not name:
            raise MCPError(code=INVALID_PARAMS, message="missing or empty tool name")
        if not self.profile.loads(name) or name not in HANDLERS:
            raise MCPError(code=METHOD_NOT_FOUND, message=unloaded_hint(name))
        try:
            check_json_value(args)  # the HTTP body's rules: no lone surrogates, NUL or NaN; bounded nesting
            for required in _REQUIRED.get(name, ()):
                if args.get(required) is None:
                    return f"{required} is required", True
            value = await HANDLERS[name](self.context(client_name), args)
        except ActionPendingError as exc:
            # Governance held the action for approval: a successful {status: "pending", pending_id, …} result.
            return render(name, args, exc.body()), False
        except Exception as exc:
            if reply_for(exc).status >= 500 and not isinstance(exc, FeatureUnavailableError):
                log.warning("tool %s failed: %r", name, exc)
            return error_text(exc), True
        return render(name, args, value), False

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any],
                         params: types.CallToolRequestParams) -> types.CallToolResult:
        args, client = dict(params.arguments or {}), _client_name(ctx)
        # Over HTTP, the request's verified agent signature (if any) attests this call; stdio has none.
        state = getattr(getattr(ctx, "request", None), "scope", {}).get("state") or {}
        with attested(state.get(ATTESTATION_STATE)), reading_as(state.get(READER_STATE)):
            if self._serial is None:
                text, is_error = await self.call(params.name, args, client_name=client)
            else:
                async with self._serial:
                    text, is_error = await self.call(params.name, args, client_name=client)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=is_error)

    async def _list_prompts(self, ctx: ServerRequestContext[Any, Any],
                            params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[types.Prompt.model_validate(p) for p in PROMPTS])

    async def _get_prompt(self, ctx: ServerRequestContext[Any, Any],
                          params: types.GetPromptRequestParams) -> types.GetPromptResult:
        if not params.name:
            raise MCPError(code=INVALID_PARAMS, message="missing or empty prompt name")
        try:
            text = prompt_text(params.name, params.arguments)
        except Exception as exc:
            raise MCPError(code=INVALID_PARAMS, message=error_text(exc)) from None
        message = types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
        return types.GetPromptResult(messages=[message])
