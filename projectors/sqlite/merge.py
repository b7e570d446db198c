"""Convergence of the SQLite read model across partitions (regions): merge stamps, title claims, last writer wins.

With one partition every rule here reduces to today's log-order rules (keys increase along the log, every claim
comes from the one partition). With several, the state after a set of events does not depend on the
interleaving in which a node read them (see :mod:`projectors.merge_order` and the README, "Convergence"):

* each memory's *claim* (namespace, claimed title, partition, key of the event that claimed it) is kept in
  ``memory_merge``; a store decides against the holder of its title *in its own partition* (today's
  on_conflict rules); the claims of one title from several partitions are then resolved as a function of the set
  alone: the earliest merge key shows the title, the others are kept under their ids with
  :func:`~projectors.merge_order.conflict_title` (the operator's list: :func:`title_conflicts`);
* the fields a write sets are kept with the merge key that set them, and a write older than a field's key
  leaves that field alone (last writer wins per field);
* an update that reaches a node before the store of its memory (another partition's) is parked and applied when
  the store arrives, if it is later in merge order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from infra.log import LogRecord
from projectors.merge_order import MergeStamp, applying, conflict_title, merge_key, next_stamp
from schemas import Memory

__all__ = ["APPLIERS", "DDL", "claim_holder", "claim_of", "drop_claim", "lww", "move_claim", "park", "parked_after",
           "record_claim", "remember", "resolve", "stamp", "title_conflicts"]

DDL = """
CREATE TABLE IF NOT EXISTS merge_marks (
    partition TEXT PRIMARY KEY,
    stamp     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memory_merge (
    id              TEXT PRIMARY KEY,
    namespace       TEXT NOT NULL,
    claim_title     TEXT NOT NULL,
    claim_partition TEXT NOT NULL,
    claim_key       TEXT NOT NULL,
    field_keys      TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memory_merge_claim ON memory_merge (namespace, claim_title, claim_partition);
CREATE TABLE IF NOT EXISTS memory_parked (
    id        TEXT NOT NULL,
    key       TEXT NOT NULL,
    partition TEXT NOT NULL,
    payload   TEXT NOT NULL,
    PRIMARY KEY (id, key)
) WITHOUT ROWID;
"""

#: No event type of its own: the memory appliers call in here.
APPLIERS: dict[str, Callable[[sqlite3.Connection, Any, LogRecord], None]] = {}

#: Fields that take the maximum instead of the last write (commutative already).
_MAX_FIELDS = frozenset({"priority", "confidence", "tier"})


def stamp(db: sqlite3.Connection, record: LogRecord) -> MergeStamp:
    """The record's merge position; advances its partition's stamp (in the caller's transaction)."""
    row = db.execute("SELECT stamp FROM merge_marks WHERE partition = ?", (record.partition,)).fetchone()
    current = next_stamp(record.event.envelope.ts, None if row is None else str(row[0]))
    db.execute("INSERT INTO merge_marks (partition, stamp) VALUES (?, ?) "
               "ON CONFLICT (partition) DO UPDATE SET stamp = excluded.stamp", (record.partition, current))
    return MergeStamp(record.partition, merge_key(current, record.partition, record.offset))


def claim_holder(db: sqlite3.Connection, title: str, namespace: str, partition: str) -> str | None:
    """The live memory that claimed (namespace, title) in ``partition``: whom that partition's stores clash
    with (with one partition: the memory holding the title)."""
    row = db.execute("SELECT c.id FROM memory_merge c JOIN memories m ON m.id = c.id WHERE c.namespace = ? "
                     "AND c.claim_title = ? AND c.claim_partition = ?", (namespace, title, partition)).fetchone()
    return None if row is None else str(row[0])


def record_claim(db: sqlite3.Connection, m: Memory, key: MergeStamp) -> None:
    fields = dict.fromkeys(("content", "tags", "source", "metadata", "updated_at", "expires_at"), key.key)
    db.execute("INSERT OR REPLACE INTO memory_merge (id, namespace, claim_title, claim_partition, claim_key, "
               "field_keys) VALUES (?, ?, ?, ?, ?, ?)",
               (m.id, m.namespace, m.title, key.partition, key.key, json.dumps(fields, sort_keys=True)))


def claim_of(db: sqlite3.Connection, memory_id: str) -> tuple[str, str] | None:
    """(namespace, claimed title) of a memory."""
    row = db.execute("SELECT namespace, claim_title FROM memory_merge WHERE id = ?", (memory_id,)).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def move_claim(db: sqlite3.Connection, memory_id: str, title: str, namespace: str) -> tuple[str, str] | None:
    """The memory now claims (namespace, title) for the event being applied; returns its old claim."""
    key, old = applying(), claim_of(db, memory_id)
    db.execute("UPDATE memory_merge SET namespace = ?, claim_title = ?, claim_partition = ?, claim_key = ? "
               "WHERE id = ?", (namespace, title, key.partition, key.key, memory_id))
    return old


def drop_claim(db: sqlite3.Connection, memory_id: str) -> None:
    old = claim_of(db, memory_id)
    db.execute("DELETE FROM memory_merge WHERE id = ?", (memory_id,))
    if old is not None:
        resolve(db, *old)


def resolve(db: sqlite3.Connection, namespace: str, title: str) -> None:
    """Show ``title`` on the earliest live claim of it (merge order) and the conflict title on the others: a
    function of the set of claims, so every interleaving ends the same. Losers first, so the unique
    (title, namespace) index never sees two holders."""
    ids = [str(r[0]) for r in db.execute(
        "SELECT c.id FROM memory_merge c JOIN memories m ON m.id = c.id WHERE c.namespace = ? "
        "AND c.claim_title = ? ORDER BY c.claim_key", (namespace, title))]
    for loser in ids[1:]:
        db.execute("UPDATE memories SET title = ? WHERE id = ? AND title != ?",
                   (conflict_title(title, loser), loser, conflict_title(title, loser)))
    if ids:
        db.execute("UPDATE memories SET title = ?, namespace = ? WHERE id = ? AND (title != ? OR namespace != ?)",
                   (title, namespace, ids[0], title, namespace))


def _field_keys(db: sqlite3.Connection, memory_id: str) -> dict[str, str]:
    row = db.execute("SELECT field_keys FROM memory_merge WHERE id = ?", (memory_id,)).fetchone()
    return json.loads(row[0]) if row is not None else {}


def lww(db: sqlite3.Connection, memory_id: str, sets: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``sets`` the event being applied may write: fields it is the latest writer of (by merge
    key), plus the maximum-taking ones. Reads only (an applier checks before it writes): :func:`remember`."""
    key, keys = applying().key, _field_keys(db, memory_id)
    return {name: value for name, value in sets.items() if name in _MAX_FIELDS or keys.get(name, "") < key}


def remember(db: sqlite3.Connection, memory_id: str, written: Mapping[str, Any]) -> None:
    """Record the applying event's key on the fields it wrote."""
    key, keys = applying().key, _field_keys(db, memory_id)
    keys.update({name: key for name in written if name not in _MAX_FIELDS})
    db.execute("UPDATE memory_merge SET field_keys = ? WHERE id = ?", (json.dumps(keys, sort_keys=True), memory_id))


def park(db: sqlite3.Connection, memory_id: str, payload: Mapping[str, Any]) -> None:
    """Keep an update whose memory is not here (yet): another partition's store of it may still come."""
    key = applying()
    db.execute("INSERT OR IGNORE INTO memory_parked (id, key, partition, payload) VALUES (?, ?, ?, ?)",
               (memory_id, key.key, key.partition, json.dumps(payload, sort_keys=True)))


def parked_after(db: sqlite3.Connection, memory_id: str) -> list[tuple[MergeStamp, dict[str, Any]]]:
    """Parked updates of a memory just stored that follow its store in merge order and came from another
    partition (within one partition an update before the store was refused in log order, and stays so)."""
    key = applying()
    rows = db.execute("SELECT key, partition, payload FROM memory_parked WHERE id = ? AND key > ? AND partition != ? "
                      "ORDER BY key", (memory_id, key.key, key.partition)).fetchall()
    db.execute("DELETE FROM memory_parked WHERE id = ?", (memory_id,))
    return [(MergeStamp(str(r[1]), str(r[0])), json.loads(r[2])) for r in rows]


def title_conflicts(db: sqlite3.Connection) -> list[dict[str, str]]:
    """Memories kept under a conflict title because another region claimed theirs earlier, for operators."""
    rows = db.execute(
        "SELECT c.id, c.namespace, c.claim_title, c.claim_partition, m.title, "
        "(SELECT w.id FROM memory_merge w JOIN memories wm ON wm.id = w.id WHERE w.namespace = c.namespace "
        " AND w.claim_title = c.claim_title ORDER BY w.claim_key LIMIT 1) AS winner "
        "FROM memory_merge c JOIN memories m ON m.id = c.id WHERE m.title != c.claim_title ORDER BY c.id")
    return [{"id": r[0], "namespace": r[1], "claimed_title": r[2], "partition": r[3], "title": r[4],
             "held_by": r[5]} for r in rows]
