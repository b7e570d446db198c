"""The governance read model's queries (namespace standards, pending actions, agents, quotas, remembered
decisions) as one ABC with a SQLite and a Postgres implementation, and the decisions both appliers share
(:func:`quota_charge`, :func:`pending_expiry`, :func:`memory_bytes`), so the backends cannot drift apart.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from projectors.rules import json_column
from schemas import Memory, shift_ts

__all__ = ["AgentRecord", "GovernanceQueries", "NamespaceMeta", "PendingRecord", "QuotaUsage", "memory_bytes",
           "pending_expiry", "row_to_pending"]


@dataclass(frozen=True)
class NamespaceMeta:
    namespace: str
    standard_id: str
    parent: str | None
    updated_at: str


@dataclass(frozen=True)
class PendingRecord:
    """A pending action as the original's wire shape, plus when it expires."""

    id: str
    action_type: str
    namespace: str
    payload: dict[str, Any]
    requested_by: str
    requested_at: str
    status: str
    memory_id: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    approvals: list[dict[str, str]] = field(default_factory=list)
    timeout_secs: int = 86400
    expires_at: str = ""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "action_type": self.action_type, "namespace": self.namespace,
                               "payload": self.payload, "requested_by": self.requested_by,
                               "requested_at": self.requested_at, "status": self.status,
                               "approvals": self.approvals, "default_timeout_seconds": self.timeout_secs,
                               "expires_at": self.expires_at}
        for name in ("memory_id", "decided_by", "decided_at"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    agent_type: str
    capabilities: list[str]
    registered_at: str
    last_seen_at: str

    def to_api(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "agent_type": self.agent_type, "capabilities": self.capabilities,
                "registered_at": self.registered_at, "last_seen_at": self.last_seen_at}


@dataclass(frozen=True)
class QuotaUsage:
    """What an agent has used: memories and links on ``day`` (UTC, ``YYYY-MM-DD``) and storage in all."""

    agent_id: str
    day: str
    memories_today: int
    links_today: int
    storage_bytes: int
    created_at: str
    updated_at: str

    def on(self, day: str) -> QuotaUsage:
        """The usage as seen on ``day``: the daily counters start again at 0 on a new UTC day."""
        if day == self.day:
            return self
        return QuotaUsage(self.agent_id, day, 0, 0, self.storage_bytes, self.created_at, self.updated_at)


def memory_bytes(memory: Memory) -> int:
    """What a memory costs against the storage quota: title + content + metadata (the original's count)."""
    return len(memory.title.encode()) + len(memory.content.encode()) + len(json_column(memory.metadata).encode())


def pending_expiry(requested_at: str, timeout_secs: int) -> str:
    return shift_ts(requested_at, timeout_secs)


def row_to_pending(row: Any) -> PendingRecord:
    """A pending_actions row (a mapping with the table's columns) as a record; JSON columns are text."""
    return PendingRecord(id=row["id"], action_type=row["action_type"], namespace=row["namespace"],
                         payload=json.loads(row["payload"]), requested_by=row["requested_by"],
                         requested_at=row["requested_at"], status=row["status"], memory_id=row["memory_id"],
                         decided_by=row["decided_by"], decided_at=row["decided_at"],
                         approvals=json.loads(row["approvals"]), timeout_secs=int(row["timeout_secs"]),
                         expires_at=row["expires_at"])


class GovernanceQueries(ABC):
    """Reads of the governance read model. Every method reads what the projector has applied so far; callers
    wait for the projector (``EventWriter.caught_up``) first when they decide on it."""

    @abstractmethod
    def standard(self, namespace: str) -> NamespaceMeta | None:
        """The namespace's standard, or None when it has none."""

    @abstractmethod
    def standards(self) -> list[NamespaceMeta]:
        """Every namespace with a standard, by namespace."""

    @abstractmethod
    def is_standard(self, memory_id: str) -> bool:
        """Whether the memory is some namespace's standard."""

    @abstractmethod
    def pending(self, pending_id: str) -> PendingRecord | None: ...

    @abstractmethod
    def list_pending(self, *, status: str | None, limit: int) -> list[PendingRecord]:
        """Newest request first (the original's order), optionally only those with ``status``."""

    @abstractmethod
    def due_pending(self, now: str, *, limit: int = 1000) -> list[str]:
        """Ids of actions still pending whose time ran out before ``now``."""

    @abstractmethod
    def count_pending(self, status: str) -> int: ...

    @abstractmethod
    def agent(self, agent_id: str) -> AgentRecord | None: ...

    @abstractmethod
    def agents(self) -> list[AgentRecord]:
        """Every registered agent, first registered first."""

    @abstractmethod
    def quota(self, agent_id: str) -> QuotaUsage | None:
        """What the agent has used, or None when it has written nothing yet."""

    @abstractmethod
    def quotas(self) -> list[QuotaUsage]:
        """Every agent's usage, by agent id."""

    @abstractmethod
    def remembered(self, action_type: str, namespace: str, agent_id: str, sessions: tuple[str, ...]) -> str | None:
        """``approve`` or ``deny`` when a remembered decision covers the action: a ``forever`` rule, or a
        ``session`` rule of one of ``sessions``; a forever rule wins, then the newest."""
