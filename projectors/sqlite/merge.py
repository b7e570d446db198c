"""The SQLite tables of convergence across regions (:mod:`projectors.convergence` has the logic): each
partition's last merge stamp, each memory's title claim, and the memory history late events are replayed from."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from infra.log import LogRecord

__all__ = ["APPLIERS", "DDL"]

DDL = """
CREATE TABLE IF NOT EXISTS merge_marks (
    partition TEXT PRIMARY KEY,
    stamp     TEXT NOT NULL
);
-- Registers (a namespace's standard): the merge key of the write that holds each.
CREATE TABLE IF NOT EXISTS merge_registers (
    name TEXT PRIMARY KEY,
    key  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memory_merge (
    id              TEXT PRIMARY KEY,
    namespace       TEXT NOT NULL,
    claim_title     TEXT NOT NULL,
    claim_partition TEXT NOT NULL,
    claim_key       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memory_merge_claim ON memory_merge (namespace, claim_title, claim_partition);
-- Memory events by merge key, and what each depends on (i: memory id, g: title group, w: a memory it only
-- touches): what a late event's memories are replayed from.
CREATE TABLE IF NOT EXISTS memory_history (
    key       TEXT PRIMARY KEY,
    partition TEXT NOT NULL,
    type      TEXT NOT NULL,
    payload   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS memory_history_refs (
    ref TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (ref, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memory_history_refs_key ON memory_history_refs (key);
-- Settled copies: a memory as its history older than the horizon left it (that history is dropped); a replay
-- starts from them (convergence.settle).
CREATE TABLE IF NOT EXISTS settled_memories AS SELECT id, tier, namespace, title, content, tags, priority,
    confidence, source, access_count, created_at, updated_at, last_accessed_at, expires_at, metadata
    FROM memories WHERE 0;
CREATE UNIQUE INDEX IF NOT EXISTS settled_memories_id ON settled_memories (id);
CREATE TABLE IF NOT EXISTS settled_memory_vectors AS SELECT * FROM memory_vectors WHERE 0;
CREATE UNIQUE INDEX IF NOT EXISTS settled_memory_vectors_id ON settled_memory_vectors (id);
CREATE TABLE IF NOT EXISTS settled_memory_merge AS SELECT * FROM memory_merge WHERE 0;
CREATE UNIQUE INDEX IF NOT EXISTS settled_memory_merge_id ON settled_memory_merge (id);
CREATE TABLE IF NOT EXISTS settled_memory_tombstones AS SELECT * FROM memory_tombstones WHERE 0;
CREATE UNIQUE INDEX IF NOT EXISTS settled_memory_tombstones_id ON settled_memory_tombstones (id);
"""

#: No event type of its own: the memory appliers call :mod:`projectors.convergence`.
APPLIERS: dict[str, Callable[[sqlite3.Connection, Any, LogRecord], None]] = {}
