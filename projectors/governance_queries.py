"""The governance read model's queries (namespace standards, pending actions, agents, quotas, remembered
decisions), written once over a backend's :class:`~projectors.sql.Sql`, and the decisions the appliers share
(:func:`quota_charge`, :func:`pending_expiry`, :func:`memory_bytes`), so the backends cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from projectors.rules import json_column
from projectors.sql import Sql, first
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


def _meta(row: Mapping[str, Any]) -> NamespaceMeta:
    return NamespaceMeta(row["namespace"], row["standard_id"], row["parent_namespace"], row["updated_at"])


def _agent(row: Mapping[str, Any]) -> AgentRecord:
    return AgentRecord(row["agent_id"], row["agent_type"], json.loads(row["capabilities"]), row["registered_at"],
                       row["last_seen_at"])


def _usage(row: Mapping[str, Any]) -> QuotaUsage:
    return QuotaUsage(row["agent_id"], row["day"], int(row["memories_today"]), int(row["links_today"]),
                      int(row["storage_bytes"]), row["created_at"], row["updated_at"])


class GovernanceQueries:
    """Reads of the governance read model, written once over a backend's :class:`~projectors.sql.Sql` (portable
    SQL, named parameters). Every method reads what the projector has applied so far; callers wait for the
    projector (``EventWriter.caught_up``) first when they decide on it."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return self._sql.rows(sql, params)

    def _first(self, sql: str, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return first(self._sql, sql, params)

    def standard(self, namespace: str) -> NamespaceMeta | None:
        """The namespace's standard, or None when it has none."""
        row = self._first("SELECT * FROM namespace_meta WHERE namespace = :n", {"n": namespace})
        return None if row is None else _meta(row)

    def standards_of(self, namespaces: Sequence[str]) -> dict[str, NamespaceMeta]:
        """The standards of those of ``namespaces`` that have one, in one read."""
        if not namespaces:
            return {}
        params = {f"n{i}": ns for i, ns in enumerate(namespaces)}
        marks = ", ".join(f":{name}" for name in params)
        return {(meta := _meta(r)).namespace: meta
                for r in self._rows(f"SELECT * FROM namespace_meta WHERE namespace IN ({marks})", params)}

    def standards(self) -> list[NamespaceMeta]:
        """Every namespace with a standard, by namespace."""
        return [_meta(r) for r in self._rows("SELECT * FROM namespace_meta ORDER BY namespace", {})]

    def is_standard(self, memory_id: str) -> bool:
        """Whether the memory is some namespace's standard."""
        return bool(self._rows("SELECT 1 FROM namespace_meta WHERE standard_id = :s LIMIT 1", {"s": memory_id}))

    def pending(self, pending_id: str) -> PendingRecord | None:
        row = self._first("SELECT * FROM pending_actions WHERE id = :id", {"id": pending_id})
        return None if row is None else row_to_pending(row)

    def list_pending(self, *, status: str | None, limit: int, offset: int = 0) -> list[PendingRecord]:
        """Newest request first (the original's order), optionally only those with ``status``."""
        # CAST: Postgres cannot type a parameter that is only compared with NULL.
        rows = self._rows("SELECT * FROM pending_actions WHERE (CAST(:s AS TEXT) IS NULL OR status = :s) "
                          "ORDER BY requested_at DESC, seq DESC LIMIT :lim OFFSET :off",
                          {"s": status, "lim": limit, "off": offset})
        return [row_to_pending(r) for r in rows]

    def due_pending(self, now: str, *, limit: int = 1000) -> list[str]:
        """Ids of actions still pending whose time ran out before ``now``."""
        rows = self._rows("SELECT id FROM pending_actions WHERE status = 'pending' AND expires_at < :now "
                          "ORDER BY seq LIMIT :lim", {"now": now, "lim": limit})
        return [r["id"] for r in rows]

    def count_pending(self, status: str) -> int:
        return int(self._rows("SELECT count(*) AS n FROM pending_actions WHERE status = :s", {"s": status})[0]["n"])

    def agent(self, agent_id: str) -> AgentRecord | None:
        row = self._first("SELECT * FROM agents WHERE agent_id = :a", {"a": agent_id})
        return None if row is None else _agent(row)

    def agents(self) -> list[AgentRecord]:
        """Every registered agent, first registered first."""
        return [_agent(r) for r in self._rows("SELECT * FROM agents ORDER BY registered_at, agent_id", {})]

    def quota(self, agent_id: str) -> QuotaUsage | None:
        """What the agent has used, or None when it has written nothing yet."""
        row = self._first("SELECT * FROM agent_quotas WHERE agent_id = :a", {"a": agent_id})
        return None if row is None else _usage(row)

    def quotas(self) -> list[QuotaUsage]:
        """Every agent's usage, by agent id."""
        return [_usage(r) for r in self._rows("SELECT * FROM agent_quotas ORDER BY agent_id", {})]

    def remembered(self, action_type: str, namespace: str, agent_id: str, sessions: tuple[str, ...]) -> str | None:
        """``approve`` or ``deny`` when a remembered decision covers the action: a ``forever`` rule, or a
        ``session`` rule of one of ``sessions``; a forever rule wins, then the newest."""
        # One named parameter per session (the forever rule's session is ''): portable, unlike ANY(array).
        named = {f"s{i}": s for i, s in enumerate(("", *sessions))}
        row = self._first(
            "SELECT decision FROM remembered_rules WHERE action_type = :t AND namespace = :n AND agent_id = :a "
            f"AND session IN ({', '.join(':' + k for k in named)}) ORDER BY (session = '') DESC, recorded_at DESC "
            "LIMIT 1", {"t": action_type, "n": namespace, "a": agent_id, **named})
        return None if row is None else str(row["decision"])
