"""The decision at the door of every governed write: allow, deny (403), quota exceeded (429), or hold for
approval (a ``governance.pending_requested`` event). Read-only: it decides against the projected state the
caller has caught up with (under the write lock) and never appends; the caller appends what it returns.

Policies resolve along the namespace chain (:func:`~producers.governance.policy.namespace_chain`): the nearest
namespace whose standard memory carries a policy governs (the walk stops there, as in the original; a policy
with ``inherit: false`` says so explicitly). No policy anywhere → allowed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from producers.errors import ForbiddenError, QuotaExceededError
from producers.governance.config import GovernanceConfig
from producers.governance.policy import GovernancePolicy, ancestors, namespace_chain, policy_of
from projectors import GovernanceQueries, MemoryQueries, NamespaceMeta, memory_bytes
from schemas import Memory, now_ts
from schemas.events import PendingAction, PendingRequested

__all__ = ["Action", "GatedAction", "Verdict", "WriteGate"]

log = logging.getLogger("ai_memory.governance")

Action = Literal["store", "update", "delete", "promote"]


@dataclass(frozen=True)
class GatedAction:
    """One write to decide on. ``payload`` is what a pending request holds (the would-be memory, the changes,
    or the id); ``owner`` is the memory's author (update, delete, promote); ``size`` and ``scope`` are the new
    memory's (store). ``metered``: an agent's own store through HTTP or MCP, checked against its quota."""

    action: Action
    namespace: str
    agent_id: str
    payload: dict[str, Any]
    memory_id: str | None = None
    owner: str | None = None
    scope: str | None = None
    size: int = 0
    metered: bool = False

    @classmethod
    def store(cls, memory: Memory, agent_id: str, *, metered: bool = False) -> GatedAction:
        """Storing ``memory``; a pending request holds the would-be memory."""
        scope = memory.metadata.get("scope")
        return cls("store", memory.namespace, agent_id, memory.to_payload(),
                   scope=scope if isinstance(scope, str) else None, size=memory_bytes(memory), metered=metered)

    @classmethod
    def on(cls, current: Memory, action: Action, agent_id: str, payload: dict[str, Any],
           namespace: str | None = None) -> GatedAction:
        """Changing the existing memory ``current`` (in ``namespace`` when it moves there)."""
        owner = current.metadata.get("agent_id")
        return cls(action, namespace or current.namespace, agent_id, {"id": current.id, **payload},
                   memory_id=current.id, owner=owner if isinstance(owner, str) else None)


@dataclass(frozen=True)
class Verdict:
    """``allowed`` and no pending request: go ahead. ``pending``: append it instead of the action.
    ``denied``: refuse with this reason."""

    pending: PendingRequested | None = None
    denied: str | None = None
    allowed: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", self.pending is None and self.denied is None)


ALLOW = Verdict()


class WriteGate:
    """Governance and quotas for memory writes, decided against the read model."""

    def __init__(self, governance: GovernanceQueries, memories: MemoryQueries, config: GovernanceConfig) -> None:
        self.governance = governance
        self.memories = memories
        self.config = config
        #: Decisions taken since this process started, per mode (the original's K3 counters in
        #: ``GET /capabilities`` ``permissions.decision_counts``). Observability only, so process-local, not events.
        self.decision_counts: dict[str, int] = {"enforce": 0, "advisory": 0, "off": 0}

    # -- policy resolution ----------------------------------------------------------------------------------

    def _standards(self, namespace: str) -> Callable[[str], NamespaceMeta | None]:
        """A lookup of standards for resolving ``namespace``: ``*`` and its ``/`` ancestors are read at once, in
        one query (a write resolves its namespace's chain, and this read was most of its governance cost on
        Postgres), any explicit parent as the chain reaches it."""
        levels = ["*", *ancestors(namespace)]
        known: dict[str, NamespaceMeta | None] = dict.fromkeys(levels)
        known.update(self.governance.standards_of(levels))

        def standard(ns: str) -> NamespaceMeta | None:
            if ns not in known:
                known[ns] = self.governance.standard(ns)
            return known[ns]

        return standard

    def chain(self, namespace: str, standards: Callable[[str], NamespaceMeta | None] | None = None) -> list[str]:
        standard = standards or self._standards(namespace)

        def parent_of(ns: str) -> str | None:
            meta = standard(ns)
            return meta.parent if meta is not None else None

        return namespace_chain(namespace, parent_of)

    def standard_policy(self, namespace: str, standards: Callable[[str], NamespaceMeta | None] | None = None
                        ) -> tuple[GovernancePolicy | None, str | None]:
        """The policy of ``namespace``'s own standard memory and that memory's author (its owner)."""
        meta = (standards or self.governance.standard)(namespace)
        memory = self.memories.get(meta.standard_id) if meta is not None else None
        if memory is None:
            return None, None
        owner = memory.metadata.get("agent_id")
        return policy_of(memory.metadata), owner if isinstance(owner, str) else None

    def resolve(self, namespace: str) -> tuple[GovernancePolicy, str] | None:
        """The governing policy and the namespace whose standard holds it; None when nothing governs."""
        standards = self._standards(namespace)
        for level in reversed(self.chain(namespace, standards)):
            policy, _ = self.standard_policy(level, standards)
            if policy is not None:
                return policy, level
        return None

    def is_registered(self, agent_id: str) -> bool:
        return self.governance.agent(agent_id) is not None

    # -- the decision ---------------------------------------------------------------------------------------

    def decide(self, gated: GatedAction) -> Verdict:
        """Quota first (a metered store over quota is refused whatever the policy), then the policy under the
        mode.

        Raises:
            QuotaExceededError: the store would go over the agent's quota.
        """
        if gated.action == "store" and gated.metered:
            self.check_memory_quota(gated.agent_id, gated.size)
        self.decision_counts[self.config.mode] += 1
        if self.config.mode == "off":
            return ALLOW
        verdict = self._evaluate(gated)
        if self.config.mode == "advisory" and not verdict.allowed:
            what = "would-deny" if verdict.denied else "would-queue-approval"
            log.warning("governance mode advisory: %s suppressed (allowing) for %s by %s in %s: %s", what,
                        gated.action, gated.agent_id, gated.namespace, verdict.denied or "approval required")
            return ALLOW
        return verdict

    def _evaluate(self, gated: GatedAction) -> Verdict:
        if gated.action in ("update", "delete") and gated.memory_id is not None \
                and self.governance.is_standard(gated.memory_id) and gated.owner != gated.agent_id:
            # Beyond the original: a standard memory holds its namespace's policy; only its owner may rewrite
            # or remove it (else any writer could lift the policy that gates them).
            return Verdict(denied=f"governance: memory {gated.memory_id} is a namespace standard; only its owner "
                                  f"('{gated.owner}') may change it")
        resolved = self.resolve(gated.namespace)
        if resolved is None:
            return ALLOW
        policy, _ = resolved
        if gated.action == "store" and policy.required_scope is not None:
            scope = gated.scope or "private"
            if scope != policy.required_scope:
                return Verdict(denied=f"governance: namespace requires scope '{policy.required_scope}', "
                                      f"the memory has '{scope}'")
        level = policy.level(gated.action)
        if level == "any":
            return ALLOW
        if level == "registered":
            if self.is_registered(gated.agent_id):
                return ALLOW
            return Verdict(denied=f"governance: caller '{gated.agent_id}' is not a registered agent")
        if level == "owner":
            return self._owner(gated)
        return self._approval(gated)

    def _owner(self, gated: GatedAction) -> Verdict:
        # Store: the owner of the namespace's standard memory; the others: the memory's author.
        owner = gated.owner if gated.action != "store" else self.standard_policy(gated.namespace)[1]
        if owner is None:
            return Verdict(denied="governance: owner-level action has no resolvable owner")
        if owner != gated.agent_id:
            return Verdict(denied=f"governance: caller '{gated.agent_id}' is not the owner ('{owner}')")
        return ALLOW

    def _approval(self, gated: GatedAction) -> Verdict:
        remembered = self.governance.remembered(gated.action, gated.namespace, gated.agent_id, (self.config.session,))
        if remembered == "approve":
            return ALLOW
        if remembered == "deny":
            return Verdict(denied="governance: denied by a remembered decision")
        pending = PendingAction(id=str(uuid.uuid4()), action_type=gated.action, namespace=gated.namespace,
                                payload=gated.payload, requested_by=gated.agent_id, requested_at=now_ts(),
                                timeout_secs=self.config.pending_timeout_secs, memory_id=gated.memory_id)
        return Verdict(pending=PendingRequested(pending))

    # -- quotas ---------------------------------------------------------------------------------------------

    def check_memory_quota(self, agent_id: str, size: int, *, count: int = 1) -> None:
        """Refuse ``count`` more memories of ``size`` bytes in all over the agent's daily or storage quota."""
        usage = self.governance.quota(agent_id)
        today = usage.on(now_ts()[:10]) if usage is not None else None
        memories = today.memories_today if today is not None else 0
        stored = today.storage_bytes if today is not None else 0
        self._check(agent_id, "memories_per_day", memories, count, self.config.max_memories_per_day)
        self._check(agent_id, "storage_bytes", stored, size, self.config.max_storage_bytes)

    def check_forget(self, namespaces: set[str], agent_id: str) -> None:
        """A forget deletes in bulk, without an owner check or approval per memory: refuse it (enforce mode)
        where a policy gates deletes at all."""
        if self.config.mode != "enforce":
            return
        for namespace in sorted(namespaces):
            resolved = self.resolve(namespace)
            if resolved is not None and resolved[0].delete != "any":
                msg = (f"forget denied by governance: deletes in '{namespace}' need level '{resolved[0].delete}'; "
                       "delete those memories one by one")
                raise ForbiddenError(msg)

    def check_link_quota(self, agent_id: str) -> int:
        """For the link path: refuse a link over the agent's links/day quota as this node sees it; returns the
        quota, which the link carries so that the projectors decide it again in log order."""
        usage = self.governance.quota(agent_id)
        current = usage.on(now_ts()[:10]).links_today if usage is not None else 0
        self._check(agent_id, "links_per_day", current, 1, self.config.max_links_per_day)
        return self.config.max_links_per_day

    @staticmethod
    def _check(agent_id: str, limit: str, current: int, adding: int, maximum: int) -> None:
        if current + adding > maximum:
            raise QuotaExceededError(agent_id=agent_id, limit=limit, current=current, maximum=maximum)

    def raise_denied(self, gated: GatedAction, verdict: Verdict) -> None:
        if verdict.denied is not None:
            raise ForbiddenError(f"{gated.action} denied by governance: {verdict.denied}")
