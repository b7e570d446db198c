"""Links across partitions (regions): what one link (source, target, relation) shows is a function of the set of
its events, whatever order a node reads the partitions in (issue #16, item 2; docs/regions.md "Convergence").

* Every link event is kept by merge key (``link_history``). A link's value is its events *folded in merge
  order*: ``link.created`` sets it, ``link.invalidated`` sets ``valid_until`` on the value it finds (and drops
  the signature), ``link.deleted`` clears it; an invalidation or deletion that finds nothing at its place in
  merge order does nothing. The latest write in merge order wins, a deletion later than a creation wins over it.
* A link shows while its value is set and both its memories are in the graph; a memory that goes closes it
  (tombstones win: a deleted memory never comes back, so neither does the link), a memory not seen yet on this
  node (its store is still on its way from another region) leaves the link waiting for it.
* Whether a ``link.created`` is accepted depends on its own partition's prefix alone (not a self-link, within
  its writer's links/day quota counted per origin partition, ``link_quota_marks``), so every node charges and
  refuses the same links.

The graph's versions (``graph_links``) follow what this node showed when: exact for ``as_of`` with one
partition, arrival order with several (see :mod:`projectors.graph_store`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from infra.log import LogRecord
from projectors.convergence import several_partitions
from projectors.merge_order import APPLYING, MergeStamp
from projectors.rules import over_link_quota
from projectors.sql import Sql
from schemas import decode_payload
from schemas.events import Link, LinkCreated, LinkDeleted, LinkInvalidated

__all__ = ["LinkKey", "charge_quota", "folded", "link_conflicts", "link_key", "merging", "record", "touching"]

#: (source_id, target_id, relation).
LinkKey = tuple[str, str, str]
_KEY = "source_id = :s AND target_id = :t AND relation = :r"


def merging(sql: Sql) -> MergeStamp | None:
    """The merge position of the event being applied when links follow merge order: the read model keeps
    history (a log that may have several partitions) or has seen several partitions; None for a log of one
    partition, whose links keep today's arrival-order rules (the same, in log order)."""
    at = APPLYING.get()
    if at is None:
        return None
    if at.partitioned or several_partitions(sql, at):
        return at
    return None


def link_key(payload: LinkCreated | LinkInvalidated | LinkDeleted) -> LinkKey:
    if isinstance(payload, LinkCreated):
        return payload.link.source_id, payload.link.target_id, payload.link.relation
    return payload.source_id, payload.target_id, payload.relation


def _params(key: LinkKey) -> dict[str, str]:
    return {"s": key[0], "t": key[1], "r": key[2]}


def charge_quota(sql: Sql, event: LinkCreated, record: LogRecord) -> None:
    """Count the link against its writer's links/day in its origin partition, refusing it over a metered quota:
    a partition is read in the same order by every node, so every node refuses the same links."""
    agent, day = record.event.envelope.actor, record.event.envelope.ts[:10]
    params = {"a": agent, "d": day, "p": record.partition}
    found = sql.rows("SELECT links FROM link_quota_marks WHERE agent_id = :a AND day = :d AND partition = :p", params)
    current = int(found[0]["links"]) if found else 0
    if event.max_per_day is not None and current + 1 > event.max_per_day:
        raise over_link_quota(agent, current, event.max_per_day)
    sql.run("INSERT INTO link_quota_marks (agent_id, day, partition, links) VALUES (:a, :d, :p, 1) "
            "ON CONFLICT (agent_id, day, partition) DO UPDATE SET links = link_quota_marks.links + 1", params)


def record(sql: Sql, at: MergeStamp, record: LogRecord, key: LinkKey) -> None:
    """Keep a link event at its merge key."""
    envelope = record.event.envelope
    sql.run("INSERT INTO link_history (key, partition, source_id, target_id, relation, type, payload) "
            "VALUES (:k, :p, :s, :t, :r, :type, :b) ON CONFLICT DO NOTHING",
            {"k": at.key, "p": at.partition, **_params(key), "type": envelope.type,
             "b": json.dumps(envelope.payload, sort_keys=True)})


def folded(sql: Sql, key: LinkKey) -> Link | None:
    """The link's value: its events folded in merge order. Only the last creation or deletion matters, and the
    last invalidation after a creation (each sets ``valid_until`` whole), so two probes of the link's history
    by merge key suffice, however long it is."""
    last = sql.rows(f"SELECT key, type, payload FROM link_history WHERE {_KEY} AND type IN (:created, :deleted) "
                    "ORDER BY key DESC LIMIT 1", {**_params(key), "created": LinkCreated.TYPE,
                                                  "deleted": LinkDeleted.TYPE})
    if not last or str(last[0]["type"]) != LinkCreated.TYPE:
        return None
    created = decode_payload(LinkCreated.TYPE, json.loads(last[0]["payload"]))
    assert isinstance(created, LinkCreated)
    invalidated = sql.rows(f"SELECT payload FROM link_history WHERE {_KEY} AND type = :type AND key > :after "
                           "ORDER BY key DESC LIMIT 1",
                           {**_params(key), "type": LinkInvalidated.TYPE, "after": last[0]["key"]})
    if not invalidated:
        return created.link
    until = decode_payload(LinkInvalidated.TYPE, json.loads(invalidated[0]["payload"]))
    assert isinstance(until, LinkInvalidated)
    return replace(created.link, valid_until=until.valid_until, signature=None, attest_level="unsigned")


def touching(sql: Sql, memory_ids: Collection[str]) -> list[LinkKey]:
    """The links with history whose source or target is among ``memory_ids``."""
    keys: dict[LinkKey, None] = {}
    for memory_id in memory_ids:
        for row in sql.rows("SELECT DISTINCT source_id, target_id, relation FROM link_history "
                            "WHERE source_id = :id OR target_id = :id", {"id": memory_id}):
            keys[(str(row["source_id"]), str(row["target_id"]), str(row["relation"]))] = None
    return list(keys)


def link_conflicts(sql: Sql, *, limit: int = 100) -> list[dict[str, Any]]:
    """Links written from several regions (concurrent writes merged by merge order), for operators: the link,
    the regions that wrote it, and the event that holds it (the latest in merge order)."""
    rows = sql.rows("SELECT source_id, target_id, relation, count(DISTINCT partition) AS regions, max(key) AS held "
                    "FROM link_history GROUP BY source_id, target_id, relation HAVING count(DISTINCT partition) > 1 "
                    "ORDER BY source_id, target_id, relation LIMIT :limit", {"limit": limit})
    out: list[dict[str, Any]] = []
    for r in rows:
        key: LinkKey = (str(r["source_id"]), str(r["target_id"]), str(r["relation"]))
        last = sql.rows("SELECT partition, type FROM link_history WHERE key = :k", {"k": r["held"]})[0]
        partitions = sorted(str(p["partition"]) for p in sql.rows(
            f"SELECT DISTINCT partition FROM link_history WHERE {_KEY}", _params(key)))
        out.append({"source_id": key[0], "target_id": key[1], "relation": key[2], "regions": partitions,
                    "held_by": {"region": str(last["partition"]), "type": str(last["type"])}})
    return out
