"""Convergence of the SQLite read model across partitions (regions): merge stamps, title claims, late events.

With one partition every rule here reduces to today's log-order rules (keys increase along the log, so no event
is ever late; every claim comes from the one partition). With several, the memories after a set of events do not
depend on the interleaving in which a node read them (see :mod:`projectors.merge_order` and the README,
"Convergence"):

* each memory's *claim* (namespace, claimed title, partition, key of the event that claimed it) is kept in
  ``memory_merge``; a store decides against the holder of its title *in its own partition* (today's
  on_conflict rules); the claims of one title from several partitions are resolved as a function of the set
  alone: the earliest merge key shows the title, the others are kept under their ids with
  :func:`~projectors.merge_order.conflict_title` (the operator's list: :func:`title_conflicts`);
* memory events are kept by merge key with what they depend on (``memory_history``); an event that arrives
  after one it shares a memory or title group with but precedes it in merge order (*late*) makes the node
  replay those memories' history in merge order (:func:`replay`), so every node ends where the merge order
  leads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from infra.log import LogRecord
from projectors.merge_order import MergeStamp, Refs, applying, conflict_title, merge_key, next_stamp, title_group
from schemas import Memory

__all__ = ["APPLIERS", "DDL", "claim_holder", "claim_of", "drop_claim", "is_late", "joins", "move_claim", "record",
           "record_claim", "replay", "resolve", "stamp", "title_conflicts"]

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
"""

#: No event type of its own: the memory appliers call in here.
APPLIERS: dict[str, Callable[[sqlite3.Connection, Any, LogRecord], None]] = {}


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
    db.execute("INSERT OR REPLACE INTO memory_merge (id, namespace, claim_title, claim_partition, claim_key) "
               "VALUES (?, ?, ?, ?, ?)", (m.id, m.namespace, m.title, key.partition, key.key))


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
    """The memory is gone: its claim too, and the next claim of its title shows it."""
    joins(db, memory_id)
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


def record(db: sqlite3.Connection, at: MergeStamp, event_type: str, payload: Mapping[str, Any],
           refs: Refs) -> None:
    """Keep a memory event in the history its memories and title groups are replayed from."""
    db.execute("INSERT OR IGNORE INTO memory_history (key, partition, type, payload) VALUES (?, ?, ?, ?)",
               (at.key, at.partition, event_type, json.dumps(payload, sort_keys=True)))
    db.executemany("INSERT OR IGNORE INTO memory_history_refs (ref, key) VALUES (?, ?)",
                   [(ref, at.key) for ref in _ref_names(refs)])


def _refs_of(db: sqlite3.Connection, key: str) -> set[str]:
    return {str(r[0]) for r in db.execute("SELECT ref FROM memory_history_refs WHERE key = ?", (key,))}


def is_late(db: sqlite3.Connection, at: MergeStamp) -> bool:
    """Whether the event just applied (its refs include the memories it joined while applied) shares a memory
    (changed strongly or by a touch) or a title group with an event later in merge order: never, with one
    partition, whose keys increase along the log."""
    names = set()
    for ref in _refs_of(db, at.key):
        kind, _, name = ref.partition(":")
        names |= {f"i:{name}", f"w:{name}"} if kind in ("i", "w") else {ref}
    marks = ", ".join("?" * len(names))
    later = db.execute(f"SELECT 1 FROM memory_history_refs WHERE ref IN ({marks}) AND key > ? LIMIT 1",
                       (*names, at.key)).fetchone() if names else None
    return later is not None


def joins(db: sqlite3.Connection, memory_id: str) -> None:
    """The event being applied changes ``memory_id`` and its claim beyond what its payload names (a store
    merged into the holder of its title; a delete or rename that frees a title): its history joins that
    memory's and its title group's, so a store of that title earlier in merge order that arrives later is late."""
    claim = claim_of(db, memory_id)
    names = [f"i:{memory_id}", *([] if claim is None else [f"g:{title_group(claim[1])}"])]
    db.executemany("INSERT OR IGNORE INTO memory_history_refs (ref, key) VALUES (?, ?)",
                   [(name, applying().key) for name in names])


def _ref_names(refs: Refs) -> list[str]:
    return [*(f"i:{i}" for i in refs.ids), *(f"g:{g}" for g in refs.groups), *(f"w:{i}" for i in refs.weak_ids)]


def _closure(db: sqlite3.Connection, key: str) -> tuple[set[str], list[str]]:
    """The memories a late event's replay covers (every memory and title group joined to its own, to the
    fixpoint) and the keys of the history to replay, in merge order."""
    names = {f"i:{r[2:]}" if r.startswith("w:") else r for r in _refs_of(db, key)}
    keys: set[str] = set()
    while True:
        marks = ", ".join("?" * len(names))
        found = {str(r[0]) for r in db.execute(f"SELECT key FROM memory_history_refs WHERE ref IN ({marks})",
                                               tuple(names))}
        new_keys = found - keys
        if not new_keys:
            break
        keys |= new_keys
        marks = ", ".join("?" * len(new_keys))
        joined = {str(r[0]) for r in db.execute(
            f"SELECT ref FROM memory_history_refs WHERE key IN ({marks}) AND ref NOT LIKE 'w:%'", tuple(new_keys))}
        names |= joined
    ids = {n[2:] for n in names if n.startswith("i:")}
    # A weak event (a touch of many) is replayed for the memories of the closure only: it joins nothing.
    weak = {f"w:{i}" for i in ids}
    if weak:
        marks = ", ".join("?" * len(weak))
        keys |= {str(r[0]) for r in db.execute(f"SELECT key FROM memory_history_refs WHERE ref IN ({marks})",
                                                tuple(weak))}
    return ids, sorted(keys)


def replay(db: sqlite3.Connection, at: MergeStamp,
           apply: Callable[[MergeStamp, str, Mapping[str, Any], set[str]], str | None]) -> str | None:
    """Put the memories a late event touches back in the state the merge order gives: forget them (rows,
    claims, tombstones) and apply their history again, in merge order, through ``apply(stamp, type, payload,
    ids)`` (which returns why an event is refused). Returns the late event's own refusal."""
    ids, keys = _closure(db, at.key)
    holders = [(str(r[0]), str(r[1])) for r in db.execute(
        f"SELECT namespace, claim_title FROM memory_merge WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))]
    for table in ("memories", "memory_merge", "memory_tombstones"):
        db.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])
    refusal: str | None = None
    for key in keys:
        row = db.execute("SELECT partition, type, payload FROM memory_history WHERE key = ?", (key,)).fetchone()
        reason = apply(MergeStamp(str(row[0]), key), str(row[1]), json.loads(row[2]), ids)
        if key == at.key:
            refusal = reason
    for namespace, title in holders:  # a group that lost a memory to the replay shows its next claim
        resolve(db, namespace, title)
    return refusal


def title_conflicts(db: sqlite3.Connection) -> list[dict[str, str]]:
    """Memories kept under a conflict title because another region claimed theirs earlier, for operators."""
    rows = db.execute(
        "SELECT c.id, c.namespace, c.claim_title, c.claim_partition, m.title, "
        "(SELECT w.id FROM memory_merge w JOIN memories wm ON wm.id = w.id WHERE w.namespace = c.namespace "
        " AND w.claim_title = c.claim_title ORDER BY w.claim_key LIMIT 1) AS winner "
        "FROM memory_merge c JOIN memories m ON m.id = c.id WHERE m.title != c.claim_title ORDER BY c.id")
    return [{"id": r[0], "namespace": r[1], "claimed_title": r[2], "partition": r[3], "title": r[4],
             "held_by": r[5]} for r in rows]
