"""The merge order: one total order of events, the same on every node, whatever the interleaving of partitions.

Within a partition (one region's origin stream) the log order is total and the same everywhere; across
partitions nodes read in different interleavings. Every event gets a *merge key* that every node computes from
the event and its partition's prefix alone:

* its *stamp*: the envelope's ``ts`` (the writer's clock), raised to one microsecond past the previous stamp of
  the same partition when it is not later (so stamps increase along a partition: the merge order agrees with
  each partition's log order, even when writers' clocks disagree);
* ties broken by (partition, offset).

The key is a string whose order is the merge order (fixed-width stamp, then partition, then a zero-padded
offset), so both read models compare keys as plain text. Rules that decide cross-partition conflicts by merge
order (last writer wins, the earliest claim of a title) compare these keys and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from schemas import canonical_ts, decode_payload, format_ts, parse_ts, shift_ts
from schemas.events import (
    AgentKeyRegistered,
    AsAgentRequirementSet,
    MemoryDeleted,
    MemoryEmbedded,
    MemoryExpired,
    MemoryForgotten,
    MemoryImported,
    MemoryPromoted,
    MemoryStored,
    MemoryTouched,
    MemoryUpdated,
    StandardCleared,
    StandardSet,
)

__all__ = ["APPLYING", "VOIDED", "MergeStamp", "Refs", "agent_key_register", "applying", "causal_ts",
           "conflict_title", "memory_refs", "merge_key", "next_stamp", "partition_of", "register_of", "replay_payload",
           "title_group", "void"]

_OFFSET_WIDTH = 20


def next_stamp(ts: str, previous: str | None) -> str:
    """The stamp of an event whose envelope says ``ts``, after a partition's ``previous`` stamp (None: first)."""
    try:
        stamp = canonical_ts(ts)
    except ValueError:  # a timestamp no parser takes still gets a place: right after its partition's previous
        stamp = previous or format_ts(parse_ts("1970-01-01T00:00:00Z"))
    if previous is not None and stamp <= previous:
        stamp = shift_ts(previous, 1e-6)
    return stamp


def causal_ts(now: str, seen: str | None) -> str:
    """The ``ts`` a writer stamps: its clock, or one microsecond past the newest ``ts`` its node has applied
    when that is not earlier (a hybrid logical clock): a write made after a node saw another region's write is
    ordered after it in merge order, however far behind this node's clock is."""
    return now if seen is None or now > seen else next_stamp(seen, seen)


def merge_key(stamp: str, partition: str, offset: int) -> str:
    return f"{stamp}|{partition}|{offset:0{_OFFSET_WIDTH}d}"


def partition_of(key: str) -> str:
    """The partition a merge key was given in."""
    return key.split("|")[1]


@dataclass(frozen=True, slots=True)
class MergeStamp:
    """Where the event being applied stands: its partition and merge key; ``partitioned``: the read model's log
    may have several partitions (domains that converge by history keep theirs from the first event);
    ``several``: the read model has seen events of more than one partition, counting this one (None: not
    counted, as for a replayed event; ask the read model)."""

    partition: str
    key: str
    partitioned: bool = False
    several: bool | None = None


#: The merge position of the event a read model is applying (set by the store around each applier, so the
#: memory appliers, which take the payload alone, can order their writes).
APPLYING: ContextVar[MergeStamp | None] = ContextVar("ai_memory_applying", default=None)


#: The decisions the event being applied displaced (their event ids): what they ran is undone once it is applied
#: (a governance applier cannot replay memories itself; the convergence layer, which can, reads this).
VOIDED: ContextVar[list[str] | None] = ContextVar("ai_memory_voided", default=None)


def void(event_id: str) -> None:
    """Undo, once the current event is applied, the memory events that name ``event_id`` as their cause."""
    voided = VOIDED.get()
    if voided is None:
        raise RuntimeError("no event is being applied (the read model sets VOIDED around each applier)")
    voided.append(event_id)


def applying() -> MergeStamp:
    stamp = APPLYING.get()
    if stamp is None:
        raise RuntimeError("no event is being applied (the read model sets APPLYING around each applier)")
    return stamp


def conflict_title(title: str, memory_id: str) -> str:
    """The title a memory keeps while another region's earlier claim holds its own: deterministic (its id), so
    every node renames it the same way, and readable (the claimed title first)."""
    return f"{title} (conflict {memory_id[:8]})"


_SUFFIX = re.compile(r" \((?:\d+|conflict [^()]*)\)$")


def title_group(title: str) -> str:
    """The title with its version or conflict suffixes removed: stores of "plan", "plan (2)" (on_conflict
    version) and "plan (conflict …)" can decide each other, so their histories are replayed together."""
    while (match := _SUFFIX.search(title)) is not None:
        title = title[:match.start()]
    return title


@dataclass(frozen=True, slots=True)
class Refs:
    """What a memory event's outcome depends on and changes. ``ids`` and ``groups`` (title groups): its
    history joins theirs, so a late event replays them together; ``weak_ids``: memories it changes one by one
    (a touch, an expiry), replayed with each of them but joining nothing."""

    ids: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    weak_ids: tuple[str, ...] = ()


def memory_refs(payload: Any) -> Refs | None:
    """The refs of a memory event; None for events of other domains (their read models stay in arrival order:
    see docs/regions.md, "Convergence")."""
    if isinstance(payload, MemoryStored | MemoryImported):
        return Refs(ids=(payload.memory.id,), groups=(title_group(payload.memory.title),))
    if isinstance(payload, MemoryUpdated):
        title = payload.changes.title
        return Refs(ids=(payload.id,), groups=() if title is None else (title_group(title),))
    if isinstance(payload, MemoryDeleted | MemoryPromoted | MemoryEmbedded):
        return Refs(ids=(payload.id,))
    if isinstance(payload, MemoryTouched | MemoryExpired | MemoryForgotten):
        return Refs(weak_ids=tuple(dict.fromkeys(payload.ids)))
    return None


def replay_payload(event_type: str, raw: Mapping[str, Any], ids: Set[str]) -> Any:
    """A kept memory event, decoded, for a replay of the memories ``ids``: an event that changes many memories
    one by one (touch, expiry, forget) changes only those, the others being left as they are."""
    payload = decode_payload(event_type, dict(raw))
    if isinstance(payload, MemoryTouched | MemoryExpired | MemoryForgotten):
        return replace(payload, ids=[i for i in payload.ids if i in ids])
    return payload


def agent_key_register(agent_id: str) -> str:
    """The register of an agent's key: its latest registration (rotation) in merge order holds."""
    return f"agent_key:{agent_id}"


def register_of(payload: Any) -> str | None:
    """The register an event sets whole, last writer (by merge order) winning, or None: a namespace's standard
    (policy) is one, so a policy set in one region governs every region, the latest in merge order; so are an
    agent's key (registered or rotated; revocations: :mod:`projectors.identity_store`) and whether a namespace
    prefix requires ``as_agent``."""
    if isinstance(payload, StandardSet | StandardCleared):
        return f"standard:{payload.namespace}"
    if isinstance(payload, AgentKeyRegistered):
        return agent_key_register(payload.agent_id)
    if isinstance(payload, AsAgentRequirementSet):
        return f"as_agent:{payload.prefix}"
    return None
