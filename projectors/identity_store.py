"""The identity domain's appliers, written once for both read models over :class:`~projectors.sql.Sql`: agent
keys, namespaces where ``as_agent`` is mandatory, and each memory write's attest level (kept in the memory's
metadata; the decision is :func:`projectors.identity.attested_metadata`).

The registry converges across regions (docs/regions.md, "Convergence"): an agent's key and a prefix's
requirement are registers (the latest write in merge order holds); a revocation is kept as a mark per key, so
it wins over a registration of that key older in merge order whichever arrives first, and a registration later
in merge order wins over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.log import LogRecord
from projectors.appliers import SqlApplier
from projectors.convergence import mark_of, set_mark
from projectors.identity import ATTEST_KEY, AgentKey, attested_metadata
from projectors.merge_order import agent_key_register, applying
from projectors.rules import json_column
from projectors.sql import Sql, first
from schemas.events import (
    AgentKeyRegistered,
    AgentKeyRevoked,
    AsAgentRequirementSet,
    MemoryImported,
    MemoryStored,
    MemoryUpdated,
)

__all__ = ["APPLIERS", "KEY_COLUMNS", "agent_key"]

KEY_COLUMNS = "agent_id, key_id, public_key, registered_at"


def agent_key(sql: Sql, agent_id: str) -> AgentKey | None:
    row = first(sql, f"SELECT {KEY_COLUMNS} FROM agent_keys WHERE agent_id = :a", {"a": agent_id})
    return None if row is None else AgentKey(row["agent_id"], row["key_id"], row["public_key"], row["registered_at"])


def _revocation(agent_id: str, key_id: str) -> str:
    """The mark of the latest revocation (merge order) of one of an agent's keys."""
    return f"agent_key_revoked:{agent_id}:{key_id}"


def _key_registered(sql: Sql, event: AgentKeyRegistered, record: LogRecord) -> None:
    # A registration older (merge order) than the agent's latest one never gets here: it is a register
    # (projectors.merge_order.register_of), so a rotation holds however late the older key arrives.
    revoked = mark_of(sql, _revocation(event.agent_id, event.key_id))
    if revoked is not None and revoked > applying().key:
        # Revoked later in merge order (in another region, read here first): the agent is left without a key,
        # as if the events had come in merge order (this registration replaced the older key, then went).
        sql.run("DELETE FROM agent_keys WHERE agent_id = :a", {"a": event.agent_id})
        return
    sql.run("INSERT INTO agent_keys (agent_id, key_id, public_key, registered_at, registered_by) "
            "VALUES (:a, :k, :p, :at, :by) ON CONFLICT (agent_id) DO UPDATE SET key_id = excluded.key_id, "
            "public_key = excluded.public_key, registered_at = excluded.registered_at, "
            "registered_by = excluded.registered_by",
            {"a": event.agent_id, "k": event.key_id, "p": event.public_key, "at": event.registered_at,
             "by": record.event.envelope.actor})


def _key_revoked(sql: Sql, event: AgentKeyRevoked, record: LogRecord) -> None:
    at = applying().key
    mark = _revocation(event.agent_id, event.key_id)
    if (mark_of(sql, mark) or "") < at:
        set_mark(sql, mark, at)  # kept for a registration of this key that is older but arrives later
    registered = mark_of(sql, agent_key_register(event.agent_id))
    if registered is not None and registered > at:
        return  # the agent registered (or re-registered) a key later in merge order: that one holds
    # Only the named key: a revocation that crossed a rotation leaves the newer key alone.
    sql.run("DELETE FROM agent_keys WHERE agent_id = :a AND key_id = :k", {"a": event.agent_id, "k": event.key_id})


def _requirement(sql: Sql, event: AsAgentRequirementSet, record: LogRecord) -> None:
    if event.required:
        sql.run("INSERT INTO as_agent_required (prefix, set_at, set_by, reason) VALUES (:p, :at, :by, :r) "
                "ON CONFLICT (prefix) DO UPDATE SET set_at = excluded.set_at, set_by = excluded.set_by, "
                "reason = excluded.reason",
                {"p": event.prefix, "at": event.set_at, "by": record.event.envelope.actor, "r": event.reason})
    else:
        sql.run("DELETE FROM as_agent_required WHERE prefix = :p", {"p": event.prefix})


def _set_attest(sql: Sql, row: Mapping[str, Any] | None, record: LogRecord) -> None:
    """Record the write's attest level on the memory (or clear a stale one)."""
    if row is None:
        return
    attestation = record.event.envelope.attestation
    signer = agent_key(sql, str(attestation.get("agent_id"))) if attestation else None
    metadata = attested_metadata(dict(sql.dialect.json_value(row["metadata"])), attestation, signer)
    if metadata is not None:
        sql.run(f"UPDATE memories SET metadata = {sql.dialect.json_param('m')} WHERE id = :id",
                {"m": json_column(metadata), "id": row["id"]})


def _attest_written(sql: Sql, event: MemoryStored | MemoryImported, record: LogRecord) -> None:
    m = event.memory
    if record.event.envelope.attestation is None and ATTEST_KEY not in m.metadata:
        return  # the stored metadata is the event's, which carries no level: nothing to clear
    # A store merged on (title, namespace) landed on the memory holding the title, under that memory's id.
    _set_attest(sql, first(sql, "SELECT id, metadata FROM memories WHERE id = :id OR (title = :t AND namespace = :n) "
                                "ORDER BY id = :id DESC LIMIT 1", {"id": m.id, "t": m.title, "n": m.namespace}),
                record)


def _attest_updated(sql: Sql, event: MemoryUpdated, record: LogRecord) -> None:
    _set_attest(sql, first(sql, "SELECT id, metadata FROM memories WHERE id = :id", {"id": event.id}), record)


APPLIERS: dict[str, SqlApplier] = {
    AgentKeyRegistered.TYPE: _key_registered,
    AgentKeyRevoked.TYPE: _key_revoked,
    AsAgentRequirementSet.TYPE: _requirement,
    MemoryStored.TYPE: _attest_written,
    MemoryImported.TYPE: _attest_written,
    MemoryUpdated.TYPE: _attest_updated,
}
