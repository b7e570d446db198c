"""Who is calling over MCP: agent-id resolution, the per-client ``on_conflict`` default, harness detection.

The rules are the original's (its ``identity/mod.rs``, ``mcp.rs`` and ``harness.rs``):

1. an explicit ``agent_id`` argument (or ``metadata.agent_id``);
2. ``AI_MEMORY_AGENT_ID``;
3. ``ai:<clientInfo.name>@<host>:pid-<pid>`` once the client has said its name;
4. ``host:<host>:pid-<pid>-<uuid8>`` (unless ``AI_MEMORY_ANONYMIZE`` is truthy);
5. ``anonymous:pid-<pid>-<uuid8>``.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import uuid
from dataclasses import dataclass

from producers.errors import ValidationError
from producers.input.validation import check_agent_id

__all__ = ["ClientIdentity", "default_on_conflict", "supports_deferred_registration"]

ENV_AGENT_ID = "AI_MEMORY_AGENT_ID"
ENV_ANONYMIZE = "AI_MEMORY_ANONYMIZE"
# Clients known to handle a CONFLICT answer from memory_store; everyone else keeps the legacy silent merge.
_V2_CLIENT_PREFIXES = ("ai:claude-code", "ai:ai-memory-cli/v2")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def _sanitize(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-")


@functools.cache
def _discriminator() -> str:
    """Stable for the life of the process, so one MCP server is one agent unless told otherwise."""
    return f"pid-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _host() -> str:
    return _sanitize(socket.gethostname().strip())


def _anonymize() -> bool:
    return os.environ.get(ENV_ANONYMIZE, "").strip().lower() in ("1", "true", "yes", "on")


def default_on_conflict(client_name: str | None) -> str:
    """``error`` for clients that understand a CONFLICT reply, ``merge`` (the legacy upsert) for the rest.

    The original matches ``ai:``-prefixed names; a bare ``clientInfo.name`` such as ``claude-code`` is
    matched in its ``ai:`` form too, since that is the identity the client gets (rule 3 above).
    """
    if not client_name:
        return "merge"
    head = client_name.split("@", 1)[0].lower()
    candidates = (head,) if head.startswith("ai:") else (head, f"ai:{head}")
    return "error" if any(c.startswith(p) for c in candidates for p in _V2_CLIENT_PREFIXES) else "merge"


def supports_deferred_registration(client_name: str) -> bool:
    """Only Claude Code registers tools after start-up (the original's harness table)."""
    normalised = "".join(c for c in client_name if c not in "-_ .").lower()
    return "claudecode" in normalised


@dataclass(frozen=True)
class ClientIdentity:
    """The calling client as the MCP session knows it (``clientInfo.name``; ``None`` before it is known)."""

    client_name: str | None = None

    def agent_id(self, explicit: object = None) -> str:
        if explicit is not None and explicit != "":
            if not isinstance(explicit, str):
                raise ValidationError("agent_id must be a string")
            return check_agent_id(explicit)
        env = os.environ.get(ENV_AGENT_ID)
        if env:
            return check_agent_id(env)
        for candidate in self._synthesised():
            try:
                return check_agent_id(candidate)
            except ValidationError:
                continue
        return f"anonymous:{_discriminator()}"

    def _synthesised(self) -> list[str]:
        out = []
        if self.client_name:
            out.append(f"ai:{_sanitize(self.client_name)}@{_host() or 'unknown'}:pid-{os.getpid()}")
        if not _anonymize() and _host():
            out.append(f"host:{_host()}:{_discriminator()}")
        return out

    @property
    def on_conflict(self) -> str:
        return default_on_conflict(self.client_name)

    @property
    def deferred_registration(self) -> bool | None:
        return None if self.client_name is None else supports_deferred_registration(self.client_name)
