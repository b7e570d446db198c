"""What every tool handler gets (:class:`ToolContext`), how arguments are read, and the shared handler types.

A handler is ``async (ctx, args) -> JSON value``. It parses with the same ``parse_*`` functions as the HTTP API,
calls :class:`~producers.memory.service.MemoryService`, and shapes the original's JSON. It raises on failure; the server
turns the error into an ``isError`` result at one place (``producers.mcp.server``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from producers.errors import FeatureUnavailableError, ValidationError
from producers.input.commands import MAX_INT64, parse_list_query

if TYPE_CHECKING:
    from producers.llm.client import LlmClient
    from producers.memory.service import MemoryService
    from producers.runtime.node import Node
    from producers.tools.client import ClientIdentity
    from producers.tools.registry import Profile
    from schemas import Memory

__all__ = ["Handler", "ToolContext", "all_in", "opt_bool", "opt_int", "opt_str", "req_str", "unavailable"]


@dataclass(frozen=True)
class ToolContext:
    node: Node
    profile: Profile
    identity: ClientIdentity
    llm: LlmClient | None = None

    @property
    def service(self) -> MemoryService:
        return self.node.service

    def agent_id(self, args: dict[str, Any]) -> str:
        return self.claim(args.get("agent_id"))

    def claim(self, explicit: object) -> str:
        """The calling agent (the original's resolution order). A keyed agent is only claimed by a call its
        signature attests (MCP over HTTP with the signed-request headers; never stdio)."""
        agent = self.identity.agent_id(explicit)
        self.node.identity.verifier.require(agent)
        return agent


_PAGE = 200

Handler = Callable[[ToolContext, dict[str, Any]], Awaitable[Any]]


def req_str(args: dict[str, Any], name: str) -> str:
    """A required string argument; the original's message when it is absent or not a string."""
    value = args.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} is required")
    return value


def opt_str(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    return value


def opt_int(args: dict[str, Any], name: str, default: int) -> int:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or int(value) != value:
        raise ValidationError(f"{name} must be an integer")
    if not -MAX_INT64 <= value <= MAX_INT64:
        raise ValidationError(f"{name} must be between -{MAX_INT64} and {MAX_INT64}")
    return int(value)


def opt_bool(args: dict[str, Any], name: str, *, default: bool = False) -> bool:
    value = args.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be a boolean")
    return value


def unavailable(what: str) -> Handler:
    """A handler for a tool whose feature this node does not have yet; ``what`` names the missing piece."""

    async def handler(ctx: ToolContext, args: dict[str, Any]) -> Any:
        raise FeatureUnavailableError(what)

    return handler


async def all_in(ctx: ToolContext, namespace: str) -> list[Memory]:
    """Every live memory in one namespace, highest priority first (agents, an inbox: small by nature)."""
    out: list[Memory] = []
    offset = 0
    while True:
        page = await ctx.service.list_memories(parse_list_query({"namespace": namespace, "limit": _PAGE,
                                                                 "offset": offset}))
        out.extend(page)
        if len(page) < _PAGE:
            return out
        offset += _PAGE
