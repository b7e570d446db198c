"""The command core: validate → decide → build envelope → sign → append → wait for the local projector.

Every surface (HTTP, CLI, and later MCP) calls this; none writes state any other way. Reads go to the
read model through the projectors' public query interface, after the projector has caught up with the
writes this process made (read-your-writes).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from infra.embed import embedding_text
from infra.log import AppendConflictError, Clock, LogPosition
from producers.commands import CreateCommand, ListQuery, RecallQuery, UpdateCommand
from producers.errors import ActionPendingError, ConflictError, NotFoundError, UnavailableError, ValidationError
from producers.governance.gate import GatedAction, WriteGate
from producers.quorum import QuorumTracker
from producers.recall import RecallPipeline, RecallResult, apply_budget, default_ranking, round_score
from producers.semantic import Semantic
from producers.validation import check_id
from producers.visibility import Reader, Visibility
from producers.writer import EventWriter, WriteResult, backoff
from projectors import AmbiguousIdError, MemoryFilter, MemoryQueries, ProjectionRunner
from schemas import Memory, encode_payload, format_ts, now_ts, parse_ts
from schemas.events import (
    EventPayload,
    MemoriesArchived,
    MemoryChanges,
    MemoryDeleted,
    MemoryExpired,
    MemoryForgotten,
    MemoryImported,
    MemoryPromoted,
    MemoryStored,
    MemoryTouched,
    MemoryUpdated,
    TouchRules,
)

__all__ = ["DuplicateCheck", "MemoryService", "RecallResult", "ServiceConfig", "StoreResult", "WriteResult",
           "apply_budget", "round_score"]

_MAX_VERSION_SUFFIX = 1024
# Memories per append in a bulk store with embeddings (each memory.stored beside its memory.embedded).
BULK_CHUNK = 128


@dataclass(frozen=True)
class ServiceConfig:
    short_ttl_secs: int | None = 6 * 3600
    mid_ttl_secs: int | None = 7 * 86400
    long_ttl_secs: int | None = None
    touch: TouchRules = field(default_factory=TouchRules)
    write_timeout: float = 10.0
    # Optimistic appends lost to other writers before a store gives up (with backoff: about 1.3 s in all).
    append_retries: int = 10
    # GC moves expired memories to the archive (reason "ttl_expired") rather than deleting them: the
    # original's archive_on_gc, on by default.
    archive_on_gc: bool = True
    # Recall's default ranking, "ours" or "original" (producers.recall); a request may name either.
    ranking: str = field(default_factory=default_ranking)


@dataclass(frozen=True)
class StoreResult:
    memory: Memory
    agent_id: str
    requested_tier: str
    write: WriteResult
    potential_contradictions: list[str]


@dataclass(frozen=True)
class DuplicateCheck:
    is_duplicate: bool
    threshold: float
    nearest: Memory | None
    similarity: float
    candidates_scanned: int


class MemoryService:
    def __init__(self, writer: EventWriter, runner: ProjectionRunner, queries: MemoryQueries, *,
                 config: ServiceConfig | None = None, semantic: Semantic | None = None,
                 gate: WriteGate | None = None, visibility: Visibility | None = None) -> None:
        self.writer = writer
        self.gate = gate
        self.log = writer.log
        self.runner = runner
        self.queries = queries
        self.node_id = writer.node_id
        self.config = config or ServiceConfig()
        self.semantic = semantic
        #: Scope visibility and mandatory as_agent, applied to every read (None: the original's rules only).
        self.visibility = visibility
        self.recaller = RecallPipeline(queries, semantic)

    @property
    def quorum(self) -> QuorumTracker | None:
        return self.writer.quorum

    async def _vectors(self, memories: Sequence[Memory]) -> dict[str, Any]:
        return await self.semantic.embed_memories(memories) if self.semantic is not None else {}

    def _with_vectors(self, events: list[tuple[EventPayload, str]], vectors: dict[str, Any]
                      ) -> list[tuple[EventPayload, str]]:
        """Each memory event followed by the memory.embedded event of its new text, when there is one."""
        if self.semantic is None or not vectors:
            return events
        out: list[tuple[EventPayload, str]] = []
        for event, namespace in events:
            out.append((event, namespace))
            memory_id = event.memory.id if isinstance(event, MemoryStored | MemoryImported) else getattr(
                event, "id", None)
            if isinstance(memory_id, str) and memory_id in vectors:
                out.append((self.semantic.event(memory_id, vectors[memory_id]), namespace))
        return out

    # -- the write path ---------------------------------------------------------------------------------

    async def _govern(self, gated: GatedAction, *, expected: Clock | None = None) -> None:
        """The governance hook, called under the write lock after catching up, before the action's append:
        returns when the action may go ahead; otherwise refuses it (403, or 429 over quota), or appends its
        pending request instead and raises :class:`ActionPendingError` (HTTP 202, MCP ``status: pending``)."""
        if self.gate is None:
            return
        verdict = self.gate.decide(gated)
        self.gate.raise_denied(gated, verdict)
        if verdict.pending is not None:
            write = await self._append([(verdict.pending, gated.namespace)], actor=gated.agent_id, expected=expected)
            write = await self._quorum(write)
            raise ActionPendingError(pending_id=verdict.pending.pending.id, action=gated.action,
                                     namespace=gated.namespace, extra={"offset": write.offset,
                                                                       "log_clock": write.clock()})

    async def _append(self, events: Sequence[tuple[EventPayload, str]], *, actor: str,
                      expected: Clock | None = None) -> WriteResult:
        return await self.writer.append(events, actor=actor, expected=expected)

    async def _quorum(self, write: WriteResult) -> WriteResult:
        return await self.writer.with_quorum(write)

    @property
    def _write_lock(self) -> asyncio.Lock:
        return self.writer.lock

    async def wait_for(self, clock: Clock, *, timeout: float) -> Clock:
        """Read-your-writes across nodes: wait until this node has applied ``clock`` (a writer's answer)."""
        await self.writer.wait(clock, timeout=timeout)
        return self.runner.position

    async def _caught_up(self) -> Clock:
        """Wait until the read model holds everything in the log, and return the log's end."""
        return await self.writer.caught_up()

    async def sync(self) -> Clock:
        """Bring the local read model up to the end of the log (for readers in another process)."""
        return await self._caught_up()

    def _expiry(self, tier: str, now: str, ttl_secs: int | None, expires_at: str | None) -> str | None:
        if expires_at is not None:
            return expires_at
        ttl = ttl_secs if ttl_secs is not None else {
            "short": self.config.short_ttl_secs, "mid": self.config.mid_ttl_secs,
            "long": self.config.long_ttl_secs}[tier]
        return None if ttl is None else format_ts(parse_ts(now) + timedelta(seconds=ttl))

    def _new_memory(self, cmd: CreateCommand, agent_id: str, now: str) -> Memory:
        metadata = dict(cmd.metadata)
        metadata["agent_id"] = agent_id
        if cmd.scope is not None:
            metadata["scope"] = cmd.scope
        return Memory(id=str(uuid.uuid4()), tier=cmd.tier, namespace=cmd.namespace,  # type: ignore[arg-type]
                      title=cmd.title, content=cmd.content, tags=cmd.tags, priority=cmd.priority,
                      confidence=cmd.confidence, source=cmd.source, access_count=0, created_at=now, updated_at=now,
                      expires_at=self._expiry(cmd.tier, now, cmd.ttl_secs, cmd.expires_at), metadata=metadata)

    def _free_title(self, title: str, namespace: str, taken: set[str]) -> str:
        for n in range(2, _MAX_VERSION_SUFFIX + 1):
            candidate = f"{title} ({n})"
            if candidate not in taken and self.queries.find_by_title(candidate, namespace) is None:
                return candidate
        raise ConflictError("could not pick a versioned title")

    def _resolve_conflict(self, memory: Memory, on_conflict: str, taken: set[str]) -> Memory:
        existing = self.queries.find_by_title(memory.title, memory.namespace)
        if existing is None and memory.title not in taken:
            return memory
        if on_conflict == "error":
            msg = f"memory with title '{memory.title}' already exists in namespace '{memory.namespace}'"
            raise ConflictError(msg, existing_id=existing.id if existing else None)
        if on_conflict == "version":
            return replace(memory, title=self._free_title(memory.title, memory.namespace, taken))
        # merge: the event names the existing memory; the projector applies the original's upsert rule.
        return replace(memory, id=existing.id) if existing else memory

    async def store(self, cmd: CreateCommand, *, agent_id: str, on_conflict: str = "error",
                    metered: bool = False) -> StoreResult:
        """Store one memory. ``metered``: an agent's own store (HTTP, MCP), refused over the agent's quota; the
        operator paths (CLI, bulk, import) are charged but never refused."""
        mode = cmd.on_conflict or on_conflict
        # The embedding is computed before the write lock is taken (as the original does).
        draft = self._new_memory(cmd, agent_id, now_ts())
        vectors = await self._vectors([draft])
        for attempt in range(self.config.append_retries):
            if attempt:
                await backoff(attempt)
            async with self._write_lock:
                end = await self._caught_up()
                memory = self._resolve_conflict(self._new_memory(cmd, agent_id, now_ts()), mode, set())
                if memory.title != draft.title:
                    vectors = await self._vectors([memory])  # a versioned title changes the embedded text
                contradictions = self.queries.similar_titles(memory.title, memory.namespace)
                # Keyed by the final id: a merge names the existing memory.
                events = self._with_vectors([(MemoryStored(memory), memory.namespace)],
                                            dict.fromkeys([memory.id], *vectors.values()) if vectors else {})
                try:
                    await self._govern(GatedAction.store(memory, agent_id, metered=metered), expected=end)
                    write = await self._append(events, actor=agent_id, expected=end)
                except AppendConflictError:
                    continue  # another process appended first: re-check against the newer state
            stored = self.queries.get(memory.id) or memory
            return StoreResult(stored, agent_id, cmd.tier, await self._quorum(write), self.visible_ids(contradictions))
        raise ConflictError("the log kept moving under this write; please retry")

    async def bulk_store(self, items: Sequence[CreateCommand | Exception], *, agent_id: str
                         ) -> tuple[list[str], list[dict[str, Any]], WriteResult]:
        """Store many at once. Conflicting titles merge (the original's bulk rule).

        Without a model this is one append. With one, every memory is embedded in one call, then appended in
        chunks of :data:`BULK_CHUNK` (each memory.stored beside its memory.embedded).
        """
        ids: list[str] = []
        errors: list[dict[str, Any]] = []
        pending: list[tuple[EventPayload, str]] = []
        async with self._write_lock:
            end: Clock | None = await self._caught_up()
            now = now_ts()
            memories: list[Memory] = []
            seen: dict[tuple[str, str], str] = {}
            for index, item in enumerate(items):
                if isinstance(item, Exception):
                    errors.append({"index": index, "error": str(item)})
                    continue
                author = item.metadata.get("agent_id") if isinstance(item.metadata.get("agent_id"), str) else None
                memory = self._new_memory(item, author or agent_id, now)
                key = (memory.title, memory.namespace)
                memory = replace(memory, id=seen[key]) if key in seen else self._resolve_conflict(
                    memory, item.on_conflict or "merge", set())
                if self.gate is not None and not self._bulk_gate(memory, agent_id, index, errors, pending):
                    continue
                seen[key] = memory.id
                memories.append(memory)
                ids.append(memory.id)
            if pending:
                await self._append(pending, actor=agent_id, expected=end)
                end = None  # the pending requests moved the log on
            write = await self._append_memories(memories, actor=agent_id, expected=end)
        return ids, errors, await self._quorum(write)

    def _bulk_gate(self, memory: Memory, agent_id: str, index: int, errors: list[dict[str, Any]],
                   pending: list[tuple[EventPayload, str]]) -> bool:
        """Governance for one memory of a bulk store (an operator path: not metered): True to store it now; else
        it is reported in ``errors``, as refused or with the id of its pending request."""
        assert self.gate is not None
        verdict = self.gate.decide(GatedAction.store(memory, agent_id))
        if verdict.denied is not None:
            errors.append({"index": index, "error": f"store denied by governance: {verdict.denied}"})
            return False
        if verdict.pending is not None:
            pending.append((verdict.pending, memory.namespace))
            errors.append({"index": index, "error": "governance requires approval", "status": "pending",
                           "pending_id": verdict.pending.pending.id})
            return False
        return True

    async def _append_memories(self, memories: list[Memory], *, actor: str, expected: Clock | None) -> WriteResult:
        if not memories:
            return WriteResult([])
        if self.semantic is None or not self.semantic.ready:
            return await self._append([(MemoryStored(m), m.namespace) for m in memories], actor=actor,
                                      expected=expected)
        # One embedding call for the whole bulk: the model sorts all the texts by length, so its batches carry
        # less padding than chunk by chunk (measured 0.81-0.84 → 0.84-0.86 of the bare model's rate); embedding
        # while appending gained nothing, both want the same cores.
        vectors = await self._vectors(memories)
        positions: list[LogPosition] = []
        for start in range(0, len(memories), BULK_CHUNK):
            events = self._with_vectors([(MemoryStored(m), m.namespace) for m in memories[start:start + BULK_CHUNK]],
                                        vectors)
            write = await self._append(events, actor=actor, expected=expected if start == 0 else None)
            positions.extend(write.positions)
        return WriteResult(positions)

    async def resolve(self, memory_id: str) -> Memory:
        await self._caught_up()
        memory = self.queries.get(check_id(memory_id))
        if memory is None:
            raise NotFoundError()
        return memory

    async def update(self, memory_id: str, cmd: UpdateCommand, *, agent_id: str) -> tuple[Memory, WriteResult]:
        async with self._write_lock:
            current = await self.resolve(memory_id)
            title = cmd.title if cmd.title is not None else current.title
            namespace = cmd.namespace if cmd.namespace is not None else current.namespace
            clash = self.queries.find_by_title(title, namespace)
            if clash is not None and clash.id != current.id:
                raise ConflictError(f"title '{title}' already exists in namespace '{namespace}' (memory {clash.id})")
            metadata = None
            if cmd.metadata is not None:
                metadata = dict(cmd.metadata)
                if "agent_id" in current.metadata:
                    metadata["agent_id"] = current.metadata["agent_id"]
            changes = MemoryChanges(title=cmd.title, content=cmd.content, tier=cmd.tier,  # type: ignore[arg-type]
                                    namespace=cmd.namespace, tags=cmd.tags, priority=cmd.priority,
                                    confidence=cmd.confidence, expires_at=cmd.expires_at, metadata=metadata)
            event = MemoryUpdated(current.id, changes, now_ts())
            # A pending update holds the would-be memory.updated payload, replayed (restamped) when approved.
            await self._govern(GatedAction.on(current, "update", agent_id, encode_payload(event), namespace))
            events: list[tuple[EventPayload, str]] = [(event, namespace)]
            if cmd.title is not None or cmd.content is not None:
                new_text = replace(current, title=title, content=cmd.content if cmd.content is not None
                                   else current.content)
                events = self._with_vectors(events, await self._vectors([new_text]))
            write = await self._append(events, actor=agent_id)
        updated = self.queries.get(current.id)
        if updated is None:
            raise NotFoundError()
        return updated, await self._quorum(write)

    async def delete(self, memory_id: str, *, agent_id: str) -> WriteResult:
        async with self._write_lock:
            current = await self.resolve(memory_id)
            await self._govern(GatedAction.on(current, "delete", agent_id, {}))
            write = await self._append([(MemoryDeleted(current.id), current.namespace)], actor=agent_id)
        return await self._quorum(write)

    async def promote(self, memory_id: str, *, agent_id: str) -> tuple[Memory, WriteResult]:
        async with self._write_lock:
            current = await self.resolve(memory_id)
            await self._govern(GatedAction.on(current, "promote", agent_id, {"tier": "long"}))
            write = await self._append([(MemoryPromoted(current.id, "long", now_ts()), current.namespace)],
                                       actor=agent_id)
        return self.queries.get(current.id) or current, await self._quorum(write)

    async def forget(self, *, namespace: str | None, pattern: str | None, tier: str | None, agent_id: str
                     ) -> tuple[int, WriteResult]:
        if namespace is None and pattern is None and tier is None:
            raise ValidationError("at least one of namespace, pattern, or tier is required")
        async with self._write_lock:
            await self._caught_up()
            ids = self.queries.forget_ids(namespace=namespace, pattern=pattern, tier=tier)
            if not ids:
                return 0, WriteResult([])
            if self.gate is not None:
                self.gate.check_forget({m.namespace for m in self.queries.get_many(ids)}, agent_id)
            # As the original, forgotten memories are archived (reason "forget") when archive_on_gc is on.
            event: EventPayload = (
                MemoriesArchived(ids, "forget", now_ts()) if self.config.archive_on_gc
                else MemoryForgotten(ids, namespace=namespace, pattern=pattern, tier=tier))  # type: ignore[arg-type]
            write = await self._append([(event, namespace or "global")], actor=agent_id)
        return len(ids), await self._quorum(write)

    async def gc(self, *, agent_id: str = "system:gc") -> tuple[int, WriteResult]:
        async with self._write_lock:
            await self._caught_up()
            now = now_ts()
            ids = self.queries.expired_ids(now)
            if not ids:
                return 0, WriteResult([])
            event: EventPayload = (MemoriesArchived(ids, "ttl_expired", now, expired_only=True)
                                   if self.config.archive_on_gc else MemoryExpired(ids, now))
            write = await self._append([(event, "global")], actor=agent_id)
        return len(ids), write

    def split_tombstoned(self, memories: Sequence[Memory]) -> tuple[list[Memory], list[str]]:
        """The memories an import may append, and an error line for each whose id was deleted here: a deleted
        memory is never restored (the projector would refuse the event; this says so to the importer)."""
        buried = self.queries.tombstoned([m.id for m in memories])
        return ([m for m in memories if m.id not in buried],
                [f"{m.id}: deleted on this node (tombstone); a deleted memory is not restored"
                 for m in memories if m.id in buried])

    async def import_memories(self, memories: Sequence[Memory], *, agent_id: str) -> WriteResult:
        vectors = await self._vectors(memories)
        async with self._write_lock:
            await self._caught_up()
            events: list[tuple[EventPayload, str]] = [(MemoryImported(m), m.namespace) for m in memories]
            events = self._with_vectors(events, vectors)
            write = await self._append(events, actor=agent_id) if events else WriteResult([])
        return await self._quorum(write)

    # -- reads ------------------------------------------------------------------------------------------

    def memory_filter(self, q: ListQuery, *, now: str) -> MemoryFilter:
        flt = MemoryFilter(namespace=q.namespace, tier=q.tier, min_priority=q.min_priority, since=q.since,
                           until=q.until, tag=q.tag, agent_id=q.agent_id, as_agent=q.as_agent, now=now)
        return self.scoped(flt)

    def scoped(self, flt: MemoryFilter) -> MemoryFilter:
        """``flt`` with the mandatory-as_agent rule applied (raises AsAgentRequiredError)."""
        return self.visibility.scoped(flt) if self.visibility is not None else flt

    async def get(self, memory_id: str, *, as_agent: str | None = None) -> Memory:
        """One memory by id or unique prefix, as ``as_agent`` may see it (404 when it may not). A prefix that
        memories the reader may not see share resolves as if they did not exist."""
        if self.visibility is None:
            return await self.resolve(memory_id)
        try:
            memory = await self.resolve(memory_id)
        except AmbiguousIdError as exc:
            memory = self.visibility.one_of(exc, self.queries.get_many(exc.matches), as_agent)
        return self.visibility.check(memory, as_agent)

    def visible_ids(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` the request's reader (without ``as_agent``) may see, in their order."""
        if self.visibility is None or not ids:
            return ids
        seen = {m.id for m in self.visibility.reader(None).visible(self.queries.get_many(ids))}
        return [i for i in ids if i in seen]

    async def list_memories(self, q: ListQuery) -> list[Memory]:
        await self._caught_up()
        return self.queries.list_memories(self.memory_filter(q, now=now_ts()), limit=q.limit, offset=q.offset)

    async def search(self, text: str, q: ListQuery) -> list[Memory]:
        if not text.strip():
            raise ValidationError("query is required")
        await self._caught_up()
        return self.queries.search(text, self.memory_filter(q, now=now_ts()), limit=q.limit)

    async def recall(self, q: RecallQuery, *, agent_id: str) -> RecallResult:
        await self.gc(agent_id="system:gc")
        now = now_ts()
        flt = self.memory_filter(q.filters, now=now)
        namespace = q.filters.namespace
        hierarchical = namespace is not None and "/" in namespace
        if hierarchical and namespace is not None:
            parts = namespace.split("/")
            flt = self.scoped(replace(flt, namespace=None,
                                      namespaces=tuple("/".join(parts[:i]) for i in range(1, len(parts) + 1))))
        ranking = q.ranking or self.config.ranking

        async def touch(ids: list[str]) -> None:
            await self._append([(MemoryTouched(ids, now, self.config.touch), namespace or "global")], actor=agent_id)

        return await self.recaller.run(q, flt, ranking=ranking, now=now, touch=touch)

    async def check_duplicate(self, title: str, content: str, *, namespace: str | None = None,
                              threshold: float = 0.85, as_agent: str | None = None) -> DuplicateCheck:
        """The nearest stored memory to ``title + " " + content`` and whether it is at least ``threshold`` similar.

        Raises:
            UnavailableError: no embedding model is loaded.
        """
        threshold = min(1.0, max(0.5, threshold))
        if self.semantic is None or not self.semantic.ready:
            reason = self.semantic.unavailable if self.semantic is not None else "no embedder configured"
            raise UnavailableError(f"check_duplicate needs the embedder, which is not loaded: {reason}")
        await self._caught_up()
        flt = self.scoped(MemoryFilter(namespace=namespace, as_agent=as_agent, now=now_ts()))
        joined = await self.recaller.nearest(embedding_text(title, content), flt, k=5)
        if joined is None:
            raise UnavailableError("the text could not be embedded")
        scanned = self.semantic.vectors.count(namespace)
        reader = Reader.of(flt)
        if self.visibility is not None and not reader.unfiltered:
            # A filtered reader learns how many memories it may see there, not how many the namespace holds.
            counts = self.visibility.namespace_counts(flt.now or now_ts(), reader)
            scanned = sum(n for ns, n in counts if namespace is None or ns == namespace)
        if not joined:
            return DuplicateCheck(False, threshold, None, 0.0, scanned)
        nearest, similarity = joined[0]
        return DuplicateCheck(similarity >= threshold, threshold, nearest, similarity, scanned)

    async def reembed(self, *, only_missing: bool = False, agent_id: str = "system:reembed", page: int = 256,
                      progress: Callable[[int], None] | None = None) -> int:
        """Append a memory.embedded event for every memory (or those without a vector) with the loaded model:
        how a model change reaches the read models. Returns how many memories were embedded.

        Raises:
            UnavailableError: no embedding model is loaded.
        """
        if self.semantic is None or not self.semantic.ready:
            reason = self.semantic.unavailable if self.semantic is not None else "no embedder configured"
            raise UnavailableError(f"reembed needs the embedder, which is not working: {reason}")
        await self._caught_up()
        done, after = 0, ""
        while rows := self.queries.embedding_sources(after_id=after, limit=page):
            after = rows[-1][0]
            if only_missing:
                have = self.queries.vectors([r[0] for r in rows], model=self.semantic.model)
                rows = [r for r in rows if r[0] not in have]
            vectors = await self.semantic.embed([embedding_text(title, content) for _, title, content in rows])
            if vectors is not None and rows:
                async with self._write_lock:
                    await self._caught_up()
                    # Only memories whose text is still what was embedded (an update meanwhile brought its own
                    # vector; this one would replace it with the old text's): the catch-up runs beside writes.
                    now = {m.id: m for m in self.queries.get_many([r[0] for r in rows])}
                    events: list[tuple[EventPayload, str]] = [
                        (self.semantic.event(r[0], vectors[i]), now[r[0]].namespace) for i, r in enumerate(rows)
                        if r[0] in now and (now[r[0]].title, now[r[0]].content) == (r[1], r[2])]
                    if events:
                        await self._append(events, actor=agent_id)
                done += len(events)
            if progress is not None:
                progress(done)
        return done

