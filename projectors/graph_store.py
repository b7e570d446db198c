"""The knowledge graph's projection, written once for both read models (the SQL is portable: named
parameters, ``ON CONFLICT``, no JSON functions), run through a two-method :class:`Sql` adapter per backend.

Time travel is a query, not a replay: every row is a *version* that carries the log offsets between which it
held, ``from_offset <= N < until_offset`` (``until_offset`` NULL while current).

* ``graph_links``: one version per link per change. ``link.created`` closes the open version of the same
  (source, target, relation) and opens a new one; ``link.invalidated`` closes it and opens one with
  ``valid_until`` set (and, as the original does, the signature dropped: it no longer covers the row);
  ``link.deleted`` closes it. When a memory goes (deleted, forgotten, expired) every open link touching it is
  closed at that event's offset: the original's cascade, kept as history.
* ``graph_nodes``: what the graph shows of a memory (title, namespace, scope, author, kind, created_at), a new
  version whenever one of those changes, closed when the memory goes.
* ``entity_aliases``: an entity's aliases, each from the offset it was registered at.

An offset is the record's offset in its partition. The embedded and NATS logs have one partition, so ``as_of``
is exact there; on a Kafka log with several partitions it compares offsets of different partitions (current
answers are exact everywhere). Versions therefore have no key on the offset: two partitions may repeat one.

Appliers check before they write and raise :class:`~projectors.rules.Inapplicable` for events that cannot
apply. The memory events are applied by the memory domain first; the graph's appliers for them only follow.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from infra.log import LogRecord
from projectors import link_merge
from projectors.appliers import SqlApplier
from projectors.graph_walk import LinkRow, NodeRow
from projectors.merge_order import MergeStamp
from projectors.rules import Inapplicable, over_link_quota
from projectors.sql import Sql
from schemas.events import (
    ArchivePurged,
    EntityAliased,
    LinkCreated,
    LinkDeleted,
    LinkInvalidated,
    MemoryDeleted,
    MemoryExpired,
    MemoryForgotten,
    MemoryImported,
    MemoryRestored,
    MemoryStored,
    MemoryUpdated,
)

__all__ = ["APPLIERS", "CURRENT", "GRAPH_EVENT_TYPES", "LINK_COLUMNS", "NODE_COLUMNS", "apply_graph_event", "at_clause",
           "follow_replayed", "link_row", "node_row"]

#: "As of now": larger than any offset.
CURRENT = 1 << 62
LINK_COLUMNS = ("source_id, target_id, relation, created_at, valid_from, valid_until, observed_by, signature, "
                "attest_level")
NODE_COLUMNS = "id, title, namespace, scope, agent_id, kind, created_at"



def at_clause(alias: str) -> str:
    """The versions of table ``alias`` that held at offset ``:at``."""
    return f"{alias}.from_offset <= :at AND ({alias}.until_offset IS NULL OR {alias}.until_offset > :at)"


def link_row(r: Mapping[str, Any]) -> LinkRow:
    return LinkRow(r["source_id"], r["target_id"], r["relation"], r["created_at"], r["valid_from"],
                   r["valid_until"], r["observed_by"], r["signature"], r["attest_level"])


def node_row(r: Mapping[str, Any]) -> NodeRow:
    return NodeRow(r["id"], r["title"], r["namespace"], r["scope"], r["agent_id"], r["kind"], r["created_at"])


# -- links ------------------------------------------------------------------------------------------------

_KEY = "source_id = :s AND target_id = :t AND relation = :r"


def _open_link(sql: Sql, source_id: str, target_id: str, relation: str) -> Mapping[str, Any] | None:
    found = sql.rows(f"SELECT {LINK_COLUMNS} FROM graph_links WHERE {_KEY} AND until_offset IS NULL",
                     {"s": source_id, "t": target_id, "r": relation})
    return found[0] if found else None


def _close_link(sql: Sql, source_id: str, target_id: str, relation: str, offset: int) -> None:
    sql.run(f"UPDATE graph_links SET until_offset = :o WHERE {_KEY} AND until_offset IS NULL",
            {"s": source_id, "t": target_id, "r": relation, "o": offset})


def _insert_link(sql: Sql, link: LinkRow, offset: int) -> None:
    sql.run(f"INSERT INTO graph_links ({LINK_COLUMNS}, from_offset) VALUES (:source_id, :target_id, :relation, "
            ":created_at, :valid_from, :valid_until, :observed_by, :signature, :attest_level, :o)",
            {"source_id": link.source_id, "target_id": link.target_id, "relation": link.relation,
             "created_at": link.created_at, "valid_from": link.valid_from, "valid_until": link.valid_until,
             "observed_by": link.observed_by, "signature": link.signature, "attest_level": link.attest_level,
             "o": offset})


def _live_node(sql: Sql, memory_id: str) -> Mapping[str, Any] | None:
    found = sql.rows(f"SELECT {NODE_COLUMNS} FROM graph_nodes WHERE id = :id AND until_offset IS NULL",
                     {"id": memory_id})
    return found[0] if found else None


def _check_link_quota(sql: Sql, event: LinkCreated, record: LogRecord) -> None:
    """Refuse a metered link that would exceed its writer's links/day quota, counted in log order (the counter
    governance keeps, read here because the graph applies a link before governance charges it)."""
    if event.max_per_day is None:
        return
    agent, day = record.event.envelope.actor, record.event.envelope.ts[:10]
    found = sql.rows("SELECT links_today FROM agent_quotas WHERE agent_id = :a AND day = :d", {"a": agent, "d": day})
    current = int(found[0]["links_today"]) if found else 0
    if current + 1 > event.max_per_day:
        raise over_link_quota(agent, current, event.max_per_day)


def _link_created(sql: Sql, event: LinkCreated, offset: int) -> None:
    link = event.link
    if link.source_id == link.target_id:
        raise Inapplicable("cannot link a memory to itself")
    source = _live_node(sql, link.source_id)
    if source is None:
        raise Inapplicable(f"source memory not found: {link.source_id}")
    if _live_node(sql, link.target_id) is None:
        raise Inapplicable(f"target memory not found: {link.target_id}")
    _close_link(sql, link.source_id, link.target_id, link.relation, offset)
    # A link that names no valid_from holds since its source memory was created (the original's backfill).
    _insert_link(sql, LinkRow(link.source_id, link.target_id, link.relation, link.created_at,
                              link.valid_from or source["created_at"], link.valid_until, link.observed_by,
                              link.signature, link.attest_level), offset)


def _link_invalidated(sql: Sql, event: LinkInvalidated, offset: int) -> None:
    row = _open_link(sql, event.source_id, event.target_id, event.relation)
    if row is None:
        raise Inapplicable(f"link not found: ({event.source_id}, {event.relation}, {event.target_id})")
    old = link_row(row)
    _close_link(sql, event.source_id, event.target_id, event.relation, offset)
    _insert_link(sql, LinkRow(old.source_id, old.target_id, old.relation, old.created_at, old.valid_from,
                              event.valid_until, old.observed_by, None, "unsigned"), offset)


def _link_deleted(sql: Sql, event: LinkDeleted, offset: int) -> None:
    if _open_link(sql, event.source_id, event.target_id, event.relation) is None:
        raise Inapplicable(f"link not found: ({event.source_id}, {event.relation}, {event.target_id})")
    _close_link(sql, event.source_id, event.target_id, event.relation, offset)


def _settle_link(sql: Sql, key: link_merge.LinkKey, offset: int) -> None:
    """Show what the link's merged value gives (:mod:`projectors.link_merge`): a new version when it differs
    from the one shown, none while either memory is missing from the graph."""
    value = link_merge.folded(sql, key)
    wanted: LinkRow | None = None
    source = None if value is None else _live_node(sql, key[0])
    if value is not None and source is not None and _live_node(sql, key[1]) is not None:
        wanted = LinkRow(value.source_id, value.target_id, value.relation, value.created_at,
                         value.valid_from or source["created_at"], value.valid_until, value.observed_by,
                         value.signature, value.attest_level)
    current = _open_link(sql, *key)
    if (None if current is None else link_row(current)) == wanted:
        return
    if current is not None:
        _close_link(sql, *key, offset)
    if wanted is not None:
        _insert_link(sql, wanted, offset)


def _merged_link_event(sql: Sql, payload: LinkCreated | LinkInvalidated | LinkDeleted, record: LogRecord,
                       at: MergeStamp) -> None:
    """A link event on a log of several partitions: kept in the link's history, the link shown as its history
    gives. Only a self-link or a link over its writer's quota in its own partition is refused (every node
    agrees); a missing memory or link is reported as a refusal on this node, but the event stays in the
    history (the memory or the link's creation may still arrive from another region)."""
    key = link_merge.link_key(payload)
    if isinstance(payload, LinkCreated):
        if key[0] == key[1]:
            raise Inapplicable("cannot link a memory to itself")
        link_merge.charge_quota(sql, payload, record)
    shown_before = _open_link(sql, *key) is not None
    link_merge.record(sql, at, record, key)
    _settle_link(sql, key, record.offset)
    if isinstance(payload, LinkCreated):
        for end, name in ((key[0], "source"), (key[1], "target")):
            if _live_node(sql, end) is None:
                raise Inapplicable(f"{name} memory not found: {end}")
    elif not shown_before:
        raise Inapplicable(f"link not found: ({key[0]}, {key[2]}, {key[1]})")


def _settle_links_of(sql: Sql, memory_ids: list[str], offset: int) -> None:
    """A memory appeared in the graph: the links that waited for it show (on a log of several partitions)."""
    if link_merge.merging(sql) is not None:
        for key in link_merge.touching(sql, memory_ids):
            _settle_link(sql, key, offset)


def _entity_aliased(sql: Sql, event: EntityAliased, offset: int) -> None:
    node = _live_node(sql, event.entity_id)
    if node is None or node["kind"] != "entity":
        raise Inapplicable(f"entity not found: {event.entity_id}")
    for alias in dict.fromkeys(a.strip() for a in event.aliases):
        if alias:
            sql.run("INSERT INTO entity_aliases (entity_id, alias, created_at, from_offset) "
                    "VALUES (:e, :a, :c, :o) ON CONFLICT DO NOTHING",
                    {"e": event.entity_id, "a": alias, "c": event.created_at, "o": offset})


# -- memories (after the memory domain applied the event) -------------------------------------------------


def _metadata(value: Any) -> dict[str, Any]:
    """The metadata column: JSON text on SQLite, already decoded (jsonb) on Postgres."""
    decoded = json.loads(value) if isinstance(value, str) else value
    return decoded if isinstance(decoded, dict) else {}


_MEMORY_NODE = "SELECT id, title, namespace, created_at, metadata FROM memories WHERE "


def _refresh_node(sql: Sql, memory_id: str, offset: int, *, title_in: tuple[str, str] | None = None) -> None:
    """Open a new version of the memory's graph node if what the graph shows of it changed.

    ``title_in``: (title, namespace) of a store, which lands on the memory holding that title when it merged.
    The lookup by id comes first (one primary-key probe, the common case of a new memory)."""
    found = sql.rows(_MEMORY_NODE + "id = :id", {"id": memory_id})
    if not found and title_in is not None:
        found = sql.rows(_MEMORY_NODE + "title = :t AND namespace = :n", {"t": title_in[0], "n": title_in[1]})
    if not found:
        return
    m = found[0]
    meta = _metadata(m["metadata"])
    agent, kind = meta.get("agent_id"), meta.get("kind")
    fresh = NodeRow(m["id"], m["title"], m["namespace"], str(meta.get("scope") or "private"),
                    agent if isinstance(agent, str) else None, kind if isinstance(kind, str) else None,
                    m["created_at"])
    current = _live_node(sql, fresh.id)
    if current is not None:
        if node_row(current) == fresh:
            return
        sql.run("UPDATE graph_nodes SET until_offset = :o WHERE id = :id AND until_offset IS NULL",
                {"id": fresh.id, "o": offset})
    sql.run(f"INSERT INTO graph_nodes ({NODE_COLUMNS}, from_offset) VALUES (:id, :title, :namespace, :scope, "
            ":agent_id, :kind, :created_at, :o)",
            {"id": fresh.id, "title": fresh.title, "namespace": fresh.namespace, "scope": fresh.scope,
             "agent_id": fresh.agent_id, "kind": fresh.kind, "created_at": fresh.created_at, "o": offset})
    if current is None or current["created_at"] != fresh.created_at:
        _settle_links_of(sql, [fresh.id], offset)


def _close_gone(sql: Sql, ids: list[str], offset: int) -> None:
    """The memories among ``ids`` that no longer exist, live or archived, leave the graph with every link
    touching them. An archived memory stays: the derived_from links of a consolidation point at its archived
    sources, and that provenance must outlive the archive (a purge ends it)."""
    for memory_id in dict.fromkeys(ids):
        if _live_node(sql, memory_id) is None or any(
                sql.rows(f"SELECT id FROM {table} WHERE id = :id", {"id": memory_id})
                for table in ("memories", "archived_memories")):
            continue
        params = {"id": memory_id, "o": offset}
        sql.run("UPDATE graph_nodes SET until_offset = :o WHERE id = :id AND until_offset IS NULL", params)
        sql.run("UPDATE graph_links SET until_offset = :o WHERE source_id = :id AND until_offset IS NULL", params)
        sql.run("UPDATE graph_links SET until_offset = :o WHERE target_id = :id AND until_offset IS NULL", params)


def follow_replayed(sql: Sql, memory_ids: Collection[str], offset: int) -> None:
    """After a late memory event replayed ``memory_ids`` in merge order (:mod:`projectors.convergence`): their
    graph nodes show what the memories now are, and their links follow (a memory that went closes them, one
    that came back lets them show)."""
    for memory_id in sorted(memory_ids):
        _refresh_node(sql, memory_id, offset)
    _close_gone(sql, sorted(memory_ids), offset)


def apply_graph_event(sql: Sql, payload: Any, record: LogRecord) -> None:
    """Apply one event to the graph tables (any event type; those the graph keeps nothing of are ignored)."""
    offset = record.offset
    if isinstance(payload, LinkCreated | LinkInvalidated | LinkDeleted) and (at := link_merge.merging(sql)):
        _merged_link_event(sql, payload, record, at)
        return
    match payload:
        case LinkCreated():
            _check_link_quota(sql, payload, record)
            _link_created(sql, payload, offset)
        case LinkInvalidated():
            _link_invalidated(sql, payload, offset)
        case LinkDeleted():
            _link_deleted(sql, payload, offset)
        case EntityAliased():
            _entity_aliased(sql, payload, offset)
        case MemoryStored() | MemoryImported():
            # A merge on (title, namespace) lands on the existing memory, under its own id.
            m = payload.memory
            _refresh_node(sql, m.id, offset, title_in=(m.title, m.namespace))
        case MemoryUpdated():
            _refresh_node(sql, payload.id, offset)
        case MemoryRestored():
            _refresh_node(sql, payload.memory.id, offset)
        case ArchivePurged():
            _close_gone(sql, list(payload.ids), offset)
        case MemoryDeleted():
            _close_gone(sql, [payload.id], offset)
        case MemoryForgotten() | MemoryExpired():
            _close_gone(sql, list(payload.ids), offset)
        case _:
            pass


#: The event types the graph follows (its own, and the memory events that change which memories exist).
GRAPH_EVENT_TYPES: tuple[str, ...] = (
    LinkCreated.TYPE, LinkInvalidated.TYPE, LinkDeleted.TYPE, EntityAliased.TYPE, MemoryStored.TYPE,
    MemoryImported.TYPE, MemoryUpdated.TYPE, MemoryDeleted.TYPE, MemoryForgotten.TYPE, MemoryExpired.TYPE,
    MemoryRestored.TYPE, ArchivePurged.TYPE,
)

#: One applier for every type the graph follows (:func:`apply_graph_event` dispatches on the payload).
APPLIERS: dict[str, SqlApplier] = dict.fromkeys(GRAPH_EVENT_TYPES, apply_graph_event)
