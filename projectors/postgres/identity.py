"""The identity domain in the Postgres read model: the same tables and decisions as the SQLite backend
(:mod:`projectors.sqlite.identity`, :mod:`projectors.identity`), in Postgres SQL. Tables: revision r0008_identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, text

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
from projectors.postgres.errors import mapped_errors
from projectors.rules import json_column
from schemas.events import (
    AgentKeyRegistered,
    AgentKeyRevoked,
    AsAgentRequirementSet,
    MemoryImported,
    MemoryStored,
    MemoryUpdated,
)

__all__ = ["APPLIERS", "PostgresIdentityQueries"]

_KEY = text("SELECT agent_id, key_id, public_key, registered_at FROM agent_keys WHERE agent_id = :a")


def _key(db: Connection, agent_id: str) -> AgentKey | None:
    row = db.execute(_KEY, {"a": agent_id}).first()
    return None if row is None else AgentKey(row[0], row[1], row[2], row[3])


def apply_key_registered(db: Connection, event: AgentKeyRegistered, record: LogRecord) -> None:
    db.execute(text("INSERT INTO agent_keys (agent_id, key_id, public_key, registered_at, registered_by) "
                    "VALUES (:a, :k, :p, :at, :by) ON CONFLICT (agent_id) DO UPDATE SET key_id = excluded.key_id, "
                    "public_key = excluded.public_key, registered_at = excluded.registered_at, "
                    "registered_by = excluded.registered_by"),
               {"a": event.agent_id, "k": event.key_id, "p": event.public_key, "at": event.registered_at,
                "by": record.event.envelope.actor})


def apply_key_revoked(db: Connection, event: AgentKeyRevoked, record: LogRecord) -> None:
    db.execute(text("DELETE FROM agent_keys WHERE agent_id = :a AND key_id = :k"),
               {"a": event.agent_id, "k": event.key_id})


def apply_requirement(db: Connection, event: AsAgentRequirementSet, record: LogRecord) -> None:
    if event.required:
        db.execute(text("INSERT INTO as_agent_required (prefix, set_at, set_by, reason) VALUES (:p, :at, :by, :r) "
                        "ON CONFLICT (prefix) DO UPDATE SET set_at = excluded.set_at, set_by = excluded.set_by, "
                        "reason = excluded.reason"),
                   {"p": event.prefix, "at": event.set_at, "by": record.event.envelope.actor, "r": event.reason})
    else:
        db.execute(text("DELETE FROM as_agent_required WHERE prefix = :p"), {"p": event.prefix})


def _set_attest(db: Connection, row: RowMapping | None, record: LogRecord) -> None:
    if row is None:
        return
    attestation = record.event.envelope.attestation
    signer = _key(db, str(attestation.get("agent_id"))) if attestation else None
    metadata = attested_metadata(dict(row["metadata"]), attestation, signer)
    if metadata is not None:
        db.execute(text("UPDATE memories SET metadata = CAST(:m AS jsonb) WHERE id = :id"),
                   {"m": json_column(metadata), "id": row["id"]})


def attest_written(db: Connection, event: MemoryStored | MemoryImported, record: LogRecord) -> None:
    m = event.memory
    if record.event.envelope.attestation is None and ATTEST_KEY not in m.metadata:
        return
    row = db.execute(text("SELECT id, metadata FROM memories WHERE id = :id OR (title = :t AND namespace = :n) "
                          "ORDER BY id = :id DESC LIMIT 1"),
                     {"id": m.id, "t": m.title, "n": m.namespace}).mappings().first()
    _set_attest(db, row, record)


def attest_updated(db: Connection, event: MemoryUpdated, record: LogRecord) -> None:
    row = db.execute(text("SELECT id, metadata FROM memories WHERE id = :id"), {"id": event.id}).mappings().first()
    _set_attest(db, row, record)


APPLIERS: dict[str, Callable[[Connection, Any, LogRecord], None]] = {
    AgentKeyRegistered.TYPE: apply_key_registered,
    AgentKeyRevoked.TYPE: apply_key_revoked,
    AsAgentRequirementSet.TYPE: apply_requirement,
    MemoryStored.TYPE: attest_written,
    MemoryImported.TYPE: attest_written,
    MemoryUpdated.TYPE: attest_updated,
}


class PostgresIdentityQueries(IdentityQueries):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def agent_key(self, agent_id: str) -> AgentKey | None:
        with mapped_errors(), self._engine.connect() as conn:
            return _key(conn, agent_id)

    def agent_keys(self) -> list[AgentKey]:
        with mapped_errors(), self._engine.connect() as conn:
            rows = conn.execute(text("SELECT agent_id, key_id, public_key, registered_at FROM agent_keys "
                                     "ORDER BY agent_id")).all()
        return [AgentKey(r[0], r[1], r[2], r[3]) for r in rows]

    def required_prefixes(self) -> list[str]:
        with mapped_errors(), self._engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT prefix FROM as_agent_required ORDER BY prefix"))]

    def scope_counts(self, now: str) -> list[ScopeCount]:
        with mapped_errors(), self._engine.connect() as conn:
            rows = conn.execute(text(f"SELECT {SCOPE_COUNT_SQL} FROM memories WHERE expires_at IS NULL OR "
                                     f"expires_at > :now {SCOPE_GROUPS_SQL}"),
                                {"now": now}).all()
        return [ScopeCount(r[0], r[1], int(r[2]), r[3]) for r in rows]
