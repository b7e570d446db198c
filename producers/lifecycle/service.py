"""The lifecycle commands beyond one memory's CRUD: archive, restore and purge; consolidate; promotion to an
ancestor namespace; session start.

Each decision is made against the caught-up read model and appended as events in one append, through
``EventWriter.decide_and_append`` (unconditional: the projectors re-check in log order what another node may
have changed meanwhile, and the writer answers from their outcome). Embeddings are computed before the write lock, as
the memory service does. What the original does, and where this differs, is said at each command.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from producers.errors import ConflictError, NotFoundError, ValidationError
from producers.identity.visibility import Reader, Visibility, visible_page
from producers.input.commands import MAX_INT64
from producers.input.validation import MAX_BULK, check_content, check_id, check_namespace, check_tier, check_title
from producers.memory.semantic import Semantic
from producers.write.outcomes import raise_if_refused
from producers.write.writer import Decided, DecideFn, EventWriter, Guarded, Planned, WriteResult
from projectors import MemoryFilter, MemoryReadModel
from projectors.archive_queries import ArchivedMemory, ArchiveStats
from schemas import Memory, encode_vector, format_ts, now_ts, parse_ts
from schemas.events import (
    ArchivePurged,
    Link,
    LinkCreated,
    MemoriesArchived,
    MemoryEmbedded,
    MemoryRestored,
    MemoryStored,
)

__all__ = ["ARCHIVE_REASON", "CONSOLIDATED_REASON", "Consolidated", "LifecycleService", "Promoted",
           "consolidated_memory"]

#: The original's default reason for an explicit archive, and ours for the sources of a consolidation.
ARCHIVE_REASON = "archive"
CONSOLIDATED_REASON = "consolidated"
MAX_CONSOLIDATE = 100
DERIVED_FROM = "derived_from"


@dataclass(frozen=True)
class Consolidated:
    memory: Memory
    sources: list[str]
    write: WriteResult


@dataclass(frozen=True)
class Promoted:
    source_id: str
    clone_id: str
    to_namespace: str
    write: WriteResult


def _archive_events(ids: Sequence[str], namespaces: dict[str, str], *, reason: str, at: str) -> list[Decided]:
    """One archive event per namespace (an envelope names one namespace), in first-seen order."""
    groups: dict[str, list[str]] = {}
    for memory_id in ids:
        groups.setdefault(namespaces[memory_id], []).append(memory_id)
    return [(MemoriesArchived(group, reason, at), namespace) for namespace, group in groups.items()]


def consolidated_memory(sources: Sequence[Memory], *, title: str, summary: str, namespace: str, tier: str,
                        agent_id: str, now: str) -> Memory:
    """The original's consolidation rule: priority the sources' maximum (at least 5), tags their sorted union,
    access counts summed, confidence 1.0, source "consolidation", no expiry; metadata merged in source order
    (later keys win) without the sources' ``agent_id``s, which go to ``consolidated_from_agents``, plus
    ``derived_from`` (the source ids) and the consolidator as ``agent_id``."""
    metadata: dict[str, Any] = {}
    authors: list[str] = []
    for source in sources:
        for key, value in source.metadata.items():
            if key != "agent_id":
                metadata[key] = value
            elif isinstance(value, str) and value not in authors:
                authors.append(value)
    metadata["derived_from"] = [s.id for s in sources]
    metadata["agent_id"] = agent_id
    if authors:
        metadata["consolidated_from_agents"] = authors
    return Memory(id=str(uuid.uuid4()), tier=tier, namespace=namespace, title=title,  # type: ignore[arg-type]
                  content=summary, tags=sorted({t for s in sources for t in s.tags}),
                  priority=max([5, *(s.priority for s in sources)]), confidence=1.0, source="consolidation",
                  access_count=min(sum(s.access_count for s in sources), 2**63 - 1), created_at=now, updated_at=now,
                  metadata=metadata)


def _proper_ancestors(namespace: str) -> list[str]:
    parts = namespace.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def _derived_from(source_id: str, target_id: str, now: str) -> LinkCreated:
    """An unsigned derived_from link, valid from now (as the original's ``create_link`` without a key)."""
    return LinkCreated(Link(source_id=source_id, target_id=target_id, relation=DERIVED_FROM, created_at=now,
                            valid_from=now))


class LifecycleService:
    def __init__(self, writer: EventWriter, model: MemoryReadModel, *, semantic: Semantic | None = None,
                 visibility: Visibility | None = None) -> None:
        self.writer = writer
        self.model = model
        self.semantic = semantic
        #: The read rule for the archive list and session start (None: everything is visible).
        self.visibility = visibility

    def _reader(self, as_agent: str | None, namespace: str | None) -> Reader:
        if self.visibility is None:
            return Reader(as_agent)
        return self.visibility.reader(as_agent, named=(namespace,) if namespace is not None else ())

    async def _vector_event(self, memory: Memory) -> MemoryEmbedded | None:
        """The memory.embedded event of ``memory``'s text, when a model is loaded (computed before the lock)."""
        if self.semantic is None or not self.semantic.ready:
            return None
        vectors = await self.semantic.embed_memories([memory])
        return self.semantic.event(memory.id, vectors[memory.id]) if memory.id in vectors else None

    async def _write(self, decide: DecideFn, *, actor: str) -> WriteResult:
        return await self.writer.with_quorum(await self.writer.decide_and_append(decide, actor=actor))

    # -- archive ----------------------------------------------------------------------------------------

    async def archive(self, ids: Sequence[Any], *, reason: str | None, agent_id: str,
                      may: Callable[[Memory], bool] | None = None) -> tuple[list[str], list[str], WriteResult]:
        """Move the live memories among ``ids`` to the archive; returns (archived, missing, write). As the
        original, ids that are not live, or (``may``) not the caller's to archive, are reported missing, not an
        error, and the whole batch is checked before anything is written."""
        if len(ids) > MAX_BULK:
            raise ValidationError(f"archive limited to {MAX_BULK} ids per request")
        wanted = list(dict.fromkeys(_valid_id(i) for i in ids))
        why = reason or ARCHIVE_REASON
        found: list[str] = []

        async def decide() -> list[Decided]:
            live = {m.id: m.namespace for m in self.model.queries.get_many(wanted) if may is None or may(m)}
            found[:] = [i for i in wanted if i in live]
            return _archive_events(found, live, reason=why, at=now_ts())

        write = await self._write(decide, actor=agent_id)
        return found, [i for i in wanted if i not in found], write

    async def restore(self, memory_id: str, *, agent_id: str, may: Callable[[Memory], bool] | None = None
                      ) -> tuple[Memory, WriteResult]:
        """Bring an archived memory back with the tier and expiry it had when archived (``updated_at`` now),
        and its archived vector, so no model is needed. One that is not the caller's to restore (``may``) is not
        found, as one that is not archived."""
        memory_id = check_id(memory_id)
        restored: list[Memory] = []

        async def decide() -> list[Decided]:
            archived = self.model.archive.get(memory_id)
            if archived is None or (may is not None and not may(archived.memory)):
                raise NotFoundError("not found in archive")
            memory = self._restorable(archived)
            events: list[Decided] = [(MemoryRestored(memory), memory.namespace)]
            if (vector := self.model.archive.vector(memory_id)) is not None:
                embedded = MemoryEmbedded(memory_id, vector.model, vector.dim, encode_vector(vector.vector))
                events.append((embedded, memory.namespace))
            restored[:] = [memory]
            return events

        write = await self._write(decide, actor=agent_id)
        memory = restored[0]
        raise_if_refused(write, agent_id=agent_id,  # restored elsewhere first, or its title taken meanwhile
                         clash_message=f"cannot restore: title '{memory.title}' already exists in namespace "
                                       f"'{memory.namespace}'")
        return self.model.queries.get(memory_id) or memory, write

    def _restorable(self, archived: ArchivedMemory) -> Memory:
        m = archived.memory
        if self.model.queries.get_many([m.id]):
            raise ConflictError(f"cannot restore: memory {m.id} already exists in active table (would overwrite)")
        clash = self.model.queries.find_by_title(m.title, m.namespace)
        if clash is not None:
            raise ConflictError(f"cannot restore: title '{m.title}' already exists in namespace '{m.namespace}'",
                                existing_id=clash.id)
        return replace(m, tier=archived.original_tier, expires_at=archived.original_expires_at,  # type: ignore[arg-type]
                       updated_at=now_ts())

    async def purge(self, *, older_than_days: int | None = None, ids: Sequence[Any] | None = None,
                    agent_id: str, may: Callable[[Memory], bool] | None = None) -> tuple[int, WriteResult]:
        """Delete archived memories for good: those archived more than ``older_than_days`` days ago, the
        listed ``ids``, or (neither given) all of them, as the original's purge without a filter; of those,
        only the ones ``may`` allows when given (a caller's own)."""
        if older_than_days is not None and older_than_days < 0:
            raise ValidationError(f"older_than_days must be non-negative (got {older_than_days})")
        if older_than_days is not None and older_than_days > MAX_INT64:
            raise ValidationError(f"older_than_days must be at most {MAX_INT64}")
        wanted = None if ids is None else list(dict.fromkeys(_valid_id(i) for i in ids))
        count = [0]

        async def decide() -> list[Decided]:
            now = now_ts()
            before = None if older_than_days is None else _days_before(now, older_than_days)
            chosen = self.model.archive.archived_before(before)
            if wanted is not None:  # by ids (and, with older_than_days too, only those old enough)
                old_enough = set(chosen)
                chosen = [i for i in self.model.archive.present(wanted) if i in old_enough]
            if may is not None:
                chosen = [a.memory.id for a in self.model.archive.get_many(chosen) if may(a.memory)]
            count[0] = len(chosen)
            return [(ArchivePurged(chosen, before, older_than_days), "global")] if chosen else []

        write = await self._write(decide, actor=agent_id)
        return count[0], write

    async def list_archived(self, *, namespace: str | None, limit: int, offset: int, as_agent: str | None = None
                            ) -> list[ArchivedMemory]:
        """Archived memories the reader may see (the same rule as live ones), newest archive first."""
        reader = self._reader(as_agent, namespace)
        await self.writer.caught_up()
        if reader.unfiltered:
            return self.model.archive.list_archived(namespace=namespace, limit=limit, offset=offset)
        return visible_page(lambda n, at: self.model.archive.list_archived(namespace=namespace, limit=n, offset=at),
                           lambda archived: reader.sees(archived.memory), limit=limit, offset=offset)

    async def archive_stats(self, *, as_agent: str | None = None) -> ArchiveStats:
        """Archived counts by namespace, of what the reader may see."""
        reader = self._reader(as_agent, None)
        await self.writer.caught_up()
        if reader.unfiltered:
            return self.model.archive.stats()
        counts: dict[str, int] = {}
        for archived in visible_page(lambda n, at: self.model.archive.list_archived(limit=n, offset=at),
                                    lambda archived: reader.sees(archived.memory), limit=2**62, offset=0):
            counts[archived.memory.namespace] = counts.get(archived.memory.namespace, 0) + 1
        rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return ArchiveStats(sum(counts.values()), [{"namespace": ns, "count": n} for ns, n in rows])

    # -- consolidate ------------------------------------------------------------------------------------

    async def consolidate(self, ids: Sequence[Any], *, title: str, summary: str, namespace: str = "global",
                          tier: str = "long", agent_id: str) -> Consolidated:
        """One new memory replaces the sources, in one append: the memory (and its vector), a derived_from
        link from it to each source, and the sources archived with reason "consolidated". The original
        deletes the sources outright (and keeps their ids only in ``metadata.derived_from``); here they stay
        restorable and the links point at them."""
        source_ids = _consolidate_ids(ids)
        title, summary = check_title(title), check_content(summary)
        namespace, tier = check_namespace(namespace), check_tier(tier)
        draft = Memory(id=str(uuid.uuid4()), tier=tier, namespace=namespace,  # type: ignore[arg-type]
                       title=title, content=summary, tags=[], priority=5, confidence=1.0, source="consolidation",
                       access_count=0, created_at="", updated_at="")
        embedded = await self._vector_event(draft)
        made: list[Memory] = []

        taken = f"memory with title '{title}' already exists in namespace '{namespace}'"

        async def decide() -> list[Planned]:
            sources = self._sources(source_ids)
            clash = self.model.queries.find_by_title(title, namespace)
            if clash is not None:
                raise ConflictError(taken, existing_id=clash.id)
            now = now_ts()
            memory = replace(consolidated_memory(sources, title=title, summary=summary, namespace=namespace,
                                                 tier=tier, agent_id=agent_id, now=now), id=draft.id)
            made[:] = [memory]
            effects: list[Decided] = [(embedded, namespace)] if embedded is not None else []
            effects += [(_derived_from(memory.id, s.id, now), namespace) for s in sources]
            effects += _archive_events(source_ids, {s.id: s.namespace for s in sources}, reason=CONSOLIDATED_REASON,
                                       at=now)
            # The title is decided in log order: a consolidation racing under the same title elsewhere leaves
            # this one's store refused (409), and with it every event that carries it out.
            return [Guarded((MemoryStored(memory, on_conflict="error"), namespace), effects)]

        write = await self._write(decide, actor=agent_id)
        raise_if_refused(write, agent_id=agent_id, clash_message=taken)
        return Consolidated(self.model.queries.get(draft.id) or made[0], source_ids, write)

    def _sources(self, ids: list[str]) -> list[Memory]:
        found = {m.id: m for m in self.model.queries.get_many(ids)}
        for memory_id in ids:
            if memory_id not in found:
                raise NotFoundError(f"memory not found: {memory_id}")
        return [found[i] for i in ids]

    # -- promotion to an ancestor namespace -------------------------------------------------------------

    async def promote_to_namespace(self, memory_id: str, to_namespace: str, *, agent_id: str) -> Promoted:
        """The original's vertical promotion: clone the memory into ``to_namespace`` (a proper ancestor of its
        namespace) and link the clone to the source with derived_from; the source is untouched. A memory with
        the clone's title already in the ancestor is merged into, as the original's insert does."""
        to_namespace = check_namespace(to_namespace)
        await self.writer.caught_up()
        source = self._promotable(check_id(memory_id), to_namespace)
        draft = replace(source, id=str(uuid.uuid4()), namespace=to_namespace)
        embedded = await self._vector_event(draft)
        clone_id = [draft.id]

        async def decide() -> list[Decided]:
            current = self._promotable(source.id, to_namespace)
            existing = self.model.queries.find_by_title(current.title, to_namespace)
            now = now_ts()
            clone = replace(current, id=existing.id if existing else draft.id, namespace=to_namespace,
                            access_count=0, created_at=now, updated_at=now, last_accessed_at=None)
            clone_id[0] = clone.id
            events: list[Decided] = [(MemoryStored(clone), to_namespace)]
            if embedded is not None:
                events.append((replace(embedded, id=clone.id), to_namespace))
            return [*events, (_derived_from(clone.id, current.id, now), to_namespace)]

        write = await self._write(decide, actor=agent_id)
        return Promoted(source.id, clone_id[0], to_namespace, write)

    def _promotable(self, memory_id: str, to_namespace: str) -> Memory:
        source = self.model.queries.get(memory_id)
        if source is None:
            raise NotFoundError("memory not found")
        if to_namespace == source.namespace:
            raise ValidationError("to_namespace must be a proper ancestor of the memory's namespace "
                                  f"(got self: {source.namespace})")
        ancestors = _proper_ancestors(source.namespace)
        if to_namespace not in ancestors:
            listed = ", ".join(f'"{a}"' for a in [source.namespace, *ancestors])
            raise ValidationError(f"to_namespace '{to_namespace}' is not an ancestor of '{source.namespace}' "
                                  f"(ancestors: [{listed}])")
        return source

    # -- session start ----------------------------------------------------------------------------------

    async def session_start(self, *, namespace: str | None, limit: int, as_agent: str | None = None
                            ) -> dict[str, Any]:
        """The original's session_start body: the first ``limit`` (at most 50) live memories the reader may see,
        in list order (priority, then most recently updated), each with score 0.0."""
        flt = self._reader(as_agent, namespace).filter(MemoryFilter(namespace=namespace, now=now_ts()))
        await self.writer.caught_up()
        found = self.model.queries.list_memories(flt, limit=min(max(limit, 0), 50), offset=0)
        return {"memories": [{**m.to_api(), "score": 0.0} for m in found], "count": len(found),
                "mode": "session_start"}


def _valid_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError("ids must be strings")
    try:
        return check_id(value)
    except ValidationError as exc:
        raise ValidationError(f"invalid id {value}: {exc}") from None


def _consolidate_ids(ids: Sequence[Any]) -> list[str]:
    """The original's ``validate_consolidate`` on the ids: 2 to 100, each valid, no repeats."""
    if len(ids) < 2:
        raise ValidationError("need at least 2 memory IDs to consolidate")
    if len(ids) > MAX_CONSOLIDATE:
        raise ValidationError(f"cannot consolidate more than {MAX_CONSOLIDATE} memories at once")
    out: list[str] = []
    for i, value in enumerate(ids):
        if not isinstance(value, str):
            raise ValidationError(f"ids[{i}] must be a string")
        memory_id = check_id(value)
        if memory_id in out:
            raise ValidationError(f"duplicate memory ID: {memory_id}")
        out.append(memory_id)
    return out


#: format_ts's shape for 1 January of year 1 (strftime would not zero-pad the year).
_FIRST_DAY = "0001-01-01T00:00:00.000000+00:00"


def _days_before(now: str, days: int) -> str:
    """``now`` less ``days`` days; clamped to the calendar's first day when that is earlier (nothing was
    archived before it, so a purge of anything older than 10**9 days purges nothing, as it should)."""
    try:
        return format_ts(parse_ts(now) - timedelta(days=days))
    except OverflowError:
        return _FIRST_DAY
