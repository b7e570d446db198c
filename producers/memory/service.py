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
from typing import Any, Literal

from infra.embed import embedding_text
from infra.log import Clock, LogPosition
from producers.errors import ActionPendingError, ConflictError, NotFoundError, UnavailableError, ValidationError
from producers.governance.gate import Action, GatedAction, WriteGate
from producers.identity.visibility import Reader, Visibility
from producers.input.commands import CreateCommand, ListQuery, RecallQuery, UpdateCommand
from producers.input.validation import check_id
from producers.memory.confidence import ShadowSampler
from producers.memory.recall import RecallPipeline, RecallResult, apply_budget, default_ranking, round_score
from producers.memory.semantic import Semantic
from producers.write.outcomes import raise_if_refused
from producers.write.quorum import QuorumTracker
from producers.write.writer import Decided, DecideFn, EventWriter, WriteResult
from projectors import AmbiguousIdError, MemoryFilter, MemoryQueries, ProjectionRunner
from projectors.rules import versioned_titles
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
    PendingRequested,
    TouchRules,
)

__all__ = ["DuplicateCheck", "MemoryService", "RecallResult", "ServiceConfig", "StoreResult", "WriteResult",
           "apply_budget", "round_score"]

#: A check of the memory a change names, before anything is decided (raises to refuse it).
Gate = Callable[[Memory], None]

# Memories per append in a bulk store with embeddings (each memory.stored beside its memory.embedded).
BULK_CHUNK = 128


