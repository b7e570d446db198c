"""Who is calling: agent-id resolution per transport, as in the original."""

from __future__ import annotations

import os
import socket
import uuid

from producers.errors import ValidationError
from producers.validation import check_agent_id

__all__ = ["resolve_cli_agent", "resolve_http_agent"]


def resolve_http_agent(body_agent: object, header_agent: str | None) -> str:
    """Body ``agent_id``, then the ``X-Agent-Id`` header, then ``anonymous:req-<8 hex>``."""
    for candidate in (body_agent, header_agent):
        if isinstance(candidate, str) and candidate:
            try:
                return check_agent_id(candidate)
            except ValidationError as exc:
                raise ValidationError(f"invalid agent_id: {exc}") from None
        if candidate is not None and not isinstance(candidate, str):
            raise ValidationError("invalid agent_id: agent_id must be a string")
    return f"anonymous:req-{uuid.uuid4().hex[:8]}"


def resolve_cli_agent(flag: str | None) -> str:
    """``--agent-id``, then ``AI_MEMORY_AGENT_ID``, then ``host:<host>:pid-<pid>-<8 hex>``."""
    for candidate in (flag, os.environ.get("AI_MEMORY_AGENT_ID")):
        if candidate:
            return check_agent_id(candidate)
    return f"host:{socket.gethostname()}:pid-{os.getpid()}-{uuid.uuid4().hex[:8]}"
