"""Attested agent identity over MCP: ``memory_agent_register`` also registers the agent's Ed25519 key when
given ``public_key``, ``timestamp`` and ``proof`` (see :func:`schemas.request_signing.sign_registration`).

The original's tool and answer are unchanged otherwise; the answer gains ``key`` when a key was registered.
"""

from __future__ import annotations

from typing import Any

from producers.errors import ValidationError
from producers.tools.base import Handler, ToolContext, opt_str, req_str

__all__ = ["KEY_ARGS", "with_key_registration"]

KEY_ARGS = ("public_key", "timestamp", "proof")


def with_key_registration(register: Handler) -> Handler:
    """``register`` (the agent registry's handler), then the key registration when the call carries one."""

    async def handler(ctx: ToolContext, args: dict[str, Any]) -> Any:
        public_key = opt_str(args, "public_key")
        if public_key is not None:  # refused before the registry entry is written, not half-way
            # MCP carries no operator credential: a first key is enrolled here only where enrollment is open.
            ctx.node.identity.authorise_enrollment(req_str(args, "agent_id"), operator=False)
        result = await register(ctx, {k: v for k, v in args.items() if k not in KEY_ARGS})
        if public_key is None:
            return result
        timestamp = args.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise ValidationError("timestamp is required with public_key (unix seconds, as signed in the proof)")
        agent_id = req_str(args, "agent_id")
        key, _ = await ctx.node.identity.register_key(agent_id, public_key, timestamp, req_str(args, "proof"),
                                                      actor=agent_id, operator=False)
        return {**result, "key": key.to_api()} if isinstance(result, dict) else result

    return handler
