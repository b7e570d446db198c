"""How a node governs: the mode, pending-action timeouts, quotas, the approval HMAC secret, and this serving
session's id. Configuration is read by the producer when it decides; projectors never see it."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

from producers.governance.policy import Mode, default_mode

__all__ = ["DEFAULT_MAX_LINKS_PER_DAY", "DEFAULT_MAX_MEMORIES_PER_DAY", "DEFAULT_MAX_STORAGE_BYTES",
           "DEFAULT_PENDING_TIMEOUT_SECS", "HMAC_SECRET_ENV", "GovernanceConfig"]

#: The original's quota defaults (``src/quotas.rs``).
DEFAULT_MAX_MEMORIES_PER_DAY = 1000
DEFAULT_MAX_STORAGE_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_LINKS_PER_DAY = 5000
#: A pending action expires after 24 h (the original's ``default_timeout_seconds``).
DEFAULT_PENDING_TIMEOUT_SECS = 24 * 3600
HMAC_SECRET_ENV = "AI_MEMORY_APPROVAL_HMAC_SECRET"


def _env_limit(name: str, default: int) -> int:
    """A quota from the environment (the operator's setting for ``serve``, ``mcp`` and the CLI), else the
    original's default.

    Raises:
        ValueError: the variable is set to something other than a positive integer.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        msg = f"{name} must be a positive integer, not {raw!r}"
        raise ValueError(msg)
    return int(raw)


@dataclass(frozen=True)
class GovernanceConfig:
    mode: Mode = field(default_factory=default_mode)
    pending_timeout_secs: int = DEFAULT_PENDING_TIMEOUT_SECS
    #: How often ``serve`` looks for pending actions whose time ran out (the original's 60 s).
    sweep_interval_secs: float = 60.0
    max_memories_per_day: int = field(
        default_factory=lambda: _env_limit("AI_MEMORY_MAX_MEMORIES_PER_DAY", DEFAULT_MAX_MEMORIES_PER_DAY))
    max_storage_bytes: int = field(
        default_factory=lambda: _env_limit("AI_MEMORY_MAX_STORAGE_BYTES", DEFAULT_MAX_STORAGE_BYTES))
    max_links_per_day: int = field(
        default_factory=lambda: _env_limit("AI_MEMORY_MAX_LINKS_PER_DAY", DEFAULT_MAX_LINKS_PER_DAY))
    #: The secret of ``POST /approvals/{id}``; without one every such request is refused with 401.
    hmac_secret: str | None = field(default_factory=lambda: os.environ.get(HMAC_SECRET_ENV) or None)
    #: This process's session: ``remember: "session"`` decisions hold while it lives.
    session: str = field(default_factory=lambda: uuid.uuid4().hex)
