"""A memory's history, read from the log: every event that wrote, touched or linked it (who, when, signed by
which key, whether the signature verifies), and its versions (the memory as each write left it).

The read model keeps only the latest state; the log keeps how it got there. This reads the log's last
:data:`HISTORY_SCAN` events (a bounded cost per page, whatever the log's length) and keeps those about one memory.

What a reader may see is decided as everywhere else: the caller checks the memory itself through
``MemoryService.get(id, as_agent=...)`` first; here a link event is kept only when its other end is visible too,
and a version's fields only when the memory, as that version left it, was visible to the reader (a memory moved
into the reader's view does not reveal what it said before).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from projectors import may_see
from projectors.rules import merged_values, updated_values
from schemas import Memory, SchemaError, SignatureError, decode_payload, verify
from schemas.events import MemoryImported, MemoryPromoted, MemoryStored

if TYPE_CHECKING:
    from infra.log import Clock, LogRecord
    from producers.runtime.node import Node

__all__ = ["HISTORY_SCAN", "HistoryEvent", "MemoryHistory", "Version", "memory_history"]

#: How many of the log's latest events a history page reads (per partition): about 1 s of decoding on a
#: loaded 2-core machine, in pages between which the server answers other requests.
HISTORY_SCAN = 20_000
_PAGE = 1000
#: Event types that set a memory's fields: each makes a version.
_WRITES = ("memory.stored", "memory.imported", "memory.updated", "memory.promoted")
_STORED_FIELDS = ("title", "content", "tier", "namespace", "tags")


@dataclass(frozen=True)
class HistoryEvent:
    partition: str
    offset: int
    event_id: str
    type: str
    actor: str
    origin: str
    ts: str
    key_id: str
    #: "verified", or why the signature does not verify against this node's trusted keys.
    signature: str
    #: The calling agent's own signature on the request (``agent_id``, ``key_id``), when it signed one.
    attested_by: tuple[str, str] | None
    #: Another memory the event links this one to (link events), else None.
    other_id: str | None


@dataclass(frozen=True)
class Version:
    event: HistoryEvent
    #: The memory as this write left it; None when the reader may not see that version.
    memory: Memory | None
    #: The fields this write set (all of them for a store or import).
    changed: tuple[str, ...]


@dataclass(frozen=True)
class MemoryHistory:
    events: list[HistoryEvent]
    versions: list[Version]
    #: Events read from the log, and whether older events were left unread (the log is longer than the scan).
    scanned: int
    truncated: bool


class _Mentions:
    """Which events are about one memory: its writes, touches and links, and the governance events of the
    pending actions about it (the request names the memory; votes and the decision name the request)."""

    def __init__(self, memory_id: str) -> None:
        self.memory_id = memory_id
        self.pendings: set[str] = set()

    def __call__(self, payload: dict[str, Any]) -> tuple[bool, str | None]:
        """Whether an event's payload is about the memory, and the other end when it is a link event."""
        memory_id = self.memory_id
        memory, link, pending = payload.get("memory"), payload.get("link"), payload.get("pending")
        if not isinstance(link, dict):
            link = payload
        ends = (link.get("source_id"), link.get("target_id"))
        if memory_id in ends:
            other = ends[1] if ends[0] == memory_id else ends[0]
            return True, other if isinstance(other, str) and other != memory_id else None
        if isinstance(pending, dict) and pending.get("memory_id") == memory_id:
            self.pendings.add(str(pending.get("id")))
            return True, None
        ids = payload.get("ids")
        named = {i for i in (payload.get("id"), *(ids if isinstance(ids, list) else ())) if isinstance(i, str)}
        if memory_id in named or payload.get("result_id") == memory_id:
            return True, None
        return (isinstance(memory, dict) and memory.get("id") == memory_id) or bool(named & self.pendings), None


