"""The governance domain of the Postgres read model: the same tables and decisions as
:mod:`projectors.sqlite.governance` (shared through :mod:`projectors.governance_queries`), in Postgres SQL.
The tables come from the Alembic revision ``r0006_governance``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, text

from infra.log import LogRecord
from projectors.governance_queries import (
    AgentRecord,
    GovernanceQueries,
    NamespaceMeta,
    PendingRecord,
    QuotaUsage,
    memory_bytes,
    pending_expiry,
    row_to_pending,
)
from projectors.postgres.errors import mapped_errors
from projectors.rules import Inapplicable, json_column
from schemas.events import (
    AgentRegistered,
    LinkCreated,
    MemoryStored,
    PendingDecided,
    PendingExpired,
    PendingRequested,
    PendingVoted,
    RuleRemembered,
    StandardCleared,
    StandardSet,
)

__all__ = ["APPLIERS", "PostgresGovernanceQueries"]


def apply_standard_set(db: Connection, event: StandardSet, record: LogRecord) -> None:
    db.execute(text("INSERT INTO namespace_meta (namespace, standard_id, parent_namespace, updated_at) "
                    "VALUES (:n, :s, :p, :u) ON CONFLICT (namespace) DO UPDATE SET standard_id = excluded.standard_id, "
                    "parent_namespace = excluded.parent_namespace, updated_at = excluded.updated_at"),
               {"n": event.namespace, "s": event.standard_id, "p": event.parent, "u": event.updated_at})


def apply_standard_cleared(db: Connection, event: StandardCleared, record: LogRecord) -> None:
    db.execute(text("DELETE FROM namespace_meta WHERE namespace = :n"), {"n": event.namespace})


def apply_pending_requested(db: Connection, event: PendingRequested, record: LogRecord) -> None:
    p = event.pending
    cur = db.execute(text(
        "INSERT INTO pending_actions (id, seq, action_type, memory_id, namespace, payload, requested_by, requested_at, "
        "status, timeout_secs, expires_at) VALUES (:id, :seq, :t, :m, :n, :p, :r, :at, 'pending', :secs, :exp) "
        "ON CONFLICT DO NOTHING"),
        {"id": p.id, "seq": record.offset, "t": p.action_type, "m": p.memory_id, "n": p.namespace,
         "p": json_column(p.payload), "r": p.requested_by, "at": p.requested_at, "secs": p.timeout_secs,
         "exp": pending_expiry(p.requested_at, p.timeout_secs)})
    if cur.rowcount == 0:
        raise Inapplicable(f"pending action {p.id} already exists")


def _still_pending(db: Connection, pending_id: str) -> RowMapping:
    row = db.execute(text("SELECT status, approvals FROM pending_actions WHERE id = :id"),
                     {"id": pending_id}).mappings().first()
    if row is None:
        raise Inapplicable(f"pending action {pending_id} does not exist")
    if row["status"] != "pending":
        raise Inapplicable(f"pending action {pending_id} is already {row['status']}")
    return row


def apply_pending_voted(db: Connection, event: PendingVoted, record: LogRecord) -> None:
    approvals = json.loads(_still_pending(db, event.id)["approvals"])
    if any(a["agent_id"] == event.vote.agent_id for a in approvals):
        raise Inapplicable(f"{event.vote.agent_id} already voted on {event.id}")
    approvals.append({"agent_id": event.vote.agent_id, "approved_at": event.vote.approved_at})
    db.execute(text("UPDATE pending_actions SET approvals = :a WHERE id = :id"),
               {"a": json_column(approvals), "id": event.id})


def apply_pending_decided(db: Connection, event: PendingDecided, record: LogRecord) -> None:
    _still_pending(db, event.id)
    approvals = [{"agent_id": a.agent_id, "approved_at": a.approved_at} for a in event.approvals]
    db.execute(text("UPDATE pending_actions SET status = :s, decided_by = :by, decided_at = :at, approvals = :a "
                    "WHERE id = :id"),
               {"s": event.status, "by": event.decided_by, "at": event.decided_at, "a": json_column(approvals),
                "id": event.id})


def apply_pending_expired(db: Connection, event: PendingExpired, record: LogRecord) -> None:
    for pending_id in event.ids:
        db.execute(text("UPDATE pending_actions SET status = 'expired', decided_at = :at "
                        "WHERE id = :id AND status = 'pending'"), {"at": event.at, "id": pending_id})


def apply_rule_remembered(db: Connection, event: RuleRemembered, record: LogRecord) -> None:
    db.execute(text("INSERT INTO remembered_rules (action_type, namespace, agent_id, session, decision, remember, "
                    "recorded_at) VALUES (:t, :n, :a, :s, :d, :r, :at) "
                    "ON CONFLICT (action_type, namespace, agent_id, session) DO UPDATE SET "
                    "decision = excluded.decision, remember = excluded.remember, recorded_at = excluded.recorded_at"),
               {"t": event.action_type, "n": event.namespace, "a": event.agent_id, "s": event.session or "",
                "d": event.decision, "r": event.remember, "at": event.recorded_at})


def apply_agent_registered(db: Connection, event: AgentRegistered, record: LogRecord) -> None:
    db.execute(text("INSERT INTO agents (agent_id, agent_type, capabilities, registered_at, last_seen_at) "
                    "VALUES (:a, :t, :c, :at, :at) ON CONFLICT (agent_id) DO UPDATE SET "
                    "agent_type = excluded.agent_type, capabilities = excluded.capabilities, "
                    "last_seen_at = excluded.last_seen_at"),
               {"a": event.agent_id, "t": event.agent_type, "c": json_column(event.capabilities),
                "at": event.registered_at})


def _charge(db: Connection, agent_id: str, ts: str, *, memories: int = 0, links: int = 0, size: int = 0) -> None:
    db.execute(text(
        "INSERT INTO agent_quotas (agent_id, day, memories_today, links_today, storage_bytes, created_at, updated_at) "
        "VALUES (:a, :day, :m, :l, :b, :ts, :ts) ON CONFLICT (agent_id) DO UPDATE SET "
        "memories_today = CASE WHEN agent_quotas.day = :day THEN agent_quotas.memories_today + :m ELSE :m END, "
        "links_today = CASE WHEN agent_quotas.day = :day THEN agent_quotas.links_today + :l ELSE :l END, "
        "storage_bytes = agent_quotas.storage_bytes + :b, day = :day, updated_at = :ts"),
        {"a": agent_id, "day": ts[:10], "m": memories, "l": links, "b": size, "ts": ts})


def charge_memory(db: Connection, event: MemoryStored, record: LogRecord) -> None:
    author = event.memory.metadata.get("agent_id")
    agent = author if isinstance(author, str) else record.event.envelope.actor
    _charge(db, agent, record.event.envelope.ts, memories=1, size=memory_bytes(event.memory))


def charge_link(db: Connection, event: LinkCreated, record: LogRecord) -> None:
    _charge(db, record.event.envelope.actor, record.event.envelope.ts, links=1)


APPLIERS: dict[str, Any] = {
    StandardSet.TYPE: apply_standard_set,
    StandardCleared.TYPE: apply_standard_cleared,
    PendingRequested.TYPE: apply_pending_requested,
    PendingVoted.TYPE: apply_pending_voted,
    PendingDecided.TYPE: apply_pending_decided,
    PendingExpired.TYPE: apply_pending_expired,
    RuleRemembered.TYPE: apply_rule_remembered,
    AgentRegistered.TYPE: apply_agent_registered,
    MemoryStored.TYPE: charge_memory,
    LinkCreated.TYPE: charge_link,
}


def _meta(row: RowMapping) -> NamespaceMeta:
    return NamespaceMeta(row["namespace"], row["standard_id"], row["parent_namespace"], row["updated_at"])


def _agent(row: RowMapping) -> AgentRecord:
    return AgentRecord(row["agent_id"], row["agent_type"], json.loads(row["capabilities"]), row["registered_at"],
                       row["last_seen_at"])


def _usage(row: RowMapping) -> QuotaUsage:
    return QuotaUsage(row["agent_id"], row["day"], int(row["memories_today"]), int(row["links_today"]),
                      int(row["storage_bytes"]), row["created_at"], row["updated_at"])


class PostgresGovernanceQueries(GovernanceQueries):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[RowMapping]:
        with mapped_errors(), self._engine.connect() as conn:
            return list(conn.execute(text(sql), params or {}).mappings())

    def standard(self, namespace: str) -> NamespaceMeta | None:
        rows = self._rows("SELECT * FROM namespace_meta WHERE namespace = :n", {"n": namespace})
        return _meta(rows[0]) if rows else None

    def standards(self) -> list[NamespaceMeta]:
        return [_meta(r) for r in self._rows("SELECT * FROM namespace_meta ORDER BY namespace")]

    def is_standard(self, memory_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM namespace_meta WHERE standard_id = :s LIMIT 1", {"s": memory_id}))

    def pending(self, pending_id: str) -> PendingRecord | None:
        rows = self._rows("SELECT * FROM pending_actions WHERE id = :id", {"id": pending_id})
        return row_to_pending(rows[0]) if rows else None

    def list_pending(self, *, status: str | None, limit: int) -> list[PendingRecord]:
        rows = self._rows("SELECT * FROM pending_actions WHERE (CAST(:s AS text) IS NULL OR status = :s) "
                          "ORDER BY requested_at DESC, seq DESC LIMIT :lim", {"s": status, "lim": limit})
        return [row_to_pending(r) for r in rows]

    def due_pending(self, now: str, *, limit: int = 1000) -> list[str]:
        rows = self._rows("SELECT id FROM pending_actions WHERE status = 'pending' AND expires_at < :now "
                          "ORDER BY seq LIMIT :lim", {"now": now, "lim": limit})
        return [r["id"] for r in rows]

    def count_pending(self, status: str) -> int:
        return int(self._rows("SELECT count(*) AS n FROM pending_actions WHERE status = :s", {"s": status})[0]["n"])

    def agent(self, agent_id: str) -> AgentRecord | None:
        rows = self._rows("SELECT * FROM agents WHERE agent_id = :a", {"a": agent_id})
        return _agent(rows[0]) if rows else None

    def agents(self) -> list[AgentRecord]:
        return [_agent(r) for r in self._rows("SELECT * FROM agents ORDER BY registered_at, agent_id")]

    def quota(self, agent_id: str) -> QuotaUsage | None:
        rows = self._rows("SELECT * FROM agent_quotas WHERE agent_id = :a", {"a": agent_id})
        return _usage(rows[0]) if rows else None

    def quotas(self) -> list[QuotaUsage]:
        return [_usage(r) for r in self._rows("SELECT * FROM agent_quotas ORDER BY agent_id")]

    def remembered(self, action_type: str, namespace: str, agent_id: str, sessions: tuple[str, ...]) -> str | None:
        rows = self._rows(
            "SELECT decision FROM remembered_rules WHERE action_type = :t AND namespace = :n AND agent_id = :a "
            "AND (session = '' OR session = ANY(:s)) ORDER BY (session = '') DESC, recorded_at DESC LIMIT 1",
            {"t": action_type, "n": namespace, "a": agent_id, "s": list(sessions)})
        return str(rows[0]["decision"]) if rows else None
