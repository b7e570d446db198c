"""Archive events: memories moved out of the live set (kept whole, vector included), back in, or purged.

The original keeps archived memories in a table of their own (``archived_memories``): explicit archive by ids,
GC of expired memories (``archive_on_gc``, on by default), consolidated sources. Restore puts back the tier and
expiry the memory had when it was archived. Each payload carries the producer's decisions (timestamps, the
memory as restored, the purge cut-off), so projectors never read a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from schemas.memory import Memory

__all__ = ["ArchivePurged", "MemoriesArchived", "MemoryRestored"]


@dataclass(frozen=True, slots=True)
class MemoriesArchived:
    """Each listed live memory moves to the archive at ``at`` with ``reason`` (the original's reasons:
    "archive" by default for an explicit archive, "ttl_expired" for GC; "consolidated" for consolidation
    sources). With ``expired_only`` (GC), a memory moves only if its expiry is still before ``at``, so a
    memory whose TTL a recall extended in the meantime stays live. Listed ids that are not live are skipped."""

    TYPE: ClassVar[str] = "archive.archived"
    ids: list[str]
    reason: str
    at: str
    expired_only: bool = False


@dataclass(frozen=True, slots=True)
class MemoryRestored:
    """The archived memory ``memory.id`` becomes live again as ``memory`` (its original tier and expiry,
    ``updated_at`` the restore time). Its vector, if it had one, follows as a ``memory.embedded`` event."""

    TYPE: ClassVar[str] = "archive.restored"
    memory: Memory


@dataclass(frozen=True, slots=True)
class ArchivePurged:
    """The listed archived memories are deleted for good. ``before`` (an age purge) deletes an id only if it
    was archived before that time, so a memory archived again since the decision is kept;
    ``older_than_days`` says why, for audit."""

    TYPE: ClassVar[str] = "archive.purged"
    ids: list[str]
    before: str | None = None
    older_than_days: int | None = None
