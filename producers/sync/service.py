"""Sync with peers: vector clocks from offsets, ``sync/since`` (by our clock or the original's timestamp)
and ``sync/push`` (the original's whole payload, turned into events: memories with its ``insert_if_newer``
rule, deletions as tombstones, archives and restores through the lifecycle service, links through the graph
service, pending actions, decisions and namespace standards through the governance service).

A node's clock is ``{partition: last offset applied}`` (the projector's position). On the wire it is a JSON
object, or the compact ``partition:offset,partition:offset`` form for headers and query strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from infra.log import Clock, EventLog, LogRecord
from producers.errors import ConflictError, NotFoundError, ValidationError
from producers.identity.visibility import Reader
from producers.input.commands import MAX_INT64
from producers.input.jsonbody import parse_json_body
from producers.input.validation import MAX_BULK, check_id
from producers.memory.service import MemoryService
from producers.memory.wire import memory_from_import
from projectors import under_any
from schemas import Memory, parse_ts
from schemas.events import EventPayload, MemoryDeleted

if TYPE_CHECKING:
    from producers.governance import GovernanceService
    from producers.graph.service import GraphService
    from producers.lifecycle.service import LifecycleService

__all__ = ["Peers", "PushResult", "check_partitions", "format_clock", "insert_if_newer", "parse_clock", "push",
           "since_clock", "since_time", "visible_events"]

#: The original's ``sync/since`` limit: 500 by default, at most 10k.
SINCE_DEFAULT, SINCE_MAX = 500, 10_000
#: The governance arrays of the original's push payload.
_GOVERNANCE = ("pendings", "pending_decisions", "namespace_meta", "namespace_meta_clears")
#: The original's counters for them.
_GOVERNANCE_COUNTERS = ("pendings_applied", "pending_decisions_applied", "namespace_meta_applied",
                        "namespace_meta_cleared")


def parse_clock(text: str) -> Clock:
    """``{"p": 5}`` or ``p:5,q:7`` → a clock. Raises ValidationError when neither."""
    text = text.strip()
    if not text:
        return {}
    try:
        if text.startswith("{"):
            raw = parse_json_body(text)
            if not isinstance(raw, dict):
                raise ValueError("not an object")
            pairs: list[tuple[Any, Any]] = list(raw.items())
        else:
            pairs = [_pair(part) for part in text.split(",") if part.strip()]
        clock = {str(p).strip(): int(o) for p, o in pairs}
    except (ValueError, TypeError, OverflowError, ValidationError):  # OverflowError: int(float("inf"))
        msg = f"invalid clock {text[:100]!r}: use {{\"partition\": offset}} or partition:offset,..."
        raise ValidationError(msg) from None
    if any(not 0 <= o <= MAX_INT64 or not p for p, o in clock.items()):
        raise ValidationError("a clock maps partition names to offsets from 0 to 2^63-1")
    return clock


async def check_partitions(log: EventLog, clock: Clock) -> Clock:
    """The log's end offsets, after refusing a clock that names a partition this log does not have (a wait
    for it could only time out)."""
    ends = await log.end_offsets()
    if unknown := sorted(set(clock) - set(ends)):
        raise ValidationError(f"unknown partition {unknown[0]!r} in clock (this log has: {', '.join(sorted(ends))})")
    return ends


def _pair(part: str) -> tuple[str, str]:
    partition, sep, offset = part.rpartition(":")
    if not sep:
        raise ValueError(part)
    return partition, offset


def format_clock(clock: Clock) -> str:
    """The compact header form, partitions sorted."""
    return ",".join(f"{p}:{o}" for p, o in sorted(clock.items()))


def _limit(raw: str | None) -> int:
    if raw is None:
        return SINCE_DEFAULT
    try:
        return max(1, min(int(raw), SINCE_MAX))
    except ValueError:
        raise ValidationError("limit must be an integer") from None


def _memory_ids(record: LogRecord) -> list[str]:
    """The memories an event touches, read from its payload's conventional fields."""
    payload = record.event.envelope.payload
    found: list[Any] = []
    if isinstance(memory := payload.get("memory"), dict):
        found.append(memory.get("id"))
    found.append(payload.get("id"))
    if isinstance(ids := payload.get("ids"), list):
        found.extend(ids)
    return [i for i in found if isinstance(i, str)]