def _event(record: LogRecord, node: Node, other_id: str | None) -> HistoryEvent:
    env = record.event.envelope
    try:
        verify(record.event, node.keyring)
        signature = "verified"
    except SignatureError as exc:
        signature = exc.reason
    attestation = env.attestation or {}
    attested = ((str(attestation.get("agent_id")), str(attestation.get("key_id")))
                if attestation.get("signature") else None)
    return HistoryEvent(record.partition, record.offset, env.event_id, env.type, env.actor, env.origin, env.ts,
                        env.key_id, signature, attested, other_id)


async def _scan(node: Node, memory_id: str) -> tuple[list[tuple[LogRecord, str | None]], int, bool]:
    end = await node.log.end_offsets()
    after: Clock = {p: max(0, o - HISTORY_SCAN) for p, o in end.items()}
    truncated = any(o > 0 for o in after.values())
    found: list[tuple[LogRecord, str | None]] = []
    scanned = 0
    mentions = _Mentions(memory_id)
    while records := await node.log.read(after=after, limit=_PAGE):
        for record in records:
            after[record.partition] = max(after.get(record.partition, 0), record.offset)
            if record.offset > end.get(record.partition, 0):
                continue  # appended while we read: the page shows the log as it was when asked
            scanned += 1
            about, other = mentions(record.event.envelope.payload)
            if about:
                found.append((record, other))
        if all(after.get(p, 0) >= o for p, o in end.items()):
            break
        await asyncio.sleep(0)  # an embedded log reads synchronously: let other requests in between pages
    return found, scanned, truncated


def _written(state: Memory | None, event: Any) -> tuple[Memory, tuple[str, ...]] | None:
    """The memory as one write left it, and the fields it set, by the projector's own rules; None when the
    write cannot be folded (an update or promotion of a memory whose first write is older than the scan)."""
    if isinstance(event, MemoryStored | MemoryImported):
        if state is None:
            return event.memory, _STORED_FIELDS
        # A store that names an existing memory is the original's merge (on_conflict=merge).
        merged = merged_values(state.tier, state.expires_at, state.metadata, event.memory)
        merged.update(priority=max(state.priority, event.memory.priority),
                      confidence=max(state.confidence, event.memory.confidence))
        return replace(state, **merged), ("content", "tags", "source", "tier", "priority", "confidence")
    if state is None:
        return None
    if isinstance(event, MemoryPromoted):
        return replace(state, tier=event.tier, expires_at=None, updated_at=event.updated_at), ("tier",)
    values = updated_values(event, state.tier, state.metadata)
    return replace(state, **values), tuple(k for k in values if k != "updated_at")


def _versions(writes: Sequence[tuple[HistoryEvent, dict[str, Any]]], as_agent: str | None,
              hidden: tuple[str, ...]) -> list[Version]:
    out: list[Version] = []
    state: Memory | None = None
    for event, payload in writes:
        if event.signature != "verified":
            continue  # the projector refused it: it changed nothing
        try:
            folded = _written(state, decode_payload(event.type, payload))
        except SchemaError:
            continue  # refused by the projector as well (an invalid payload)
        if folded is None:
            continue
        state, changed = folded
        out.append(Version(event, state if may_see(state, as_agent, hidden) else None, changed))
    return out


async def memory_history(node: Node, memory: Memory, *, as_agent: str | None) -> MemoryHistory:
    """The history of ``memory``, which the caller already read as ``as_agent`` (``MemoryService.get``)."""
    found, scanned, truncated = await _scan(node, memory.id)
    visibility = node.identity.visibility
    others = {o for _, o in found if o is not None}
    seen = {m.id for m in visibility.reader(as_agent).visible(node.service.queries.get_many(sorted(others)))}
    kept = [(_event(r, node, o), r.event.envelope.payload) for r, o in found if o is None or o in seen]
    hidden = visibility.check_namespace(None, as_agent)
    writes = [(e, p) for e, p in kept if e.type in _WRITES]
    return MemoryHistory([e for e, _ in kept], _versions(writes, as_agent, hidden), scanned, truncated)
