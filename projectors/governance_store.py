"""The governance domain's appliers, written once for both read models over the :class:`~projectors.sql.Sql`
contract: namespace standards, pending actions and their votes, the agent registry, per-agent quota counters
and remembered decisions. The tables are the SQLite DDL in :mod:`projectors.sqlite.governance` and the Alembic
revision ``r0006_governance``.

Appliers are deterministic: what they need of time comes from the event (its payload or its envelope's ``ts``).
They check before they write and raise :class:`~projectors.rules.Inapplicable` for events that cannot apply.
"""

from __future__ import annotations

from infra.log import LogRecord
from projectors.appliers import SqlApplier
from projectors.governance_queries import memory_bytes, pending_expiry
from projectors.pending_merge import settle, show
from projectors.rules import Inapplicable, json_column
from projectors.sql import Sql
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

__all__ = ["GOVERNANCE_APPLIERS"]


def apply_standard_set(sql: Sql, event: StandardSet, record: LogRecord) -> None:
    sql.run("INSERT INTO namespace_meta (namespace, standard_id, parent_namespace, updated_at) "
            "VALUES (:n, :s, :p, :u) ON CONFLICT (namespace) DO UPDATE SET standard_id = excluded.standard_id, "
            "parent_namespace = excluded.parent_namespace, updated_at = excluded.updated_at",
            {"n": event.namespace, "s": event.standard_id, "p": event.parent, "u": event.updated_at})


def apply_standard_cleared(sql: Sql, event: StandardCleared, record: LogRecord) -> None:
    sql.run("DELETE FROM namespace_meta WHERE namespace = :n", {"n": event.namespace})


def apply_pending_requested(sql: Sql, event: PendingRequested, record: LogRecord) -> None:
    p = event.pending
    inserted = sql.run(
        "INSERT INTO pending_actions (id, seq, action_type, memory_id, namespace, payload, requested_by, requested_at, "
        "status, timeout_secs, expires_at) VALUES (:id, :seq, :t, :m, :n, :p, :r, :at, 'pending', :secs, :exp) "
        "ON CONFLICT DO NOTHING",
        {"id": p.id, "seq": record.offset, "t": p.action_type, "m": p.memory_id, "n": p.namespace,
         "p": json_column(p.payload), "r": p.requested_by, "at": p.requested_at, "secs": p.timeout_secs,
         "exp": pending_expiry(p.requested_at, p.timeout_secs)})
    if inserted == 0:
        raise Inapplicable(f"pending action {p.id} already exists")
    show(sql, p.id)


# Votes, decisions and expiries converge across regions: the row shows their fold in merge order.
def apply_pending_voted(sql: Sql, event: PendingVoted, record: LogRecord) -> None:
    settle(sql, event.id, record)


def apply_pending_decided(sql: Sql, event: PendingDecided, record: LogRecord) -> None:
    settle(sql, event.id, record)


def apply_pending_expired(sql: Sql, event: PendingExpired, record: LogRecord) -> None:
    for pending_id in event.ids:
        settle(sql, pending_id, record)


def apply_rule_remembered(sql: Sql, event: RuleRemembered, record: LogRecord) -> None:
    sql.run("INSERT INTO remembered_rules (action_type, namespace, agent_id, session, decision, remember, "
            "recorded_at) VALUES (:t, :n, :a, :s, :d, :r, :at) "
            "ON CONFLICT (action_type, namespace, agent_id, session) DO UPDATE SET "
            "decision = excluded.decision, remember = excluded.remember, recorded_at = excluded.recorded_at",
            {"t": event.action_type, "n": event.namespace, "a": event.agent_id, "s": event.session or "",
             "d": event.decision, "r": event.remember, "at": event.recorded_at})


def apply_agent_registered(sql: Sql, event: AgentRegistered, record: LogRecord) -> None:
    # A re-registration updates the type and capabilities and keeps the first registration time.
    sql.run("INSERT INTO agents (agent_id, agent_type, capabilities, registered_at, last_seen_at) "
            "VALUES (:a, :t, :c, :at, :at) ON CONFLICT (agent_id) DO UPDATE SET "
            "agent_type = excluded.agent_type, capabilities = excluded.capabilities, "
            "last_seen_at = excluded.last_seen_at",
            {"a": event.agent_id, "t": event.agent_type, "c": json_column(event.capabilities),
             "at": event.registered_at})


def _charge(sql: Sql, agent_id: str, ts: str, *, memories: int = 0, links: int = 0, size: int = 0) -> None:
    """Add to the agent's counters; the daily ones start again on a new UTC day (the event's day)."""
    # The existing row's columns are named with the table (Postgres would read a bare ``day`` as ambiguous).
    sql.run("INSERT INTO agent_quotas (agent_id, day, memories_today, links_today, storage_bytes, created_at, "
            "updated_at) VALUES (:a, :day, :m, :l, :b, :ts, :ts) ON CONFLICT (agent_id) DO UPDATE SET "
            "memories_today = CASE WHEN agent_quotas.day = :day THEN agent_quotas.memories_today + :m ELSE :m END, "
            "links_today = CASE WHEN agent_quotas.day = :day THEN agent_quotas.links_today + :l ELSE :l END, "
            "storage_bytes = agent_quotas.storage_bytes + :b, day = :day, updated_at = :ts",
            {"a": agent_id, "day": ts[:10], "m": memories, "l": links, "b": size, "ts": ts})


def charge_memory(sql: Sql, event: MemoryStored, record: LogRecord) -> None:
    author = event.memory.metadata.get("agent_id")
    agent = author if isinstance(author, str) else record.event.envelope.actor
    _charge(sql, agent, record.event.envelope.ts, memories=1, size=memory_bytes(event.memory))


def charge_link(sql: Sql, event: LinkCreated, record: LogRecord) -> None:
    _charge(sql, record.event.envelope.actor, record.event.envelope.ts, links=1)


GOVERNANCE_APPLIERS: dict[str, SqlApplier] = {
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