@dataclass(frozen=True)
class ServiceConfig:
    short_ttl_secs: int | None = 6 * 3600
    mid_ttl_secs: int | None = 7 * 86400
    long_ttl_secs: int | None = None
    touch: TouchRules = field(default_factory=TouchRules)
    write_timeout: float = 10.0
    # GC moves expired memories to the archive (reason "ttl_expired") rather than deleting them: the
    # original's archive_on_gc, on by default.
    archive_on_gc: bool = True
    # Recall's default ranking, "ours" or "original" (producers.memory.recall); a request may name either.
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
                 gate: WriteGate | None = None, visibility: Visibility | None = None,
                 shadow: ShadowSampler | None = None) -> None:
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
        #: The original's confidence shadow mode (AI_MEMORY_CONFIDENCE_SHADOW=1); None when it is off.
        self.shadow = shadow

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
    # Every command is one template (EventWriter.decide_and_append): catch up when the decision needs the
    # whole log, decide against the local read model, append, answer from the outcome the projector recorded.

    def _gate(self, gated: GatedAction, held: list[PendingRequested]) -> PendingRequested | None:
        """Governance, decided against this node's read model: None when the action may go ahead; raises when
        it is refused (403, or 429 over quota); else the pending request to append instead (kept in ``held``)."""
        held.clear()
        if self.gate is None:
            return None
        verdict = self.gate.decide(gated)
        self.gate.raise_denied(gated, verdict)
        if verdict.pending is not None:
            held.append(verdict.pending)
        return verdict.pending

    async def _raise_if_held(self, held: list[PendingRequested], write: WriteResult) -> None:
        """When the write appended a pending request instead of the action: HTTP 202, MCP ``status: pending``."""
        if not held:
            return
        write = await self._quorum(write)
        pending = held[0].pending
        raise ActionPendingError(pending_id=pending.id, action=pending.action_type, namespace=pending.namespace,
                                 extra={"offset": write.offset, "log_clock": write.clock()})

    async def _write(self, decide: DecideFn, *, actor: str, fresh: bool = True) -> WriteResult:
        # Memory commands are re-decided by the projectors in log order: no conditional append, no retry.
        return await self.writer.decide_and_append(decide, actor=actor, fresh=fresh)

    async def _append(self, events: Sequence[tuple[EventPayload, str]], *, actor: str) -> WriteResult:
        return await self.writer.append(events, actor=actor)

    async def _quorum(self, write: WriteResult) -> WriteResult:
        return await self.writer.with_quorum(write)

    @property
    def _write_lock(self) -> asyncio.Lock:
        """The node's lock for local decisions (never held across a round trip to the log)."""
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
        for candidate in versioned_titles(title):
            if candidate not in taken and self.queries.find_by_title(candidate, namespace) is None:
                return candidate
        raise ConflictError("could not pick a versioned title")

    def _resolve_conflict(self, memory: Memory, on_conflict: str, taken: set[str]) -> Memory:
        """The conflict rule against this node's read model: provisional for a single store (the projector
        decides again in log order, see :class:`~schemas.events.MemoryStored`), final for a bulk one."""
        existing = self.queries.find_by_title(memory.title, memory.namespace)
        if existing is None and memory.title not in taken:
            return memory
        if on_conflict == "error":
            raise ConflictError(_taken(memory.title, memory.namespace), existing_id=existing.id if existing else None)
        if on_conflict == "version":
            return replace(memory, title=self._free_title(memory.title, memory.namespace, taken))
        # merge: the event names the existing memory; the projector applies the original's upsert rule.
        return replace(memory, id=existing.id) if existing else memory

    def _daily_quota(self, metered: bool) -> int | None:
        """The quota a metered store carries, for the projector to enforce in log order (exact across nodes)."""
        return self.gate.config.max_memories_per_day if metered and self.gate is not None else None

    async def store(self, cmd: CreateCommand, *, agent_id: str, on_conflict: str = "error",
                    metered: bool = False) -> StoreResult:
        """Store one memory. ``metered``: an agent's own store (HTTP, MCP), refused over the agent's quota; the
        operator paths (CLI, bulk, import) are charged but never refused.

        No lock and no conditional append: the title rule is applied here against this node's model (a taken
        title, the merge target, the versioned title) and again by the projectors in log order, so stores of
        one title racing on several nodes reach one outcome everywhere, and stores of other titles never wait
        for each other."""
        mode = cmd.on_conflict or on_conflict
        draft = self._new_memory(cmd, agent_id, now_ts())
        free = mode == "error" and self.queries.find_by_title(draft.title, draft.namespace) is None
        if mode == "error" and not free:
            await self._caught_up()  # taken here: read the whole log before a 409, the title may have been freed
        # A title just found free (nothing awaited since) needs no second look.
        memory = draft if free else self._resolve_conflict(draft, mode, set())
        try:
            return await self._store(memory, cmd.tier, mode, agent_id=agent_id, metered=metered)
        except ConflictError as exc:
            if memory.id == draft.id or exc.existing_id is not None:
                raise
        # The merge named a memory deleted meanwhile elsewhere: store under the new id, the projector merges by
        # title if another memory holds it by then.
        return await self._store(draft, cmd.tier, mode, agent_id=agent_id, metered=metered)

    async def _store(self, memory: Memory, tier: str, mode: str, *, agent_id: str, metered: bool) -> StoreResult:
        vectors = await self._vectors([memory])  # embedded before deciding (as the original), outside any lock
        held: list[PendingRequested] = []
        contradictions: list[str] = []

        async def decide() -> list[Decided]:
            contradictions[:] = self.queries.similar_titles(memory.title, memory.namespace)
            request = self._gate(GatedAction.store(memory, agent_id, metered=metered), held)
            if request is not None:
                return [(request, memory.namespace)]
            event = MemoryStored(memory, on_conflict=mode, max_per_day=self._daily_quota(metered))  # type: ignore[arg-type]
            return self._with_vectors([(event, memory.namespace)], vectors)

        # Fresh: the governance gate (policies) is decided against everything acknowledged before this store;
        # concurrent stores share one read of the log's end (EventWriter.caught_up).
        write = await self._write(decide, actor=agent_id)
        await self._raise_if_held(held, write)
        raise_if_refused(write, agent_id=agent_id, clash_message=_taken(memory.title, memory.namespace))
        stored = await self._as_stored(memory, vectors, agent_id)
        return StoreResult(stored, agent_id, tier, await self._quorum(write), self.visible_ids(contradictions))

    async def _as_stored(self, memory: Memory, vectors: dict[str, Any], agent_id: str) -> Memory:
        """The memory a store produced. Another store of the title may have come first in log order: then this
        one was merged into it or stored under a further versioned title, and its vector is appended again for
        the memory (and text) it became."""
        stored = self.queries.get(memory.id) or self.queries.find_by_title(memory.title, memory.namespace) or memory
        if vectors and self.semantic is not None and (stored.id, stored.title) != (memory.id, memory.title):
            again = await self._vectors([stored])
            await self._append([(self.semantic.event(i, v), stored.namespace) for i, v in again.items()],
                               actor=agent_id)
        return stored

    async def bulk_store(self, items: Sequence[CreateCommand | Exception], *, agent_id: str
                         ) -> tuple[list[str], list[dict[str, Any]], WriteResult]:
        """Store many at once. Conflicting titles merge (the original's bulk rule; the projector merges a title
        stored meanwhile elsewhere too).

        Without a model this is one append. With one, every memory is embedded in one call, then appended in
        chunks of :data:`BULK_CHUNK` (each memory.stored beside its memory.embedded).
        """
        ids: list[str] = []
        errors: list[dict[str, Any]] = []
        pending: list[tuple[EventPayload, str]] = []
        memories: list[Memory] = []
        await self._caught_up()
        async with self._write_lock:  # local decisions only: the appends below run without it
            now = now_ts()
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
            await self._append(pending, actor=agent_id)
        write = await self._append_memories(memories, actor=agent_id)
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

    async def _append_memories(self, memories: list[Memory], *, actor: str) -> WriteResult:
        if not memories:
            return WriteResult([])
        if self.semantic is None or not self.semantic.ready:
            return await self._append([(MemoryStored(m), m.namespace) for m in memories], actor=actor)
        # One embedding call for the whole bulk: the model sorts all the texts by length, so its batches carry
        # less padding than chunk by chunk (measured 0.81-0.84 → 0.84-0.86 of the bare model's rate); embedding
        # while appending gained nothing, both want the same cores.
        vectors = await self._vectors(memories)
        positions: list[LogPosition] = []
        for start in range(0, len(memories), BULK_CHUNK):
            events = self._with_vectors([(MemoryStored(m), m.namespace) for m in memories[start:start + BULK_CHUNK]],
                                        vectors)
            write = await self._append(events, actor=actor)
            positions.extend(write.positions)
        return WriteResult(positions)

    async def resolve(self, memory_id: str) -> Memory:
        await self._caught_up()
        memory = self.queries.get(check_id(memory_id))
        if memory is None:
            raise NotFoundError()
        return memory

    async def _gated(self, memory_id: str, gate: Gate | None) -> Memory:
        """The memory a change names. With a ``gate`` (a request of a known caller), one the caller may not
        read is not found (404, as its GET), and then the gate may refuse it (403)."""
        if gate is None:
            return await self.resolve(memory_id)
        memory = await self.get(memory_id)
        gate(memory)
        return memory

    def _current(self, memory_id: str) -> Memory:
        """The memory as this node's model holds it now (inside a decision: no catching up)."""
        memory = self.queries.get(memory_id)
        if memory is None:
            raise NotFoundError()
        return memory

    async def update(self, memory_id: str, cmd: UpdateCommand, *, agent_id: str, gate: Gate | None = None
                     ) -> tuple[Memory, WriteResult]:
        """Update a memory. The title rule is checked here and again by the projectors in log order (an update
        that lost a title to a concurrent write is refused there: 409 with the holder's id). ``gate`` may refuse
        the change of the memory found (HTTP's ownership rule); a memory's owner never changes, so it is asked
        once."""
        first = await self._gated(memory_id, gate)
        title = cmd.title if cmd.title is not None else first.title
        namespace = cmd.namespace if cmd.namespace is not None else first.namespace
        vectors: dict[str, Any] = {}
        if cmd.title is not None or cmd.content is not None:  # embedded before deciding, outside the lock
            vectors = await self._vectors([replace(first, title=title, content=cmd.content if cmd.content is not None
                                                   else first.content)])
        held: list[PendingRequested] = []

        async def decide() -> list[Decided]:
            current = self._current(first.id)
            clash = self.queries.find_by_title(title, namespace)
            if clash is not None and clash.id != current.id:
                raise ConflictError(f"title '{title}' already exists in namespace '{namespace}' (memory {clash.id})",
                                    existing_id=clash.id)
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
            request = self._gate(GatedAction.on(current, "update", agent_id, encode_payload(event), namespace), held)
            if request is not None:
                return [(request, namespace)]
            return self._with_vectors([(event, namespace)], vectors)

        write = await self._write(decide, actor=agent_id, fresh=False)
        await self._raise_if_held(held, write)
        raise_if_refused(write, agent_id=agent_id)  # a title taken first in log order: the projector's words
        updated = self.queries.get(first.id)
        if updated is None:
            raise NotFoundError()
        return updated, await self._quorum(write)

    async def _change(self, memory_id: str, action: Action, payload: dict[str, Any], *, agent_id: str,
                      event: Callable[[Memory], EventPayload], gate: Gate | None) -> tuple[Memory, WriteResult]:
        """A governed change of one existing memory (delete, promote): the same template as every write."""
        first = await self._gated(memory_id, gate)
        held: list[PendingRequested] = []

        async def decide() -> list[Decided]:
            current = self._current(first.id)
            request = self._gate(GatedAction.on(current, action, agent_id, payload), held)
            return [(request or event(current), current.namespace)]

        write = await self._write(decide, actor=agent_id, fresh=False)
        await self._raise_if_held(held, write)
        raise_if_refused(write, agent_id=agent_id)
        return self.queries.get(first.id) or first, await self._quorum(write)

    async def delete(self, memory_id: str, *, agent_id: str, gate: Gate | None = None) -> WriteResult:
        _, write = await self._change(memory_id, "delete", {}, agent_id=agent_id,
                                      event=lambda current: MemoryDeleted(current.id), gate=gate)
        return write

    async def promote(self, memory_id: str, *, agent_id: str, tier: Literal["mid", "long"] = "long",
                      gate: Gate | None = None) -> tuple[Memory, WriteResult]:
        """To long (the expiry cleared), or to mid (the original's #831 ``target_tier``: the expiry is kept, as mid
        is a bucket with a TTL)."""
        def event(current: Memory) -> EventPayload:
            if tier == "long":
                return MemoryPromoted(current.id, "long", now_ts())
            return MemoryUpdated(current.id, MemoryChanges(tier="mid"), now_ts())
        return await self._change(memory_id, "promote", {"tier": tier}, agent_id=agent_id, event=event, gate=gate)

    async def forget(self, *, namespace: str | None, pattern: str | None, tier: str | None, agent_id: str
                     ) -> tuple[int, WriteResult]:
        if namespace is None and pattern is None and tier is None:
            raise ValidationError("at least one of namespace, pattern, or tier is required")
        ids: list[str] = []

        async def decide() -> list[Decided]:
            ids[:] = self.queries.forget_ids(namespace=namespace, pattern=pattern, tier=tier)
            if not ids:
                return []
            if self.gate is not None:
                self.gate.check_forget({m.namespace for m in self.queries.get_many(ids)}, agent_id)
            # As the original, forgotten memories are archived (reason "forget") when archive_on_gc is on.
            event: EventPayload = (
                MemoriesArchived(ids, "forget", now_ts()) if self.config.archive_on_gc
                else MemoryForgotten(ids, namespace=namespace, pattern=pattern, tier=tier))  # type: ignore[arg-type]
            return [(event, namespace or "global")]

        write = await self._quorum(await self._write(decide, actor=agent_id))
        return len(ids), write

    async def gc(self, *, agent_id: str = "system:gc") -> tuple[int, WriteResult]:
        ids: list[str] = []

        async def decide() -> list[Decided]:
            now = now_ts()
            ids[:] = self.queries.expired_ids(now)
            if not ids:
                return []
            event: EventPayload = (MemoriesArchived(ids, "ttl_expired", now, expired_only=True)
                                   if self.config.archive_on_gc else MemoryExpired(ids, now))
            return [(event, "global")]

        write = await self._write(decide, actor=agent_id)
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

        async def decide() -> list[Decided]:
            return self._with_vectors([(MemoryImported(m), m.namespace) for m in memories], vectors)

        return await self._quorum(await self._write(decide, actor=agent_id))

    # -- reads ------------------------------------------------------------------------------------------

    def memory_filter(self, q: ListQuery, *, now: str, ranked: bool = False) -> MemoryFilter:
        """The filter ``q`` asks for, narrowed to what the reader sees (``ranked``: for search and recall)."""
        return self.scoped(self._asked(q, now=now), ranked=ranked)

    @staticmethod
    def _asked(q: ListQuery, *, now: str) -> MemoryFilter:
        return MemoryFilter(namespace=q.namespace, tier=q.tier, min_priority=q.min_priority, since=q.since,
                            until=q.until, tag=q.tag, agent_id=q.agent_id, as_agent=q.as_agent, now=now)

    def scoped(self, flt: MemoryFilter, *, ranked: bool = False) -> MemoryFilter:
        """``flt`` with the visibility rules applied (raises AsAgentRequiredError; see ``Visibility.reader``
        for ``ranked``)."""
        return self.visibility.scoped(flt, ranked=ranked) if self.visibility is not None else flt

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
        return self.queries.search(text, self.memory_filter(q, now=now_ts(), ranked=True), limit=q.limit)

    async def recall(self, q: RecallQuery, *, agent_id: str) -> RecallResult:
        await self.gc(agent_id="system:gc")
        now = now_ts()
        flt = self._asked(q.filters, now=now)
        namespace = q.filters.namespace
        if namespace is not None and "/" in namespace:
            parts = namespace.split("/")
            flt = replace(flt, namespace=None,
                          namespaces=tuple("/".join(parts[:i]) for i in range(1, len(parts) + 1)))
        # Scoped once, after the namespaces are known: the anchor is what the recall names either way.
        flt = self.scoped(flt, ranked=True)
        ranking = q.ranking or self.config.ranking

        async def touch(ids: list[str]) -> None:
            where = namespace or "global"
            events: list[tuple[EventPayload, str]] = [(MemoryTouched(ids, now, self.config.touch), where)]
            observed = self.shadow.observe(ids, now) if self.shadow is not None else None
            if observed is not None:  # in the same append: an observation exists only for a recall that did
                events.append((observed, where))
            # Appended after the answer (producers.write.background): the answer was read before it either way.
            self.writer.append_later(events, actor=agent_id)

        return await self.recaller.run(q, flt, ranking=ranking, now=now, touch=touch)

    async def touch(self, ids: list[str], *, agent_id: str) -> WriteResult:
        """Touch these memories as a recall returning them would (the original's ``db::touch``: access count,
        last access, TTL extension, promotion rules), without a recall."""
        return await self._append([(MemoryTouched(ids, now_ts(), self.config.touch), "global")], actor=agent_id)

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
        same = self._identical(title, content, namespace, [m for m, _ in joined], reader, flt.now or now_ts())
        if same is not None:
            return DuplicateCheck(True, threshold, same, 1.0, scanned)
        if not joined:
            return DuplicateCheck(False, threshold, None, 0.0, scanned)
        nearest, similarity = joined[0]
        return DuplicateCheck(similarity >= threshold, threshold, nearest, similarity, scanned)

    def _identical(self, title: str, content: str, namespace: str | None, near: list[Memory], reader: Reader,
                   now: str) -> Memory | None:
        """A visible memory whose ``title + " " + content`` is the asked text byte for byte (the original v0.7.0's
        F18 short-circuit: identical text is a duplicate at similarity 1.0 even where the cosine falls short of
        it, or the memory has no vector): among the nearest, and the memory of that title in the namespace."""
        text = embedding_text(title, content)
        named = self.queries.find_by_title(title, namespace) if namespace is not None else None
        for memory in ([named] if named is not None else []) + near:
            live = memory.expires_at is None or memory.expires_at > now
            if live and embedding_text(memory.title, memory.content) == text and reader.sees(memory):
                return memory
        return None

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



def _taken(title: str, namespace: str) -> str:
    """The original's words for a (title, namespace) that another memory holds."""
    return f"memory with title '{title}' already exists in namespace '{namespace}'"
