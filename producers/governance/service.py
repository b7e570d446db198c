"""The governance commands: namespace standards, pending-action decisions (approve, reject, expire), the agent
registry and quota status. Each command is the writer's one template (:meth:`EventWriter.decide_and_append`):
decided against the caught-up read model under the node's lock, appended unconditionally, answered from the
outcome the projectors recorded in log order. An approval is a :class:`~producers.write.writer.Guarded` group: the
decision, then the approved action's own events naming it as their cause, in one append; the projectors apply
the first decision of a pending action in log order and refuse any later one together with everything it would
have run, so racing approvals on several nodes decide and execute once.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from producers.errors import ForbiddenError, NotFoundError, ValidationError
from producers.governance.config import GovernanceConfig
from producers.governance.gate import WriteGate
from producers.governance.peer import PeerGovernance
from producers.governance.policy import Approver, GovernancePolicy, parse_policy, policy_of
from producers.identity.visibility import visible_page
from producers.input.validation import check_agent_id, check_id, check_namespace, check_tags
from producers.memory.semantic import Semantic
from producers.write.writer import Decided, EventWriter, Guarded, Planned, WriteResult
from projectors import AgentRecord, GovernanceQueries, MemoryQueries, PendingRecord, QuotaUsage
from schemas import Memory, decode_payload, now_ts
from schemas.events import (
    AgentRegistered,
    Approval,
    MemoryChanges,
    MemoryDeleted,
    MemoryPromoted,
    MemoryStored,
    MemoryUpdated,
    PendingDecided,
    PendingExpired,
    PendingVoted,
    RuleRemembered,
    StandardCleared,
    StandardSet,
)

__all__ = ["AGENTS_NAMESPACE", "REMEMBER", "Decision", "GovernanceService"]

log = logging.getLogger("ai_memory.governance")

AGENTS_NAMESPACE = "_agents"
REMEMBER = ("once", "session", "forever")
STANDARD_TAG = "_namespace_standard"
SYSTEM_ACTOR = "system:governance"


@dataclass(frozen=True)
class Decision:
    """What an approve or reject answered: ``body`` in the original's shape; ``collecting`` while a consensus
    still needs votes (HTTP 202)."""

    body: dict[str, Any]
    write: WriteResult = field(default_factory=lambda: WriteResult([]))
    collecting: bool = False


class GovernanceService:
    def __init__(self, writer: EventWriter, governance: GovernanceQueries, memories: MemoryQueries,
                 config: GovernanceConfig | None = None, *, semantic: Semantic | None = None) -> None:
        self.writer = writer
        self.queries = governance
        self.memories = memories
        self.config = config or GovernanceConfig()
        self.gate = WriteGate(governance, memories, self.config)
        self.semantic = semantic
        #: What a peer's sync/push may change here (pending actions, decisions, standards).
        self.peer = PeerGovernance(self)

    async def _decide(self, decide: Callable[[], Awaitable[Sequence[Planned]]], *, actor: str,
                      refused: Callable[[], None] | None = None) -> WriteResult:
        """Decide, append, answer. When the projectors refused the first event in log order (another node
        decided the same thing first), ``refused`` answers as the command answers once that is known: it raises
        what a second, later call gets, or returns where that call changes nothing and succeeds (a vote cast
        twice); without it, a 403 with the projector's reason."""
        write = await self.writer.decide_and_append(decide, actor=actor)
        reason = write.refusal(0)
        if reason is not None and refused is None:
            raise ForbiddenError(f"refused: {reason}")
        if reason is not None and refused is not None:
            refused()
        return await self.writer.with_quorum(write)

    # -- namespace standards --------------------------------------------------------------------------------

    def _check_may_change(self, namespace: str, agent_id: str) -> None:
        """Beyond the original: where a policy governs a namespace (its own or inherited), only the owner of the
        standard that holds that policy may set, replace or clear the namespace's standard — otherwise any agent
        could lift the policy that gates it, or shadow it with a laxer one on a child. Enforce mode only."""
        if self.config.mode != "enforce":
            return
        resolved = self.gate.resolve(namespace)
        if resolved is None:
            return
        _, governing = resolved
        owner = self.gate.standard_policy(governing)[1]
        if owner is not None and owner != agent_id:
            msg = (f"namespace standard change denied by governance: caller '{agent_id}' is not the owner "
                   f"('{owner}') of the policy governing '{namespace}' (set on '{governing}')")
            raise ForbiddenError(msg)

    def _auto_parent(self, namespace: str) -> str | None:
        """The original's parent detection by ``-`` prefix: ``ai-memory-tests`` → ``ai-memory`` → ``ai``, the
        first that has a standard."""
        candidate = namespace
        while "-" in candidate:
            candidate = candidate[:candidate.rindex("-")]
            if candidate and self.queries.standard(candidate) is not None:
                return candidate
        return None

    def _placeholder(self, namespace: str, agent_id: str, now: str) -> Memory:
        """The standard memory HTTP creates when no ``id`` is given (owned by the caller, where the original
        writes ``system``: the owner is who may change the policy later)."""
        existing = self.memories.find_by_title(f"_standard:{namespace}", namespace)
        if existing is not None:
            return existing
        return Memory(id=str(uuid.uuid4()), tier="long", namespace=namespace, title=f"_standard:{namespace}",
                      content=f"namespace standard for {namespace}", tags=[STANDARD_TAG], priority=5, confidence=1.0,
                      source="api", access_count=0, created_at=now, updated_at=now, metadata={"agent_id": agent_id})

    async def set_standard(self, namespace: str, *, standard_id: str | None, parent: str | None, governance: Any,
                           agent_id: str) -> dict[str, Any]:
        """Make ``standard_id`` (or, when None, a placeholder memory) the namespace's standard; a ``governance``
        policy is written into that memory's ``metadata.governance``."""
        namespace = check_namespace(namespace)
        if standard_id is not None:
            standard_id = check_id(standard_id)
        if parent is not None:
            parent = check_namespace(parent, what="parent")
            if parent == namespace:
                raise ValidationError("namespace cannot be its own parent")
        policy = parse_policy(governance) if governance is not None else None
        chosen: dict[str, str | None] = {}

        async def decide() -> list[Decided]:
            self._check_may_change(namespace, agent_id)
            now = now_ts()
            events: list[Decided] = []
            if standard_id is None:
                memory = self._placeholder(namespace, agent_id, now)
                if self.memories.get(memory.id) is None:
                    events.append((MemoryStored(memory), namespace))
            else:
                found = self.memories.get(standard_id)
                if found is None:
                    raise ValidationError(f"memory not found: {standard_id}")
                memory = found
            if policy is not None:
                metadata = {**memory.metadata, "governance": policy.to_json()}
                events.append((MemoryUpdated(memory.id, _metadata_change(metadata), now), memory.namespace))
            chosen["id"] = memory.id
            chosen["parent"] = parent if parent is not None else self._auto_parent(namespace)
            events.append((StandardSet(namespace, memory.id, now, chosen["parent"]), namespace))
            return events

        write = await self._decide(decide, actor=agent_id)
        out: dict[str, Any] = {"set": True, "namespace": namespace, "standard_id": chosen["id"]}
        if parent is not None:
            out["parent"] = parent
        if governance is not None:
            out["governance"] = governance
        return _written(out, write)

    def _standard_entry(self, namespace: str) -> dict[str, Any] | None:
        meta = self.queries.standard(namespace)
        memory = self.memories.get(meta.standard_id) if meta is not None else None
        if meta is None or memory is None:
            return None
        return {"namespace": namespace, "standard_id": memory.id, "title": memory.title, "content": memory.content,
                "priority": memory.priority, "governance": (policy_of(memory.metadata) or GovernancePolicy()).to_json()}

    async def get_standard(self, namespace: str, *, inherit: bool = False) -> dict[str, Any]:
        namespace = check_namespace(namespace)
        await self.writer.caught_up()
        if inherit:
            chain = self.gate.chain(namespace)
            standards = [e for e in (self._standard_entry(ns) for ns in chain) if e is not None]
            return {"namespace": namespace, "chain": chain, "standards": standards, "count": len(standards)}
        meta = self.queries.standard(namespace)
        if meta is None:
            return {"namespace": namespace, "standard_id": None}
        entry = self._standard_entry(namespace)
        if entry is None:
            return {"namespace": namespace, "standard_id": meta.standard_id,
                    "warning": "standard memory not found \u2014 may have been deleted"}
        if meta.parent is not None:
            entry["parent"] = meta.parent
        return entry

    def standards_for(self, namespace: str | None) -> list[Memory]:
        """The standard memories along ``namespace``'s chain, most general first, each once (``*`` alone without
        a namespace): what the original attaches to recall and session_start answers. Reads the read model as it
        is (callers have just caught up)."""
        out: dict[str, Memory] = {}
        for ns in self.gate.chain(namespace) if namespace else ["*"]:
            meta = self.queries.standard(ns)
            memory = self.memories.get(meta.standard_id) if meta is not None else None
            if memory is not None:
                out.setdefault(memory.id, memory)
        return list(out.values())

    async def clear_standard(self, namespace: str, *, agent_id: str) -> dict[str, Any]:
        namespace = check_namespace(namespace)
        cleared = False

        async def decide() -> list[Decided]:
            nonlocal cleared
            cleared = self.queries.standard(namespace) is not None
            if not cleared:
                return []
            self._check_may_change(namespace, agent_id)
            return [(StandardCleared(namespace), namespace)]

        write = await self._decide(decide, actor=agent_id)
        return _written({"cleared": cleared, "namespace": namespace}, write)

    # -- pending actions ------------------------------------------------------------------------------------

    async def list_pending(self, *, status: str | None = None, limit: int = 100,
                           reader: str | None = None) -> list[PendingRecord]:
        """The newest pending actions; with a ``reader``, only those it may see (:meth:`may_see_pending`), the
        limit counting those alone. No reader: the local operator's surfaces (CLI, the node's own work)."""
        if status is not None and status not in ("pending", "approved", "rejected", "expired"):
            raise ValidationError("status must be one of pending, approved, rejected, expired")
        await self.writer.caught_up()
        limit = max(1, min(limit, 1000))
        if reader is None:
            return self.queries.list_pending(status=status, limit=limit)
        return visible_page(lambda n, skip: self.queries.list_pending(status=status, limit=n, offset=skip),
                            lambda p: self.may_see_pending(p, reader), limit=limit, offset=0)

    def may_see_pending(self, pending: PendingRecord, reader: str) -> bool:
        """A pending action carries what would be written (a memory's content, a namespace's shape): it is
        shown to its requester (the original's rule since v0.7.0), to an operator (``host:…``, as the approvals
        feed), and beyond the original to whoever may decide it now: the agent the policy names, or under
        consensus a registered agent."""
        if reader.startswith("host:") or reader.lower() == pending.requested_by.lower():
            return True
        approver = self.approver(pending)
        return approver.kind != "human" and not self._rules_out(approver, reader)

    def _rules_out(self, approver: Approver, agent_id: str) -> bool:
        """Whether ``approver`` leaves ``agent_id`` no say: another agent is named, or under consensus it is not
        a registered agent (a human approver leaves anyone a say)."""
        if approver.kind == "agent":
            return agent_id != approver.agent_id
        return approver.kind == "consensus" and self.queries.agent(agent_id) is None

    def approver(self, pending: PendingRecord) -> Approver:
        """The approver the namespace's policy names now (as the original: the current policy decides)."""
        resolved = self.gate.resolve(pending.namespace)
        return resolved[0].approver if resolved is not None else Approver()

    def _open(self, pending_id: str, verb: str) -> PendingRecord:
        pending = self.queries.pending(check_id(pending_id))
        if pending is None:
            raise ForbiddenError(f"{verb} rejected: pending action not found: {pending_id}")
        if pending.status != "pending":
            raise ForbiddenError(f"{verb} rejected: already decided: status={pending.status}")
        return pending

    async def approve(self, pending_id: str, *, agent_id: str, remember: str = "once") -> Decision:
        """Approve (or vote for) a pending action; once approved, its action is appended with the decision.

        Racing approvals are put in order by the log: the first decision applied wins, a later one is refused
        by the projectors with everything it would have run, and its caller gets what a later call gets (403,
        already decided). Under consensus, a vote that did not reach the quorum when decided may have reached it
        in log order (votes racing on several nodes): its voter then decides, as the last voter would.

        Raises:
            ForbiddenError: unknown or decided, the caller may not approve it, or is its requester.
        """
        remember = _remember(remember)
        await self.writer.caught_up()
        first = self.queries.pending(check_id(pending_id))
        new_id = str(uuid.uuid4())
        vectors = await self.store_vectors(first, new_id) if first is not None else []
        outcome: dict[str, Any] = {}

        async def decide() -> list[Planned]:
            outcome.clear()
            pending = self._open(pending_id, "approve")
            approvals = self._approvals(pending, agent_id)
            quorum = self.approver(pending).quorum
            if approvals is not None and len(approvals) < quorum:  # a consensus still collecting votes
                outcome.update(votes=len(approvals), quorum=quorum)
                if len(approvals) == len(pending.approvals):  # the caller had voted already
                    return []
                return [(PendingVoted(pending.id, approvals[-1], quorum), pending.namespace)]
            now = now_ts()
            action, result_id = self.action_events(pending, now, new_id, vectors)
            outcome.update(result_id=result_id, executed=bool(action))
            decided = PendingDecided(pending.id, "approved", _decider(approvals, agent_id), now, approvals or [],
                                     bool(action), result_id, remember, pending.namespace,  # type: ignore[arg-type]
                                     pending.requested_by)
            return [Guarded((decided, pending.namespace),
                            [*action, *self._remembered(pending, "approve", remember, now)])]

        def refused() -> None:
            # Decided first elsewhere: raises what a later call gets. Still open: this was a vote the caller
            # cast on another node too, and the answer is the same as that one's (still collecting).
            self._open(pending_id, "approve")

        write = await self._decide(decide, actor=agent_id, refused=refused)
        if "quorum" in outcome and self._quorum_reached(pending_id, outcome["quorum"]):
            write = await self._decide(decide, actor=agent_id, refused=refused)  # the votes met in log order
        if "quorum" in outcome:
            return Decision({"approved": False, "status": "pending", "id": pending_id, "votes": outcome["votes"],
                             "quorum": outcome["quorum"], "reason": "consensus threshold not yet reached",
                             "remember": remember}, write, collecting=True)
        return Decision(_written({"approved": True, "id": pending_id, "decided_by": agent_id,
                                  "executed": outcome["executed"], "memory_id": outcome["result_id"],
                                  "remember": remember}, write), write)

    def _approvals(self, pending: PendingRecord, agent_id: str) -> list[Approval] | None:
        """The approvals a decision by ``agent_id`` records: under consensus the votes so far and the caller's
        (once); None for a single approver. Raises when the caller may not approve."""
        if pending.requested_by.lower() == agent_id.lower():
            raise ForbiddenError("approve rejected: the requester cannot approve its own request")
        approver = self.approver(pending)
        if self._rules_out(approver, agent_id):
            raise ForbiddenError(f"approve rejected: designated approver is '{approver.agent_id}'; got '{agent_id}'"
                                 if approver.kind == "agent" else
                                 f"approve rejected: consensus voter '{agent_id}' is not a registered agent")
        if approver.kind != "consensus":
            return None
        approvals = [Approval(a["agent_id"], a["approved_at"]) for a in pending.approvals]
        if not any(a.agent_id.lower() == agent_id.lower() for a in approvals):
            approvals.append(Approval(agent_id.lower(), now_ts()))
        return approvals

    def _quorum_reached(self, pending_id: str, quorum: int) -> bool:
        """Whether votes applied in log order (this caller's and others', racing) met ``quorum`` while the
        action is still pending: then a vote must decide it."""
        pending = self.queries.pending(pending_id)
        return pending is not None and pending.status == "pending" and len(pending.approvals) >= quorum

    async def reject(self, pending_id: str, *, agent_id: str, remember: str = "once") -> Decision:
        """Reject a pending action. The requester may withdraw its own request; otherwise the caller must be
        one who could approve it (the named agent; a registered agent under consensus).

        Raises:
            NotFoundError: no such pending action, or it is already decided (the original's 404).
            ForbiddenError: the caller may not decide it.
        """
        remember = _remember(remember)

        async def decide() -> list[Planned]:
            pending = self.queries.pending(check_id(pending_id))
            if pending is None or pending.status != "pending":
                raise NotFoundError("pending action not found or already decided")
            if pending.requested_by.lower() != agent_id.lower():
                self._check_may_reject(pending, agent_id)
            now = now_ts()
            approvals = [Approval(a["agent_id"], a["approved_at"]) for a in pending.approvals]
            decided = PendingDecided(pending.id, "rejected", agent_id, now, approvals, False, None,
                                     remember, pending.namespace, pending.requested_by)  # type: ignore[arg-type]
            return [Guarded((decided, pending.namespace), self._remembered(pending, "deny", remember, now))]

        def refused() -> None:
            raise NotFoundError("pending action not found or already decided")  # decided first elsewhere

        write = await self._decide(decide, actor=agent_id, refused=refused)
        return Decision(_written({"rejected": True, "id": pending_id, "decided_by": agent_id, "remember": remember},
                                 write), write)

    def _check_may_reject(self, pending: PendingRecord, agent_id: str) -> None:
        approver = self.approver(pending)
        if self._rules_out(approver, agent_id):
            raise ForbiddenError(f"reject refused: designated approver is '{approver.agent_id}'; got '{agent_id}'"
                                 if approver.kind == "agent" else
                                 f"reject refused: '{agent_id}' is not a registered agent")

    def _remembered(self, pending: PendingRecord, decision: Literal["approve", "deny"], remember: str,
                    now: str) -> list[Decided]:
        if remember == "once":
            return []
        rule = RuleRemembered(pending.action_type, pending.namespace, pending.requested_by,  # type: ignore[arg-type]
                              decision, remember, now,  # type: ignore[arg-type]
                              self.config.session if remember == "session" else None)
        return [(rule, pending.namespace)]

    async def store_vectors(self, pending: PendingRecord, new_id: str) -> list[Decided]:
        """The memory.embedded event of the memory an approved store creates (computed before the lock)."""
        if pending.action_type != "store" or self.semantic is None or not self.semantic.ready:
            return []
        memory = _stored_memory(pending, new_id, now_ts())
        vectors = await self.semantic.embed_memories([memory])
        return [(self.semantic.event(new_id, v), memory.namespace) for v in vectors.values()]

    def action_events(self, pending: PendingRecord, now: str, new_id: str, vectors: list[Decided]
                 ) -> tuple[list[Decided], str | None]:
        """The approved action's own events (none when it no longer applies) and the memory it produced."""
        ns = pending.namespace
        if pending.action_type == "store":
            memory = _stored_memory(pending, new_id, now)
            existing = self.memories.find_by_title(memory.title, memory.namespace)
            if existing is not None:  # the title was taken meanwhile: the original's upsert keeps that memory
                return [(MemoryStored(replace(memory, id=existing.id)), ns)], existing.id
            return [(MemoryStored(memory), ns), *vectors], memory.id
        memory_id = pending.memory_id or str(pending.payload.get("id", ""))
        current = self.memories.get(memory_id)
        if current is None:
            return [], None
        if pending.action_type == "delete":
            return [(MemoryDeleted(current.id), current.namespace)], current.id
        if pending.action_type == "promote":
            return [(MemoryPromoted(current.id, "long", now), current.namespace)], current.id
        event: MemoryUpdated = decode_payload(MemoryUpdated.TYPE, pending.payload)
        changes = event.changes
        title, namespace = changes.title or current.title, changes.namespace or current.namespace
        clash = self.memories.find_by_title(title, namespace)
        if clash is not None and clash.id != current.id:
            return [], None
        return [(replace(event, updated_at=now), namespace)], current.id

    async def expire_due(self) -> int:
        """The sweeper: append one expiry event for every pending action whose time ran out. Returns how many."""
        expired: list[str] = []

        async def decide() -> list[Decided]:
            now = now_ts()
            expired[:] = self.queries.due_pending(now)
            return [(PendingExpired(list(expired), now), "global")] if expired else []

        await self._decide(decide, actor=SYSTEM_ACTOR)
        if expired:
            log.info("expired %d pending actions", len(expired))
        return len(expired)

    # -- agents and quotas ----------------------------------------------------------------------------------

    async def register_agent(self, agent_id: str, agent_type: str, capabilities: Any) -> dict[str, Any]:
        """Register an agent: the original's ``agent:<id>`` memory in ``_agents`` and an ``agent.registered``
        event (the projected registry the ``registered`` level and consensus voting read), in one append.
        ``agent_type`` is checked by the caller."""
        agent_id = check_agent_id(agent_id)
        caps = check_tags(capabilities or [])
        stored: dict[str, str] = {}

        async def decide() -> list[Decided]:
            now = now_ts()
            title = f"agent:{agent_id}"
            previous = self.memories.find_by_title(title, AGENTS_NAMESPACE)
            registered_at = previous.metadata.get("registered_at", now) if previous is not None else now
            metadata = {"agent_id": agent_id, "agent_type": agent_type, "capabilities": caps,
                        "registered_at": registered_at, "last_seen_at": now}
            memory = Memory(id=previous.id if previous is not None else str(uuid.uuid4()), tier="long",
                            namespace=AGENTS_NAMESPACE, title=title, content=json.dumps(metadata, sort_keys=True),
                            tags=["agent-registration"], priority=5, confidence=1.0, source="system", access_count=0,
                            created_at=now, updated_at=now, metadata=metadata)
            stored["id"] = memory.id
            return [(MemoryStored(memory), AGENTS_NAMESPACE),
                    (AgentRegistered(agent_id, agent_type, caps, now), AGENTS_NAMESPACE)]

        write = await self._decide(decide, actor=agent_id)
        return _written({"registered": True, "id": stored["id"], "agent_id": agent_id, "agent_type": agent_type,
                         "capabilities": caps}, write)

    async def list_agents(self) -> list[AgentRecord]:
        await self.writer.caught_up()
        return self.queries.agents()

    def _quota_row(self, usage: QuotaUsage) -> dict[str, Any]:
        today = usage.on(now_ts()[:10])
        return {"agent_id": usage.agent_id, "max_memories_per_day": self.config.max_memories_per_day,
                "max_storage_bytes": self.config.max_storage_bytes, "max_links_per_day": self.config.max_links_per_day,
                "current_memories_today": today.memories_today, "current_storage_bytes": today.storage_bytes,
                "current_links_today": today.links_today, "day_started_at": today.day, "created_at": usage.created_at,
                "updated_at": usage.updated_at}

    async def quota_status(self, agent_id: str | None = None) -> dict[str, Any]:
        """The original's ``memory_quota_status``: one agent's row (zeros when it has written nothing), or all."""
        await self.writer.caught_up()
        if agent_id is None:
            rows = [self._quota_row(u) for u in self.queries.quotas()]
            return {"count": len(rows), "quotas": rows}
        agent_id = check_agent_id(agent_id)
        now = now_ts()
        usage = self.queries.quota(agent_id) or QuotaUsage(agent_id, now[:10], 0, 0, 0, now, now)
        return {"agent_id": agent_id, "quota": self._quota_row(usage)}


def _decider(approvals: list[Approval] | None, agent_id: str) -> str:
    """Who decided: the caller; under consensus, as a vote records it (lower case)."""
    return agent_id if approvals is None else agent_id.lower()


def _remember(value: str | None) -> str:
    if value is None:
        return "once"
    if value not in REMEMBER:
        raise ValidationError("remember must be one of once, session, forever")
    return value


def _metadata_change(metadata: dict[str, Any]) -> MemoryChanges:
    return MemoryChanges(metadata=metadata)


def _stored_memory(pending: PendingRecord, new_id: str, now: str) -> Memory:
    """The memory an approved store creates: the requested one with a fresh id and timestamps (the original)."""
    requested: MemoryStored = decode_payload(MemoryStored.TYPE, {"memory": pending.payload})
    return replace(requested.memory, id=new_id, created_at=now, updated_at=now, access_count=0)


def _written(body: dict[str, Any], write: WriteResult) -> dict[str, Any]:
    if write.positions:
        body["offset"] = write.offset
        body["log_clock"] = write.clock()
    return body