def visible_events(reader: Reader, records: Sequence[LogRecord], visible_ids: set[str]) -> list[LogRecord]:
    """Events about memories the reader sees (and events about none, outside hidden namespaces, for a reader
    without ``as_agent`` or ``X-Agent-Id``). An event about a memory that is gone or hidden is left out: its ids
    and namespace are not the reader's to know. An unfiltered reader (the node itself, a peer) gets every event:
    a deletion is what a peer syncing from here needs most."""
    if reader.unfiltered:
        return list(records)
    out = []
    for record in records:
        ids = _memory_ids(record)
        if (ids and all(i in visible_ids for i in ids)) or (
                not ids and reader.as_agent is None and reader.caller is None
                and not under_any(record.event.envelope.namespace, reader.hidden)):
            out.append(record)
    return out


def _echo(memories: Sequence[Memory], limit: int, since: str | None) -> dict[str, Any]:
    stamps = [m.updated_at for m in memories]
    return {"count": len(memories), "limit": limit, "updated_since": since,
            "earliest_updated_at": min(stamps) if stamps else None,
            "latest_updated_at": max(stamps) if stamps else None,
            "memories": [m.to_api() for m in memories]}


async def since_clock(service: MemoryService, clock: Clock, limit_raw: str | None, *,
                      reader: Reader | None = None) -> dict[str, Any]:
    """Events after ``clock`` (up to ``limit``) and the current state of the memories they touched."""
    limit = _limit(limit_raw)
    reader = reader or Reader()
    ends = await check_partitions(service.log, clock)
    all_records = await service.log.read(after=clock, limit=limit)
    # Wait until the memories read below are at least as new as the clock and the events; an offset past the
    # log's end can never be applied, so the wait stops at the end (else it would hang until the timeout).
    reached = {p: min(o, ends[p]) for p, o in clock.items()}
    await service.wait_for(_clock_of(all_records, reached), timeout=service.config.write_timeout)
    ids = list(dict.fromkeys(i for r in all_records for i in _memory_ids(r)))
    memories = sorted(reader.visible(service.queries.get_many(ids)), key=lambda m: (m.updated_at, m.id))
    readable = [r for r in all_records if r.unreadable is None]  # not events: reported by verify and status
    records = visible_events(reader, readable, {m.id for m in memories})
    events = [{"partition": r.partition, "offset": r.offset, "event_id": r.event.event_id,
               "type": r.event.envelope.type, "namespace": r.event.envelope.namespace,
               "actor": r.event.envelope.actor, "origin": r.event.envelope.origin, "ts": r.event.envelope.ts}
              for r in records]
    return {**_echo(memories, limit, None), "clock": clock, "next_clock": _clock_of(all_records, clock),
            "events": events}


def _clock_of(records: Sequence[LogRecord], start: Clock) -> Clock:
    out = dict(start)
    for r in records:
        out[r.partition] = max(out.get(r.partition, 0), r.offset)
    return out


async def since_time(service: MemoryService, since: str | None, limit_raw: str | None, *,
                     reader: Reader | None = None) -> dict[str, Any]:
    """The original's shape: memories with ``updated_at > since``, oldest first."""
    limit = _limit(limit_raw)
    after = None
    if since is not None:
        try:
            after = parse_ts(since)
        except ValueError:
            raise ValidationError(f"invalid since timestamp {since!r} (RFC 3339)") from None
    await service.sync()
    rows = [m for m in (reader or Reader()).visible(service.queries.all_memories())
            if after is None or parse_ts(m.updated_at) > after]
    rows.sort(key=lambda m: (m.updated_at, m.id))
    return _echo(rows[:limit], limit, since)


