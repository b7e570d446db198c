"""The command side: validation, the command service, and the HTTP and CLI surfaces over it."""

from __future__ import annotations

from producers.errors import (
    AuthError,
    CommandError,
    ConflictError,
    NotFoundError,
    UnavailableError,
    ValidationError,
    reply_for,
)
from producers.memory.service import MemoryService, ServiceConfig
from producers.runtime.node import Node, NodeConfig

__all__ = [
    "AuthError",
    "CommandError",
    "ConflictError",
    "MemoryService",
    "Node",
    "NodeConfig",
    "NotFoundError",
    "ServiceConfig",
    "UnavailableError",
    "ValidationError",
    "reply_for",
]
