"""Memory lifecycle events: one frozen dataclass per event type, each with a stable string ``TYPE``.

Producers decide, projectors apply: every payload carries what the projector needs to reach the same state
on every replay (timestamps and TTL extensions included), so no projector ever reads a clock or a config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from schemas.memory import Memory, Tier

__all__ = [
    "MemoryChanges",
    "MemoryDeleted",
    "MemoryEmbedded",
    "MemoryExpired",
    "MemoryForgotten",
    "MemoryImported",
    "MemoryPromoted",
    "MemoryStored",
    "MemoryTouched",
    "MemoryUpdated",
    "OnConflict",
    "TouchRules",
]

OMIT_NONE = {"omit_none": True}
OnConflict = Literal["error", "merge", "version"]


@dataclass(frozen=True, slots=True)
class MemoryStored:
    """A new memory. ``memory.access_count`` is 0 and timestamps are the producer's."""

    TYPE: ClassVar[str] = "memory.stored"
    memory: Memory
    #: What the projector does, in log order, when another memory holds (title, namespace): "merge" (also when
    #: absent: the original's upsert), "error" (the event is refused; its writer answers 409), "version" (stored
    #: as "title (n)", the first n >= 2 free then). Decided where the log orders writes, so racing nodes agree.
    on_conflict: OnConflict | None = field(default=None, metadata=OMIT_NONE)
    #: The author's daily memory quota when the store was metered: the projector refuses the store that would
    #: exceed it (counted in log order, so exact across nodes).
    max_per_day: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class MemoryImported:
    """A memory brought in by import; ``memory.metadata.imported_from_agent_id`` keeps its author."""

    TYPE: ClassVar[str] = "memory.imported"
    memory: Memory


@dataclass(frozen=True, slots=True)
class MemoryChanges:
    """Fields an update sets; an absent field is unchanged. ``clear_expiry`` sets ``expires_at`` to null."""

    title: str | None = field(default=None, metadata=OMIT_NONE)
    content: str | None = field(default=None, metadata=OMIT_NONE)
    tier: Tier | None = field(default=None, metadata=OMIT_NONE)
    namespace: str | None = field(default=None, metadata=OMIT_NONE)
    tags: list[str] | None = field(default=None, metadata=OMIT_NONE)
    priority: int | None = field(default=None, metadata=OMIT_NONE)
    confidence: float | None = field(default=None, metadata=OMIT_NONE)
    source: str | None = field(default=None, metadata=OMIT_NONE)
    expires_at: str | None = field(default=None, metadata=OMIT_NONE)
    clear_expiry: bool = False
    metadata: dict[str, object] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class MemoryUpdated:
    """Partial update of one memory. ``metadata``, when present, replaces the old metadata whole."""

    TYPE: ClassVar[str] = "memory.updated"
    id: str
    changes: MemoryChanges
    updated_at: str


@dataclass(frozen=True, slots=True)
class MemoryDeleted:
    TYPE: ClassVar[str] = "memory.deleted"
    id: str


@dataclass(frozen=True, slots=True)
class MemoryPromoted:
    """Tier becomes ``tier`` (long) and the expiry is cleared."""

    TYPE: ClassVar[str] = "memory.promoted"
    id: str
    tier: Tier
    updated_at: str


@dataclass(frozen=True, slots=True)
class TouchRules:
    """How a touch changes a memory; carried in the event so a replay needs no configuration."""

    short_extend_secs: int = 3600
    mid_extend_secs: int = 86400
    promote_mid_at: int = 5
    priority_every: int = 10
    max_priority: int = 10
    max_access_count: int = 1_000_000


@dataclass(frozen=True, slots=True)
class MemoryTouched:
    """Recall returned these memories at ``at``: each gets access_count + 1, last_accessed_at = at, its
    short/mid expiry reset to at + extension, mid → long at ``promote_mid_at`` accesses, and priority + 1
    (up to the maximum) each time access_count reaches a multiple of ``priority_every``."""

    TYPE: ClassVar[str] = "memory.touched"
    ids: list[str]
    at: str
    rules: TouchRules


@dataclass(frozen=True, slots=True)
class MemoryExpired:
    """GC at ``at``: each listed memory is removed if its expiry is still at or before ``at``."""

    TYPE: ClassVar[str] = "memory.expired"
    ids: list[str]
    at: str


@dataclass(frozen=True, slots=True)
class MemoryForgotten:
    """Bulk forget: the listed memories are removed; the filters say why, for audit."""

    TYPE: ClassVar[str] = "memory.forgotten"
    ids: list[str]
    namespace: str | None = None
    pattern: str | None = None
    tier: Tier | None = None


@dataclass(frozen=True, slots=True)
class MemoryEmbedded:
    """The embedding of memory ``id``'s text (``title + " " + content``) by ``model``: ``dim`` float32 values,
    little-endian, base64. It follows the stored, imported or updated event it belongs to (in the same append),
    and a re-embed with another model appends new ones, so read models rebuild vectors without the model."""

    TYPE: ClassVar[str] = "memory.embedded"
    id: str
    model: str
    dim: int
    vector: str