def insert_if_newer(existing: Memory | None, incoming: Memory) -> bool:
    """The original's rule: apply when there is no copy, or the incoming one is newer (a tie: larger id wins).
    The projector's merge then keeps the maxima, never downgrades the tier and keeps ``metadata.agent_id``."""
    if existing is None:
        return True
    return (incoming.updated_at, incoming.id) > (existing.updated_at, existing.id)


@dataclass
class PushResult:
    applied: int = 0
    deleted: int = 0
    noop: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    #: Ids of pushed memories refused because this node deleted them (counted in ``skipped`` too).
    tombstoned: list[str] = field(default_factory=list)


def _array(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name) or []
    if not isinstance(value, list):
        raise ValidationError(f"{name} must be an array")
    if len(value) > MAX_BULK:
        raise ValidationError(f"{name} limited to {MAX_BULK} items")
    return value


def _decide(service: MemoryService, items: list[Any], result: PushResult) -> list[Memory]:
    incoming_all: list[Memory] = []
    for item in items:
        try:
            incoming_all.append(memory_from_import(item))
        except ValidationError as exc:
            result.skipped += 1
            result.errors.append(str(exc))
    # A deleted memory never comes back: an older copy from a peer that missed the delete is refused here, and
    # the projector refuses it too should one reach the log another way.
    dead = service.queries.tombstoned([m.id for m in incoming_all])
    newer: list[Memory] = []
    for incoming in incoming_all:
        if incoming.id in dead:
            result.skipped += 1
            result.tombstoned.append(incoming.id)
            continue
        same_id = service.queries.get(incoming.id)
        if same_id is not None and (same_id.title, same_id.namespace) != (incoming.title, incoming.namespace):
            result.skipped += 1  # a renamed copy: the (title, namespace) key cannot be upserted here
            continue
        existing = same_id or service.queries.find_by_title(incoming.title, incoming.namespace)
        if insert_if_newer(existing, incoming):
            newer.append(incoming)
        else:
            result.noop += 1
    return newer


async def _bury(service: MemoryService, events: list[tuple[EventPayload, str]], *, agent_id: str) -> None:
    """One append of ``memory.deleted`` events (deleting an absent id only leaves its tombstone)."""
    writer = service.writer
    # Idempotent, decided by no read: no lock, the append goes through the node's pipeline like any other.
    write = await writer.append(events, actor=agent_id)
    await writer.with_quorum(write)


@dataclass(frozen=True)
class Peers:
    """The domain services a push reaches beyond memories; one left out counts its arrays as skipped."""

    lifecycle: LifecycleService | None = None
    graph: GraphService | None = None
    governance: GovernanceService | None = None


