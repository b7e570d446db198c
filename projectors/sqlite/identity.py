"""The identity domain in the SQLite read model: agent keys, namespaces where ``as_agent`` is mandatory, and
each memory write's attest level (kept in the memory's metadata, see :mod:`projectors.identity`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from infra.log import LogRecord
from projectors.identity import (
    ATTEST_KEY,
    SCOPE_COUNT_SQL,
    SCOPE_GROUPS_SQL,
    AgentKey,
    IdentityQueries,
    ScopeCount,
    attested_metadata,
)
from projectors.rules import json_column
from schemas.events import (
    AgentKeyRegistered,
    AgentKeyRevoked,
    AsAgentRequirementSet,
    MemoryImported,
    MemoryStored,
    MemoryUpdated,
)

__all__ = ["APPLIERS", "DDL", "SQLiteIdentityQueries"]

DDL = """
CREATE TABLE IF NOT EXISTS agent_keys (
    agent_id      TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    registered_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS as_agent_required (
    prefix TEXT PRIMARY KEY,
    set_at TEXT NOT NULL,
    set_by TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""


def _key(db: sqlite3.Connection, agent_id: str) -> AgentKey | None:
    row = db.execute("SELECT agent_id, key_id, public_key, registered_at FROM agent_keys WHERE agent_id = ?",
                     (agent_id,)).fetchone()
    return None if row is None else AgentKey(row[0], row[1], row[2], row[3])


def apply_key_registered(db: sqlite3.Connection, event: AgentKeyRegistered, record: LogRecord) -> None:
    db.execute("INSERT OR REPLACE INTO agent_keys (agent_id, key_id, public_key, registered_at, registered_by) "
               "VALUES (?, ?, ?, ?, ?)", (event.agent_id, event.key_id, event.public_key, event.registered_at,
                                          record.event.envelope.actor))


def apply_key_revoked(db: sqlite3.Connection, event: AgentKeyRevoked, record: LogRecord) -> None:
    # Only the named key: a revocation that crossed a rotation leaves the newer key alone.
    db.execute("DELETE FROM agent_keys WHERE agent_id = ? AND key_id = ?", (event.agent_id, event.key_id))


def apply_requirement(db: sqlite3.Connection, event: AsAgentRequirementSet, record: LogRecord) -> None:
    if event.required:
        db.execute("INSERT OR REPLACE INTO as_agent_required (prefix, set_at, set_by, reason) VALUES (?, ?, ?, ?)",
                   (event.prefix, event.set_at, record.event.envelope.actor, event.reason))
    else:
        db.execute("DELETE FROM as_agent_required WHERE prefix = ?", (event.prefix,))


def _set_attest(db: sqlite3.Connection, row: sqlite3.Row | None, record: LogRecord) -> None:
    """Record the write's attest level on the memory (or clear a stale one)."""
    if row is None:
        return
    attestation = record.event.envelope.attestation
    signer = _key(db, str(attestation.get("agent_id"))) if attestation else None
    metadata = attested_metadata(json.loads(row["metadata"]), attestation, signer)
    if metadata is not None:
        db.execute("UPDATE memories SET metadata = ? WHERE id = ?", (json_column(metadata), row["id"]))


def attest_written(db: sqlite3.Connection, event: MemoryStored | MemoryImported, record: LogRecord) -> None:
    m = event.memory
    if record.event.envelope.attestation is None and ATTEST_KEY not in m.metadata:
        return  # the stored metadata is the event's, which carries no level: nothing to clear
    row = db.execute("SELECT id, metadata FROM memories WHERE id = ? OR (title = ? AND namespace = ?) "
                     "ORDER BY id = ? DESC LIMIT 1", (m.id, m.title, m.namespace, m.id)).fetchone()
    _set_attest(db, row, record)


def attest_updated(db: sqlite3.Connection, event: MemoryUpdated, record: LogRecord) -> None:
    _set_attest(db, db.execute("SELECT id, metadata FROM memories WHERE id = ?", (event.id,)).fetchone(), record)


APPLIERS: dict[str, Callable[[sqlite3.Connection, Any, LogRecord], None]] = {
    AgentKeyRegistered.TYPE: apply_key_registered,
    AgentKeyRevoked.TYPE: apply_key_revoked,
    AsAgentRequirementSet.TYPE: apply_requirement,
    MemoryStored.TYPE: attest_written,
    MemoryImported.TYPE: attest_written,
    MemoryUpdated.TYPE: attest_updated,
}


class SQLiteIdentityQueries(IdentityQueries):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def agent_key(self, agent_id: str) -> AgentKey | None:
        return _key(self._db, agent_id)

    def agent_keys(self) -> list[AgentKey]:
        rows = self._db.execute("SELECT agent_id, key_id, public_key, registered_at FROM agent_keys "
                                "ORDER BY agent_id")
        return [AgentKey(r[0], r[1], r[2], r[3]) for r in rows]

    def required_prefixes(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT prefix FROM as_agent_required ORDER BY prefix")]

    def scope_counts(self, now: str) -> list[ScopeCount]:
        rows = self._db.execute(f"SELECT {SCOPE_COUNT_SQL} FROM memories WHERE expires_at IS NULL OR expires_at > ? "
                                f"{SCOPE_GROUPS_SQL}", (now,))
        return [ScopeCount(r[0], r[1], r[2], r[3]) for r in rows]
