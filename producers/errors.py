"""Errors of the command side, and the ONE table that turns any error into an HTTP status and a CLI exit code.

    CommandError
    ├── ValidationError       400, exit 2: the input is wrong (message says what)
    ├── NotFoundError         404, exit 3
    ├── ConflictError         409, exit 4: (title, namespace) taken; carries ``existing_id``
    ├── PayloadTooLargeError  413, exit 2
    ├── RequestTimeoutError   408, exit 2: the request body did not arrive in time
    ├── AuthError             401, exit 5
    ├── ForbiddenError        403, exit 5: governance denied the action (message says why)
    │   └── NotOwnerError     403: another agent's memory changed over HTTP (body names owner and caller)
    ├── QuotaExceededError    429, exit 6: an agent's daily or storage quota is used up (``QUOTA_EXCEEDED``)
    ├── ActionPendingError    202, exit 0: not an error to the caller: the action waits for approval
    ├── UnavailableError      503 + Retry-After, exit 6: the log or projector cannot serve now (retry)
    │   └── QuorumNotMetError 503 + Retry-After: 2, exit 6: fewer than W nodes applied the write in time
    └── FeatureUnavailableError 501, exit 1: the feature is not built or not configured here (message says which)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.log import AppendConflictError, LogError, LogUnavailableError
from projectors import AmbiguousIdError, ProjectorError, WaitTimeoutError
from schemas import SchemaError

__all__ = [
    "ActionPendingError",
    "AuthError",
    "CommandError",
    "ConflictError",
    "ErrorReply",
    "FeatureUnavailableError",
    "ForbiddenError",
    "NotFoundError",
    "NotOwnerError",
    "PayloadTooLargeError",
    "QuorumNotMetError",
    "QuotaExceededError",
    "RequestTimeoutError",
    "UnavailableError",
    "ValidationError",
    "reply_for",
]


class CommandError(Exception):
    status = 500
    exit_code = 1

    def body(self) -> dict[str, Any]:
        return {"error": str(self)}

    def headers(self) -> dict[str, str]:
        return {}


class ValidationError(CommandError):
    status = 400
    exit_code = 2


class PayloadTooLargeError(CommandError):
    status = 413
    exit_code = 2


class RequestTimeoutError(CommandError):
    status = 408
    exit_code = 2

    def headers(self) -> dict[str, str]:
        return {"Connection": "close"}  # the rest of the body may still come: this connection is done


class AuthError(CommandError):
    status = 401
    exit_code = 5


class ForbiddenError(CommandError):
    status = 403
    exit_code = 5


class NotOwnerError(ForbiddenError):
    """The original v0.7.0's ownership gate (#930, #941, #954): a change to another agent's memory over HTTP.
    ``fields`` (the owner, the caller, the ids) go into the body beside ``error``, as the original's do."""

    def __init__(self, message: str, fields: dict[str, str]) -> None:
        self.fields = fields
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        return {"error": str(self), **self.fields}


class QuotaExceededError(CommandError):
    """The original's ``QUOTA_EXCEEDED: agent X hit memories_per_day (current=N, max=M)``."""

    status = 429
    exit_code = 6

    def __init__(self, *, agent_id: str, limit: str, current: int, maximum: int) -> None:
        self.agent_id = agent_id
        self.limit = limit
        self.current = current
        self.maximum = maximum
        super().__init__(f"QUOTA_EXCEEDED: agent {agent_id} hit {limit} (current={current}, max={maximum})")

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "code": "QUOTA_EXCEEDED", "agent_id": self.agent_id, "limit": self.limit,
                "current": self.current, "max": self.maximum}


class ActionPendingError(CommandError):
    """A governed action now waits for approval: HTTP answers 202 and MCP a successful
    ``{status: "pending", pending_id, …}``. Raised after the pending request was appended, so the write path
    ends in one place whatever the outcome. ``extra`` carries the write's log position."""

    status = 202
    exit_code = 0

    def __init__(self, *, pending_id: str, action: str, namespace: str, extra: dict[str, Any] | None = None) -> None:
        self.pending_id = pending_id
        self.action = action
        self.namespace = namespace
        self.extra = extra or {}
        super().__init__(f"{action} is pending approval (pending id {pending_id})")

    def body(self) -> dict[str, Any]:
        return {"status": "pending", "pending_id": self.pending_id, "reason": "governance requires approval",
                "action": self.action, "namespace": self.namespace, **self.extra}


class NotFoundError(CommandError):
    status = 404
    exit_code = 3

    def __init__(self, what: str = "not found") -> None:
        super().__init__(what)


class SourceNotFoundError(NotFoundError):
    """A graph read from a memory that does not exist, or that the reader may not see (the same answer): the
    original v0.7.0's ``GET /kg/timeline`` 404 body."""

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        super().__init__("source memory not found")

    def body(self) -> dict[str, Any]:
        return {"found": False, "source_id": self.source_id, "error": str(self)}


class ConflictError(CommandError):
    status = 409
    exit_code = 4

    def __init__(self, message: str, existing_id: str | None = None) -> None:
        self.existing_id = existing_id
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        # Always a code: a client of the original reads a 409 as a taken title unless it says otherwise.
        if self.existing_id is None:
            return {"code": "CONFLICT", "error": str(self)}
        return {"code": "CONFLICT", "error": str(self), "existing_id": self.existing_id}


class UnavailableError(CommandError):
    """Transient: the caller should retry (``Retry-After`` says when)."""

    status = 503
    exit_code = 6

    def headers(self) -> dict[str, str]:
        return {"Retry-After": RETRY_AFTER}


#: Seconds a client should wait before retrying a write refused for a transient reason.
RETRY_AFTER = "1"


class QuorumNotMetError(UnavailableError):
    """A quorum write was not applied by W nodes in time. The event stays in the log (no rollback) and is
    applied everywhere eventually; the body is the original's."""

    def __init__(self, *, got: int, needed: int, reason: str) -> None:
        self.got = got
        self.needed = needed
        self.reason = reason
        super().__init__(f"quorum not met: {got} of {needed} nodes applied the write ({reason})")

    def body(self) -> dict[str, Any]:
        return {"error": "quorum_not_met", "got": self.got, "needed": self.needed, "reason": self.reason}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "2"}


class FeatureUnavailableError(CommandError):
    """Asked for something this node cannot do: not built yet, or needs configuration (an LLM endpoint)."""

    status = 501
    exit_code = 1


@dataclass(frozen=True)
class ErrorReply:
    status: int
    exit_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def reply_for(exc: BaseException) -> ErrorReply:
    """The single translation from any error to what a caller sees. Unknown errors never leak details."""
    if isinstance(exc, CommandError):
        return ErrorReply(exc.status, exc.exit_code, exc.body(), exc.headers())
    if isinstance(exc, AmbiguousIdError):
        return ErrorReply(400, 2, {"error": str(exc)})
    # Transient: 503 with Retry-After, never a 409 (a client of the original reads any 409 as a taken title).
    if isinstance(exc, AppendConflictError):
        return ErrorReply(503, 6, {"error": "concurrent write, please retry"}, {"Retry-After": RETRY_AFTER})
    if isinstance(exc, LogUnavailableError | WaitTimeoutError):
        return ErrorReply(503, 6, {"error": f"temporarily unavailable: {exc}"}, {"Retry-After": RETRY_AFTER})
    if isinstance(exc, SchemaError):
        return ErrorReply(400, 2, {"error": str(exc)})
    if isinstance(exc, LogError | ProjectorError):
        return ErrorReply(500, 1, {"error": f"storage error: {exc}"})
    return ErrorReply(500, 1, {"error": "internal server error"})