async def push(service: MemoryService, body: Any, *, agent_id: str, node_clock: Clock,
               peers: Peers | None = None) -> dict[str, Any]:
    """Apply the original's sync_push payload as events, in its order (memories, deletions, archives, restores,
    links, pendings, decisions, namespace standards and clears); answer with the original's counters.
    ``dry_run`` answers the same counters and writes nothing.

    A push is a peer path: like the original, it is not gated by governance (the sender is trusted at the
    transport: the mTLS allowlist, the API key); see :mod:`producers.governance.peer` for what it may change.
    """
    if not isinstance(body, dict):
        raise ValidationError("sync push body must be a JSON object")
    if not isinstance(body.get("sender_agent_id"), str):
        raise ValidationError("missing field `sender_agent_id`")
    peers = peers or Peers()
    memories, deletions = _array(body, "memories"), _array(body, "deletions")
    archives, restores = _array(body, "archives"), _array(body, "restores")
    links = _array(body, "links")
    governance_arrays = {name: _array(body, name) for name in _GOVERNANCE}
    unsupported = 0
    if peers.lifecycle is None:
        unsupported += len(archives) + len(restores)
    if peers.graph is None:
        unsupported += len(links)
    if peers.governance is None:
        unsupported += sum(len(items) for items in governance_arrays.values())
    dry_run = bool(body.get("dry_run"))
    await service.sync()
    result = PushResult(skipped=unsupported)
    newer = _decide(service, memories, result)
    ids = list(dict.fromkeys(check_id(i) for i in deletions if isinstance(i, str)))
    buried = service.queries.tombstoned(ids)
    present = {m.id: m.namespace for m in service.queries.get_many(ids)}
    # A deletion of a memory this node has not seen yet still leaves a tombstone, so the copy that may arrive
    # later (from a slower peer) is refused; one already buried changes nothing.
    fresh = [i for i in ids if i not in buried]
    result.noop += len(ids) - len(present)
    if not dry_run:
        if newer:
            await service.import_memories(newer, agent_id=agent_id)
        if fresh:
            await _bury(service, [(MemoryDeleted(i), present.get(i, "global")) for i in fresh], agent_id=agent_id)
    archived = restored = 0
    if peers.lifecycle is not None:
        archived, restored = await _archive_moves(peers.lifecycle, archives, restores, result, agent_id=agent_id,
                                                  dry_run=dry_run)
    links_applied = 0
    if peers.graph is not None and links:
        # A dry run has not added this push's memories, so their links count as if it had.
        arriving = {m.id for m in newer} - set(ids) if dry_run else set()
        imported = await peers.graph.import_links(links, agent_id=agent_id, dry_run=dry_run, arriving=arriving)
        links_applied = imported.applied
        result.noop += imported.noop
        result.skipped += imported.skipped
        result.errors.extend(imported.errors)
    governed: dict[str, int] = dict.fromkeys(_GOVERNANCE_COUNTERS, 0)
    if peers.governance is not None and any(governance_arrays.values()):
        outcome = await peers.governance.peer.apply(peers.governance.peer.parse(governance_arrays),
                                                    agent_id=agent_id, dry_run=dry_run)
        governed = {name: getattr(outcome, name) for name in _GOVERNANCE_COUNTERS}
        result.noop += outcome.noop
        result.skipped += outcome.skipped
        result.errors.extend(outcome.errors)
    result.applied, result.deleted = len(newer), len(present)
    return {"applied": result.applied, "deleted": result.deleted, "archived": archived, "restored": restored,
            "links_applied": links_applied, **governed, "noop": result.noop,
            "skipped": result.skipped, "dry_run": dry_run, "receiver_agent_id": service.node_id,
            "receiver_clock": {"entries": {}}, "clock": node_clock, "errors": result.errors,
            "tombstoned": result.tombstoned}


async def _archive_moves(lifecycle: LifecycleService, archives: list[Any], restores: list[Any], result: PushResult,
                         *, agent_id: str, dry_run: bool) -> tuple[int, int]:
    """A peer's archives (ids to move to the archive) and restores (ids to bring back); as the original, an id
    this node does not have in the right place is a no-op, not an error."""
    archive_ids = [check_id(i) for i in archives if isinstance(i, str)]
    restore_ids = [check_id(i) for i in restores if isinstance(i, str)]
    if dry_run:
        live = {m.id for m in lifecycle.model.queries.get_many(archive_ids)}
        return len(live), len(lifecycle.model.archive.present(restore_ids))
    moved, missing, _ = await lifecycle.archive(archive_ids, reason=None, agent_id=agent_id)
    result.noop += len(missing)
    restored = 0
    for memory_id in restore_ids:
        try:
            await lifecycle.restore(memory_id, agent_id=agent_id)
            restored += 1
        except NotFoundError:
            result.noop += 1
        except ConflictError as exc:
            result.errors.append(f"{memory_id}: {exc}")
    return len(moved), restored
