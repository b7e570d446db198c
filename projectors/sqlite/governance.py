"""The governance domain of the SQLite read model: namespace standards, pending actions, the agent registry,
per-agent quota counters and remembered decisions — tables, appliers and queries.

Appliers are deterministic: what they need of time comes from the event (its payload or its envelope's ``ts``).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

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

__all__ = ["APPLIERS", "DDL", "SQLiteGovernanceQueries"]

DDL = """
CREATE TABLE IF NOT EXISTS namespace_meta (
    namespace        TEXT PRIMARY KEY,
    standard_id      TEXT NOT NULL,
    parent_namespace TEXT,
    updated_at       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_actions (
    id           TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL,
    action_type  TEXT NOT NULL,
    memory_id    TEXT,
    namespace    TEXT NOT NULL,
    payload      TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status       TEXT NOT NULL,
    decided_by   TEXT,
    decided_at   TEXT,
    approvals    TEXT NOT NULL DEFAULT '[]',
    timeout_secs INTEGER NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_actions_status ON pending_actions (status, expires_at);
CREATE TABLE IF NOT EXISTS agents (
    agent_id      TEXT PRIMARY KEY,
    agent_type    TEXT NOT NULL,
    capabilities  TEXT NOT NULL DEFAULT '[]',
    registered_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_quotas (
    agent_id       TEXT PRIMARY KEY,
    day            TEXT NOT NULL,
    memories_today INTEGER NOT NULL DEFAULT 0,
    links_today    INTEGER NOT NULL DEFAULT 0,
    storage_bytes  INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS remembered_rules (
    action_type TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    session     TEXT NOT NULL DEFAULT '',
    decision    TEXT NOT NULL,
    remember    TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (action_type, namespace, agent_id, session)
);
"""


def apply_standard_set(db: sqlite3.Connection, event: StandardSet, record: LogRecord) -> None:
    db.execute("INSERT INTO namespace_meta (namespace, standard_id, parent_namespace, updated_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (namespace) DO UPDATE SET standard_id = excluded.standard_id, "
               "parent_namespace = excluded.parent_namespace, updated_at = excluded.updated_at",
               (event.namespace, event.standard_id, event.parent, event.updated_at))


def apply_standard_cleared(db: sqlite3.Connection, event: StandardCleared, record: LogRecord) -> None:
    db.execute("DELETE FROM namespace_meta WHERE namespace = ?", (event.namespace,))


def apply_pending_requested(db: sqlite3.Connection, event: PendingRequested, record: LogRecord) -> None:
    p = event.pending
    cur = db.execute(
        "INSERT OR IGNORE INTO pending_actions (id, seq, action_type, memory_id, namespace, payload, requested_by, "
        "requested_at, status, timeout_secs, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        (p.id, record.offset, p.action_type, p.memory_id, p.namespace, json_column(p.payload), p.requested_by,
         p.requested_at, p.timeout_secs, pending_expiry(p.requested_at, p.timeout_secs)))
    if cur.rowcount == 0:
        raise Inapplicable(f"pending action {p.id} already exists")


def _still_pending(db: sqlite3.Connection, pending_id: str) -> sqlite3.Row:
    row: sqlite3.Row | None = db.execute("SELECT status, approvals FROM pending_actions WHERE id = ?",
                                         (pending_id,)).fetchone()
    if row is None:
        raise Inapplicable(f"pending action {pending_id} does not exist")
    if row["status"] != "pending":
        raise Inapplicable(f"pending action {pending_id} is already {row['status']}")
    return row


def apply_pending_voted(db: sqlite3.Connection, event: PendingVoted, record: LogRecord) -> None:
    row = _still_pending(db, event.id)
    approvals = json.loads(row["approvals"])
    if any(a["agent_id"] == event.vote.agent_id for a in approvals):
        raise Inapplicable(f"{event.vote.agent_id} already voted on {event.id}")
    approvals.append({"agent_id": event.vote.agent_id, "approved_at": event.vote.approved_at})
    db.execute("UPDATE pending_actions SET approvals = ? WHERE id = ?", (json_column(approvals), event.id))


def apply_pending_decided(db: sqlite3.Connection, event: PendingDecided, record: LogRecord) -> None:
    _still_pending(db, event.id)
    approvals = [{"agent_id": a.agent_id, "approved_at": a.approved_at} for a in event.approvals]
    db.execute("UPDATE pending_actions SET status = ?, decided_by = ?, decided_at = ?, approvals = ? WHERE id = ?",
               (event.status, event.decided_by, event.decided_at, json_column(approvals), event.id))


def apply_pending_expired(db: sqlite3.Connection, event: PendingExpired, record: LogRecord) -> None:
    db.executemany("UPDATE pending_actions SET status = 'expired', decided_at = ? WHERE id = ? AND status = 'pending'",
                   [(event.at, pending_id) for pending_id in event.ids])


def apply_rule_remembered(db: sqlite3.Connection, event: RuleRemembered, record: LogRecord) -> None:
    db.execute("INSERT OR REPLACE INTO remembered_rules (action_type, namespace, agent_id, session, decision, "
               "remember, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (event.action_type, event.namespace, event.agent_id, event.session or "", event.decision,
                event.remember, event.recorded_at))


def apply_agent_registered(db: sqlite3.Connection, event: AgentRegistered, record: LogRecord) -> None:
    # A re-registration updates the type and capabilities and keeps the first registration time.
    db.execute("INSERT INTO agents (agent_id, agent_type, capabilities, registered_at, last_seen_at) "
               "VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET agent_type = excluded.agent_type, "
               "capabilities = excluded.capabilities, last_seen_at = excluded.last_seen_at",
               (event.agent_id, event.agent_type, json_column(event.capabilities), event.registered_at,
                event.registered_at))


def _charge(db: sqlite3.Connection, agent_id: str, ts: str, *, memories: int = 0, links: int = 0,
            size: int = 0) -> None:
    """Add to the agent's counters; the daily ones start again on a new UTC day (the event's day)."""
    day = ts[:10]
    db.execute(
        "INSERT INTO agent_quotas (agent_id, day, memories_today, links_today, storage_bytes, created_at, updated_at) "
        "VALUES (:a, :day, :m, :l, :b, :ts, :ts) ON CONFLICT (agent_id) DO UPDATE SET "
        "memories_today = CASE WHEN day = :day THEN memories_today + :m ELSE :m END, "
        "links_today = CASE WHEN day = :day THEN links_today + :l ELSE :l END, "
        "storage_bytes = storage_bytes + :b, day = :day, updated_at = :ts",
        {"a": agent_id, "day": day, "m": memories, "l": links, "b": size, "ts": ts})


def charge_memory(db: sqlite3.Connection, event: MemoryStored, record: LogRecord) -> None:
    author = event.memory.metadata.get("agent_id")
    agent = author if isinstance(author, str) else record.event.envelope.actor
    _charge(db, agent, record.event.envelope.ts, memories=1, size=memory_bytes(event.memory))


def charge_link(db: sqlite3.Connection, event: LinkCreated, record: LogRecord) -> None:
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


def _meta(row: sqlite3.Row) -> NamespaceMeta:
    return NamespaceMeta(row["namespace"], row["standard_id"], row["parent_namespace"], row["updated_at"])


def _agent(row: sqlite3.Row) -> AgentRecord:
    return AgentRecord(row["agent_id"], row["agent_type"], json.loads(row["capabilities"]), row["registered_at"],
                       row["last_seen_at"])


def _usage(row: sqlite3.Row) -> QuotaUsage:
    return QuotaUsage(row["agent_id"], row["day"], row["memories_today"], row["links_today"], row["storage_bytes"],
                      row["created_at"], row["updated_at"])


class SQLiteGovernanceQueries(GovernanceQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def standard(self, namespace: str) -> NamespaceMeta | None:
        row = self._db.execute("SELECT * FROM namespace_meta WHERE namespace = ?", (namespace,)).fetchone()
        return None if row is None else _meta(row)

    def standards(self) -> list[NamespaceMeta]:
        return [_meta(r) for r in self._db.execute("SELECT * FROM namespace_meta ORDER BY namespace")]

    def is_standard(self, memory_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM namespace_meta WHERE standard_id = ? LIMIT 1",
                                (memory_id,)).fetchone() is not None

    def pending(self, pending_id: str) -> PendingRecord | None:
        row = self._db.execute("SELECT * FROM pending_actions WHERE id = ?", (pending_id,)).fetchone()
        return None if row is None else row_to_pending(row)

    def list_pending(self, *, status: str | None, limit: int) -> list[PendingRecord]:
        rows = self._db.execute("SELECT * FROM pending_actions WHERE (? IS NULL OR status = ?) "
                                "ORDER BY requested_at DESC, seq DESC LIMIT ?", (status, status, limit))
        return [row_to_pending(r) for r in rows]

    def due_pending(self, now: str, *, limit: int = 1000) -> list[str]:
        rows = self._db.execute("SELECT id FROM pending_actions WHERE status = 'pending' AND expires_at < ? "
                                "ORDER BY seq LIMIT ?", (now, limit))
        return [r["id"] for r in rows]

    def count_pending(self, status: str) -> int:
        (n,) = self._db.execute("SELECT count(*) FROM pending_actions WHERE status = ?", (status,)).fetchone()
        return int(n)

    def agent(self, agent_id: str) -> AgentRecord | None:
        row = self._db.execute("SELECT * FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
        return None if row is None else _agent(row)

    def agents(self) -> list[AgentRecord]:
        return [_agent(r) for r in self._db.execute("SELECT * FROM agents ORDER BY registered_at, agent_id")]

    def quota(self, agent_id: str) -> QuotaUsage | None:
        row = self._db.execute("SELECT * FROM agent_quotas WHERE agent_id = ?", (agent_id,)).fetchone()
        return None if row is None else _usage(row)

    def quotas(self) -> list[QuotaUsage]:
        return [_usage(r) for r in self._db.execute("SELECT * FROM agent_quotas ORDER BY agent_id")]

    def remembered(self, action_type: str, namespace: str, agent_id: str, sessions: tuple[str, ...]) -> str | None:
        marks = ",".join("?" * (len(sessions) + 1))
        row = self._db.execute(
            f"SELECT decision FROM remembered_rules WHERE action_type = ? AND namespace = ? AND agent_id = ? "
            f"AND session IN ({marks}) ORDER BY session = '' DESC, recorded_at DESC LIMIT 1",
            (action_type, namespace, agent_id, "", *sessions)).fetchone()
        return None if row is None else str(row["decision"])
