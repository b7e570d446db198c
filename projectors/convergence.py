"""Convergence of a read model across partitions (regions): merge stamps, title claims, late events; the same
logic on SQLite and Postgres, over :class:`~projectors.sql.Sql` (named parameters).

With one partition every rule here reduces to today's log-order rules (keys increase along the log, so no event
is ever late; every claim comes from the one partition). With several, the memories after a set of events do not
depend on the interleaving in which a node read them (see :mod:`projectors.merge_order` and docs/regions.md,
"Convergence"):

* each memory's *claim* (namespace, claimed title, partition, key of the event that claimed it) is kept in
  ``memory_merge``; a store decides against the holder of its title *in its own partition* (today's
  on_conflict rules); the claims of one title from several partitions are resolved as a function of the set
  alone: the earliest merge key shows the title, the others are kept under their ids with
  :func:`~projectors.merge_order.conflict_title` (the operator's list: :func:`title_conflicts`);
* memory events are kept by merge key with what they depend on (``memory_history``); an event that shares a
  memory or title group with one already applied but precedes it in merge order (*late*) makes the node replay
  those memories' history in merge order (:func:`replay`), so every node ends where the merge order leads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from infra.log import LogRecord
from projectors.merge_order import (
    APPLYING,
    VOIDED,
    MergeStamp,
    Refs,
    applying,
    conflict_title,
    memory_refs,
    merge_key,
    next_stamp,
    register_of,
    replay_payload,
    title_group,
)
from projectors.rules import title_clash
from projectors.sql import Sql, in_list
from schemas import shift_ts

__all__ = ["apply_event", "claim_holder", "claim_of", "claim_update", "drop_claim", "is_late", "joins", "mark_of",
           "memory_replayer", "move_claim", "record_claim", "record_event", "replay", "resolve", "retract", "set_mark",
           "settle", "several_partitions", "stamp", "title_conflicts"]

#: Applies one kept memory event again during a replay: (stamp, type, payload, the replayed memories) → why it
#: was refused, or None.
ReplayFn = Callable[[MergeStamp, str, Mapping[str, Any], set[str]], str | None]


def stamp(sql: Sql, record: LogRecord, *, partitioned: bool = False) -> MergeStamp:
    """The record's merge position; advances its partition's stamp (in the caller's transaction). Every
    partition's mark is read at once (a handful of rows), so the stamp also tells whether several partitions
    were seen, which the appliers ask of every memory and link event."""
    marks = {str(r["partition"]): str(r["stamp"]) for r in sql.rows("SELECT partition, stamp FROM merge_marks", {})}
    current = next_stamp(record.event.envelope.ts, marks.get(record.partition))
    sql.run("INSERT INTO merge_marks (partition, stamp) VALUES (:p, :s) "
            "ON CONFLICT (partition) DO UPDATE SET stamp = excluded.stamp", {"p": record.partition, "s": current})
    return MergeStamp(record.partition, merge_key(current, record.partition, record.offset), partitioned=partitioned,
                      several=len(marks.keys() | {record.partition}) > 1)


def several_partitions(sql: Sql, at: MergeStamp) -> bool:
    """Whether the read model has seen more than one partition (``at`` says so when its stamp counted them)."""
    if at.several is not None:
        return at.several
    return int(sql.rows("SELECT count(*) AS n FROM merge_marks", {})[0]["n"]) > 1


def claim_holder(sql: Sql, title: str, namespace: str, partition: str) -> str | None:
    """The live memory that claimed (namespace, title) in ``partition``: whom that partition's stores clash
    with (with one partition: the memory holding the title)."""
    rows = sql.rows("SELECT c.id FROM memory_merge c JOIN memories m ON m.id = c.id WHERE c.namespace = :n "
                    "AND c.claim_title = :t AND c.claim_partition = :p", {"n": namespace, "t": title, "p": partition})
    return str(rows[0]["id"]) if rows else None


def record_claim(sql: Sql, memory_id: str, title: str, namespace: str, key: MergeStamp) -> None:
    sql.run("INSERT INTO memory_merge (id, namespace, claim_title, claim_partition, claim_key) "
            "VALUES (:id, :n, :t, :p, :k) ON CONFLICT (id) DO UPDATE SET namespace = excluded.namespace, "
            "claim_title = excluded.claim_title, claim_partition = excluded.claim_partition, "
            "claim_key = excluded.claim_key",
            {"id": memory_id, "n": namespace, "t": title, "p": key.partition, "k": key.key})


def claim_of(sql: Sql, memory_id: str) -> tuple[str, str] | None:
    """(namespace, claimed title) of a memory."""
    rows = sql.rows("SELECT namespace, claim_title FROM memory_merge WHERE id = :id", {"id": memory_id})
    return (str(rows[0]["namespace"]), str(rows[0]["claim_title"])) if rows else None


def move_claim(sql: Sql, memory_id: str, title: str, namespace: str) -> tuple[str, str] | None:
    """The memory now claims (namespace, title) for the event being applied; returns its old claim."""
    key, old = applying(), claim_of(sql, memory_id)
    sql.run("UPDATE memory_merge SET namespace = :n, claim_title = :t, claim_partition = :p, claim_key = :k "
            "WHERE id = :id", {"n": namespace, "t": title, "p": key.partition, "k": key.key, "id": memory_id})
    return old


def claim_update(sql: Sql, memory_id: str, sets: dict[str, Any], shown: Mapping[str, Any]) -> Callable[[], None]:
    """Check an update's (namespace, title) against its partition's claims (raises the title clash) and adjust
    ``sets`` to what the row shows until the claims are resolved; returns what to run once the row is updated.
    ``shown`` is the row's current title and namespace."""
    claim = claim_of(sql, memory_id) or (str(shown["namespace"]), str(shown["title"]))
    namespace, title = sets.get("namespace", claim[0]), sets.get("title", claim[1])
    # Only a move can clash: a memory keeping its claim keeps it even where the claim came from another
    # partition than the update (whose own partition may have a holder of that title of its own).
    holder = None if (namespace, title) == claim else claim_holder(sql, title, namespace, applying().partition)
    if holder is not None and holder != memory_id:
        raise title_clash(title, namespace, holder)
    if "title" in sets or "namespace" in sets:
        joins(sql, memory_id)
    if (namespace, title) == claim:  # the claim stays; so does the title shown (a conflict title, maybe)
        sets.update({name: shown[name] for name in ("title", "namespace") if name in sets})
        return lambda: None
    sets["title"] = conflict_title(title, memory_id)  # held by no one: the unique index never sees two

    def settle() -> None:
        move_claim(sql, memory_id, title, namespace)
        resolve(sql, namespace, title)
        resolve(sql, *claim)

    return settle


def drop_claim(sql: Sql, memory_id: str) -> None:
    """The memory is gone: its claim too, and the next claim of its title shows it."""
    joins(sql, memory_id)
    old = claim_of(sql, memory_id)
    sql.run("DELETE FROM memory_merge WHERE id = :id", {"id": memory_id})
    if old is not None:
        resolve(sql, *old)


def resolve(sql: Sql, namespace: str, title: str) -> None:
    """Show ``title`` on the earliest live claim of it (merge order) and the conflict title on the others: a
    function of the set of claims, so every interleaving ends the same. Losers first, so the unique
    (title, namespace) index never sees two holders."""
    ids = [str(r["id"]) for r in sql.rows(
        "SELECT c.id FROM memory_merge c JOIN memories m ON m.id = c.id WHERE c.namespace = :n "
        "AND c.claim_title = :t ORDER BY c.claim_key", {"n": namespace, "t": title})]
    for loser in ids[1:]:
        sql.run("UPDATE memories SET title = :c WHERE id = :id AND title != :c",
                {"c": conflict_title(title, loser), "id": loser})
    if ids:
        sql.run("UPDATE memories SET title = :t, namespace = :n WHERE id = :id AND (title != :t OR namespace != :n)",
                {"t": title, "n": namespace, "id": ids[0]})


def record_event(sql: Sql, at: MergeStamp, event_type: str, payload: Mapping[str, Any], refs: Refs) -> None:
    """Keep a memory event in the history its memories and title groups are replayed from."""
    sql.run("INSERT INTO memory_history (key, partition, type, payload) VALUES (:k, :p, :t, :b) "
            "ON CONFLICT DO NOTHING",
            {"k": at.key, "p": at.partition, "t": event_type, "b": json.dumps(payload, sort_keys=True)})
    _add_refs(sql, at.key, _ref_names(refs))


def _add_refs(sql: Sql, key: str, names: Collection[str]) -> None:
    for name in names:
        sql.run("INSERT INTO memory_history_refs (ref, key) VALUES (:r, :k) ON CONFLICT DO NOTHING",
                {"r": name, "k": key})


def _ref_names(refs: Refs) -> list[str]:
    return [*(f"i:{i}" for i in refs.ids), *(f"g:{g}" for g in refs.groups), *(f"w:{i}" for i in refs.weak_ids)]


def _refs_of(sql: Sql, key: str) -> set[str]:
    return {str(r["ref"]) for r in sql.rows("SELECT ref FROM memory_history_refs WHERE key = :k", {"k": key})}


def _keys_with(sql: Sql, names: Collection[str], *, after: str | None = None) -> set[str]:
    marks, params = in_list(names)
    later = "" if after is None else " AND key > :after"
    return {str(r["key"]) for r in sql.rows(f"SELECT key FROM memory_history_refs WHERE ref IN ({marks}){later}",
                                            {**params, "after": after})}


def is_late(sql: Sql, at: MergeStamp) -> bool:
    """Whether the event just applied (its refs include the memories it joined while applied) shares a memory
    (changed strongly or by a touch) or a title group with an event later in merge order: never, with one
    partition, whose keys increase along the log."""
    names: set[str] = set()
    for ref in _refs_of(sql, at.key):
        kind, _, name = ref.partition(":")
        names |= {f"i:{name}", f"w:{name}"} if kind in ("i", "w") else {ref}
    return bool(names) and bool(_keys_with(sql, names, after=at.key))


def joins(sql: Sql, memory_id: str) -> None:
    """The event being applied changes ``memory_id`` and its claim beyond what its payload names (a store
    merged into the holder of its title; a delete or rename that frees a title): its history joins that
    memory's and its title group's, so a store of that title earlier in merge order that arrives later is late."""
    claim = claim_of(sql, memory_id)
    _add_refs(sql, applying().key, [f"i:{memory_id}", *([] if claim is None else [f"g:{title_group(claim[1])}"])])


def _closure(sql: Sql, key: str) -> tuple[set[str], list[str]]:
    """The memories a late event's replay covers (every memory and title group joined to its own, to the
    fixpoint) and the keys of the history to replay, in merge order."""
    names = {f"i:{r[2:]}" if r.startswith("w:") else r for r in _refs_of(sql, key)}
    keys: set[str] = set()
    while new_keys := _keys_with(sql, names) - keys:
        keys |= new_keys
        marks, params = in_list(new_keys)
        names |= {str(r["ref"]) for r in sql.rows(
            f"SELECT ref FROM memory_history_refs WHERE key IN ({marks}) AND ref NOT LIKE 'w:%'", params)}
    ids = {n[2:] for n in names if n.startswith("i:")}
    # A weak event (a touch of many) is replayed for the memories of the closure only: it joins nothing.
    if ids:
        keys |= _keys_with(sql, {f"w:{i}" for i in ids})
    return ids, sorted(keys)


def retract(sql: Sql, causes: Collection[str], apply: ReplayFn) -> set[str]:
    """Undo the memory events that carried out the decisions ``causes`` (displaced by a decision earlier in merge
    order, :mod:`projectors.pending_merge`): they leave the history, and the memories they touched are replayed
    without them, as on a node that refused them. Returns the memories replayed."""
    voided = _keys_with(sql, [f"c:{cause}" for cause in causes])
    if not voided:
        return set()
    ids: set[str] = set()
    keys: set[str] = set()
    for key in voided:
        more_ids, more_keys = _closure(sql, key)
        ids |= more_ids
        keys |= set(more_keys)
    marks, params = in_list(voided)
    for table in ("memory_history_refs", "memory_history"):
        sql.run(f"DELETE FROM {table} WHERE key IN ({marks})", params)
    if ids:
        _rerun(sql, ids, sorted(keys - voided), apply)
    return ids


#: What a replay forgets and applies again, with the columns a settled copy keeps (``settled_<table>``: the
#: memories' own columns, not the generated ones; the vector, whose memory.embedded event may be settled too).
SETTLED: dict[str, str] = {
    "memories": "id, tier, namespace, title, content, tags, priority, confidence, source, access_count, created_at, "
                "updated_at, last_accessed_at, expires_at, metadata",
    "memory_vectors": "id, model, dim, vector",
    "memory_merge": "id, namespace, claim_title, claim_partition, claim_key",
    "memory_tombstones": "id",
}


def _rerun(sql: Sql, ids: Collection[str], keys: list[str], apply: ReplayFn, *,
           settle_before: str | None = None) -> dict[str, str | None]:
    """Forget the memories ``ids`` (rows, claims, tombstones), start again from their settled copies (what their
    pruned history gave) and apply the history ``keys`` in merge order; with ``settle_before``, the copies are
    taken again once every key before it is applied. Returns each key's refusal."""
    marks, params = in_list(ids)
    holders = [(str(r["namespace"]), str(r["claim_title"])) for r in sql.rows(
        f"SELECT namespace, claim_title FROM memory_merge WHERE id IN ({marks})", params)]
    for table, columns in SETTLED.items():
        sql.run(f"DELETE FROM {table} WHERE id IN ({marks})", params)
        if table == "memories":
            _restore_memories(sql, marks, params)
        else:
            sql.run(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM settled_{table} WHERE id IN ({marks})",
                    params)
    reasons: dict[str, str | None] = {}
    for key in keys:
        if settle_before is not None and key >= settle_before:
            _copy_settled(sql, marks, params)
            settle_before = None
        row = sql.rows("SELECT partition, type, payload FROM memory_history WHERE key = :k", {"k": key})[0]
        reasons[key] = apply(MergeStamp(str(row["partition"]), key), str(row["type"]), json.loads(row["payload"]),
                             set(ids))
    if settle_before is not None:
        _copy_settled(sql, marks, params)
    holders += [(str(r["namespace"]), str(r["claim_title"])) for r in sql.rows(
        f"SELECT namespace, claim_title FROM memory_merge WHERE id IN ({marks})", params)]
    # A group that lost a memory to the replay shows its next claim; one a settled copy came back to under a
    # placeholder title (_restore_memories) gives its titles out again.
    for namespace, title in dict.fromkeys(holders):
        resolve(sql, namespace, title)
    return reasons


def _restore_memories(sql: Sql, marks: str, params: Mapping[str, str]) -> None:
    """Put the settled copies of the memories back. A copy's title may be shown by a memory outside the replay
    by now (the settled events that tied the two into one closure are gone): such a copy comes back under a
    placeholder, unique by its id, until :func:`resolve` gives its group's titles out at the end of the replay.
    One memory per statement, so that the test sees the copies put back before it."""
    columns = SETTLED["memories"]
    chosen = ", ".join(_TITLE_UNLESS_SHOWN if c.strip() == "title" else f"s.{c.strip()}" for c in columns.split(","))
    for row in sql.rows(f"SELECT id FROM settled_memories WHERE id IN ({marks}) ORDER BY id", params):
        sql.run(f"INSERT INTO memories ({columns}) SELECT {chosen} FROM settled_memories s WHERE s.id = :id",
                {"id": row["id"]})


_TITLE_UNLESS_SHOWN = ("CASE WHEN EXISTS (SELECT 1 FROM memories o WHERE o.namespace = s.namespace "
                       "AND o.title = s.title) THEN s.title || ' (settled ' || s.id || ')' ELSE s.title END")


def _copy_settled(sql: Sql, marks: str, params: Mapping[str, str]) -> None:
    for table, columns in SETTLED.items():
        sql.run(f"DELETE FROM settled_{table} WHERE id IN ({marks})", params)
        sql.run(f"INSERT INTO settled_{table} ({columns}) SELECT {columns} FROM {table} WHERE id IN ({marks})", params)


def replay(sql: Sql, at: MergeStamp, apply: ReplayFn) -> tuple[str | None, set[str]]:
    """Put the memories a late event touches back in the state the merge order gives: forget them and apply
    their history again, in merge order, through ``apply``. Returns the late event's own refusal and the
    memories replayed."""
    ids, keys = _closure(sql, at.key)
    return _rerun(sql, ids, keys, apply).get(at.key), ids


def settle(sql: Sql, apply: ReplayFn, *, horizon_s: float, least: int = 100, most: int = 1000) -> int:
    """Bound the memory history: the events older than the *horizon* are folded into settled copies of their
    memories and dropped, once at least ``least`` of them wait (at most ``most`` at a time).

    The horizon is the oldest partition's last stamp (every partition's later events stamp past its last one,
    so none of them can precede it), or the newest stamp less ``horizon_s`` when that is later: a region that
    writes nothing, or is cut off, then holds the history back by ``horizon_s`` at most, and an event stamped
    more than ``horizon_s`` before the newest this node has read is merged against the settled state instead
    of in its place. Each group of memories replayed together is settled at once by one replay: its history up
    to the horizon applied on its settled copies, copied again, then the rest. Returns how many events were
    dropped."""
    stamps = [str(r["stamp"]) for r in sql.rows("SELECT stamp FROM merge_marks", {})]
    if not stamps:
        return 0
    horizon = max(min(stamps), shift_ts(max(stamps), -horizon_s))
    old = [str(r["key"]) for r in sql.rows("SELECT key FROM memory_history WHERE key < :h ORDER BY key LIMIT :n",
                                           {"h": horizon, "n": most})]
    if len(old) < least:
        return 0
    dropped = 0
    done: set[str] = set()
    for key in old:
        if key in done:
            continue
        ids, keys = _closure(sql, key)
        if ids:
            _rerun(sql, ids, keys, apply, settle_before=horizon)
        settled = [k for k in keys if k < horizon] or [key]
        done |= set(keys)
        dropped += _drop_settled(sql, settled, ids)
    return dropped


def _drop_settled(sql: Sql, keys: list[str], ids: Collection[str]) -> int:
    """Drop what the settled copies of ``ids`` now hold: the refs of ``keys`` to them and to their title groups
    (a touch of other memories too keeps its refs to those), then the events no ref is left to."""
    key_marks, key_params = in_list(keys, "k")
    names = [*(f"i:{i}" for i in ids), *(f"w:{i}" for i in ids)]
    ref_marks, ref_params = in_list(names, "r") if names else ("''", {})
    sql.run(f"DELETE FROM memory_history_refs WHERE key IN ({key_marks}) AND (ref IN ({ref_marks}) "
            "OR ref LIKE 'g:%')", {**key_params, **ref_params})
    return sql.run(f"DELETE FROM memory_history WHERE key IN ({key_marks}) AND NOT EXISTS "
                   "(SELECT 1 FROM memory_history_refs r WHERE r.key = memory_history.key)", key_params)


def title_conflicts(sql: Sql) -> list[dict[str, str]]:
    """Memories kept under a conflict title because another region claimed theirs earlier, for operators."""
    return [{k: str(v) for k, v in r.items()} for r in sql.rows(
        "SELECT c.id, c.namespace, c.claim_title AS claimed_title, c.claim_partition AS partition, m.title, "
        "(SELECT w.id FROM memory_merge w JOIN memories wm ON wm.id = w.id WHERE w.namespace = c.namespace "
        " AND w.claim_title = c.claim_title ORDER BY w.claim_key LIMIT 1) AS held_by "
        "FROM memory_merge c JOIN memories m ON m.id = c.id WHERE m.title != c.claim_title ORDER BY c.id", {})]


def apply_event(sql: Sql, record: LogRecord, payload: Any, apply: Callable[[], None],
                apply_memory: Callable[[str, Any], None], refused: tuple[type[Exception], ...], *,
                partitioned: bool = True, replayed: Callable[[set[str]], None] = lambda ids: None) -> str | None:
    """Apply one decoded event at its merge position (how both read models apply every event): ``apply`` runs
    every domain's applier as today; when a memory event turns out late, its memories are replayed in merge
    order through ``apply_memory(type, payload)`` (the memory domain alone), then ``replayed(ids)`` lets the
    domains that follow memories (the graph) catch up with the replayed ones. Returns why the event was
    refused (an exception of ``refused``), or None. Without ``partitioned`` (a log of one partition) no
    history is kept unless a second partition shows up after all."""
    at = stamp(sql, record, partitioned=partitioned)
    register = register_of(payload)
    if register is not None and not _newest_in(sql, register, at):
        return None  # an older write of a register another region has since set: it changes nothing
    token, voided = APPLYING.set(at), VOIDED.set([])
    try:
        envelope = record.event.envelope
        refs = memory_refs(payload)
        # Counted once per memory event (this event's partition is already marked by its stamp).
        several = refs is not None and several_partitions(sql, at)
        if refs is not None and (partitioned or several):
            record_event(sql, at, envelope.type, envelope.payload, refs)
            if envelope.cause is not None:  # what a decision ran, undone if another region's decided first
                _add_refs(sql, at.key, [f"c:{envelope.cause}"])
        reason: str | None = None
        try:
            apply()
        except refused as exc:
            reason = str(exc)
        again = memory_replayer(apply_memory, refused)
        # One partition (today's deployments): keys increase along the log, nothing is ever late.
        if several and is_late(sql, at):
            reason, ids = replay(sql, at, again)
            replayed(ids)
        if displaced := VOIDED.get():
            replayed(retract(sql, displaced, again))
        return reason
    finally:
        VOIDED.reset(voided)
        APPLYING.reset(token)


def mark_of(sql: Sql, name: str) -> str | None:
    """The merge key recorded under ``name`` (a register's latest write, or a domain's mark), or None."""
    rows = sql.rows("SELECT key FROM merge_registers WHERE name = :n", {"n": name})
    return str(rows[0]["key"]) if rows else None


def set_mark(sql: Sql, name: str, key: str) -> None:
    sql.run("INSERT INTO merge_registers (name, key) VALUES (:n, :k) ON CONFLICT (name) DO UPDATE SET key = "
            "excluded.key", {"n": name, "k": key})


def memory_replayer(apply_memory: Callable[[str, Any], None], refused: tuple[type[Exception], ...]) -> ReplayFn:
    """How a replay applies one kept memory event: the memory domain's applier, at the event's merge position,
    for the replayed memories alone."""
    return lambda again, kind, raw, ids: _again(again, lambda: apply_memory(kind, replay_payload(kind, raw, ids)),
                                                refused)


def _newest_in(sql: Sql, register: str, at: MergeStamp) -> bool:
    """Whether the event is the latest write of ``register`` by merge order so far (then it is recorded as such)."""
    latest = mark_of(sql, register)
    if latest is not None and latest > at.key:
        return False
    set_mark(sql, register, at.key)
    return True


def _again(at: MergeStamp, apply: Callable[[], None], refused: tuple[type[Exception], ...]) -> str | None:
    token = APPLYING.set(at)
    try:
        apply()
    except refused as exc:
        return str(exc)
    finally:
        APPLYING.reset(token)
    return None
