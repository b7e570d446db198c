"""What a peer's ``sync/push`` may change in governance: pending actions, their decisions, namespace standards.

A push is a peer path. Its sender is trusted at the transport (the mTLS allowlist, the API key), not by
governance: the decisions it carries were checked where they were made. So, as in the original,

- a pushed pending action lands as its originator recorded it (id, requester, times, status, votes);
- a pushed decision (``{id, approved, decider}``) is applied without the approver check, and an approval runs
  the action (the original's ``execute_pending_action``), appended with the decision as a local approval is;
- a pushed namespace standard (``{namespace, standard_id, parent_namespace, updated_at}``) or clear is applied
  without the owner check.

What a peer cannot do: decide a pending action this node does not know (a no-op), decide again one already
decided here (a no-op: the first decision stands), run an action that was not approved (a pushed row that
says ``approved`` records the status and runs nothing), or bring back an older standard over a newer one
(``updated_at`` decides). Everything lands in one append, so a re-push of the same payload is all no-ops.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

from producers.errors import ValidationError
from producers.input.validation import check_id, check_namespace, check_timestamp
from producers.memory.wire import memory_from_import
from producers.write.writer import Decided, Guarded, Planned, WriteResult
from projectors import NamespaceMeta, PendingRecord
from projectors.governance_queries import pending_expiry
from schemas import PayloadError, decode_payload, encode_payload, now_ts, parse_ts
from schemas.events import (
    Approval,
    MemoryStored,
    MemoryUpdated,
    PendingAction,
    PendingActionType,
    PendingDecided,
    PendingExpired,
    PendingRequested,
    StandardCleared,
    StandardSet,
)

if TYPE_CHECKING:
    from producers.governance.service import GovernanceService

__all__ = ["GovernancePush", "PeerGovernance", "PeerOutcome"]

_ACTIONS: tuple[str, ...] = get_args(PendingActionType)
_STATUSES = ("pending", "approved", "rejected", "expired")


@dataclass(frozen=True)
class PeerDecision:
    id: str
    approved: bool
    decider: str


@dataclass(frozen=True)
class GovernancePush:
    """The governance arrays of a push, checked. Malformed items are already counted in ``skipped``."""

    pendings: list[PendingRecord] = field(default_factory=list)
    decisions: list[PeerDecision] = field(default_factory=list)
    meta: list[NamespaceMeta] = field(default_factory=list)
    clears: list[str] = field(default_factory=list)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class PeerOutcome:
    """The original's counters for these arrays."""

    pendings_applied: int = 0
    pending_decisions_applied: int = 0
    namespace_meta_applied: int = 0
    namespace_meta_cleared: int = 0
    noop: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    write: WriteResult = field(default_factory=lambda: WriteResult([]))


def _text(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string")
    return value


def _optional_text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value in (None, "") else _text(item, name)


def _approvals(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise ValidationError("approvals must be an array of {agent_id, approved_at}")
    return [{"agent_id": _text(a, "agent_id"), "approved_at": check_timestamp(a.get("approved_at"), "approved_at")}
            for a in value]


def _action_payload(action: str, payload: Any) -> dict[str, Any]:
    """The payload as this node's approval will run it: a store's would-be memory in the original's Memory shape
    (normalized to ours), an update's changes; a delete or promote names its memory (``memory_id``)."""
    if not isinstance(payload, dict):
        raise ValidationError("payload must be an object")
    if action == "store":
        memory: dict[str, Any] = encode_payload(MemoryStored(memory_from_import(payload)))["memory"]
        return memory
    if action == "update":
        try:
            decode_payload(MemoryUpdated.TYPE, payload)
        except PayloadError as exc:
            raise ValidationError(f"payload of an update: {exc}") from None
    return payload


def _pending(item: Any, default_timeout: int) -> PendingRecord:
    """The original's pending-action wire shape (ours adds ``default_timeout_seconds``)."""
    if not isinstance(item, dict):
        raise ValidationError("a pending action must be an object")
    action = _text(item, "action_type")
    if action not in _ACTIONS:
        raise ValidationError(f"action_type must be one of {', '.join(_ACTIONS)}")
    status = item.get("status", "pending")
    if status not in _STATUSES:
        raise ValidationError(f"status must be one of {', '.join(_STATUSES)}")
    payload = _action_payload(action, item.get("payload"))
    timeout = item.get("default_timeout_seconds", default_timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise ValidationError("default_timeout_seconds must be a positive integer")
    memory_id = item.get("memory_id")
    requested_at = check_timestamp(item.get("requested_at"), "requested_at")
    decided_at = item.get("decided_at")
    return PendingRecord(
        id=check_id(item.get("id")), action_type=action, namespace=check_namespace(item.get("namespace")),
        payload=payload, requested_by=_text(item, "requested_by"), requested_at=requested_at, status=status,
        memory_id=None if memory_id is None else check_id(memory_id), decided_by=_optional_text(item, "decided_by"),
        decided_at=None if decided_at in (None, "") else check_timestamp(decided_at, "decided_at"),
        approvals=_approvals(item.get("approvals")), timeout_secs=timeout,
        expires_at=pending_expiry(requested_at, timeout))


def _decision(item: Any) -> PeerDecision:
    if not isinstance(item, dict):
        raise ValidationError("a pending decision must be an object")
    if not isinstance(item.get("approved"), bool):
        raise ValidationError("approved must be a boolean")
    return PeerDecision(check_id(item.get("id")), item["approved"], _text(item, "decider"))


def _meta(item: Any) -> NamespaceMeta:
    if not isinstance(item, dict):
        raise ValidationError("a namespace_meta entry must be an object")
    namespace = check_namespace(item.get("namespace"))
    parent = item.get("parent_namespace")
    if parent is not None:
        parent = check_namespace(parent, what="parent_namespace")
        if parent == namespace:
            raise ValidationError("namespace cannot be its own parent")
    updated_at = item.get("updated_at")
    return NamespaceMeta(namespace, check_id(item.get("standard_id")), parent,
                         now_ts() if updated_at in (None, "") else check_timestamp(updated_at, "updated_at"))


def parse_push(pendings: Sequence[Any], decisions: Sequence[Any], meta: Sequence[Any], clears: Sequence[Any],
               *, default_timeout: int) -> GovernancePush:
    """Check every item; a malformed one is skipped with an error naming its array."""
    out = GovernancePush()
    errors: list[str] = []
    skipped = 0

    def each(items: Sequence[Any], name: str, parse: Any, into: list[Any]) -> None:
        nonlocal skipped
        for item in items:
            try:
                into.append(parse(item))
            except ValidationError as exc:
                skipped += 1
                errors.append(f"{name}: {exc}")

    each(pendings, "pendings", lambda i: _pending(i, default_timeout), out.pendings)
    each(decisions, "pending_decisions", _decision, out.decisions)
    each(meta, "namespace_meta", _meta, out.meta)
    each(clears, "namespace_meta_clears", lambda ns: check_namespace(ns), out.clears)
    return replace(out, skipped=skipped, errors=errors)


def _closing(pending: PendingRecord, now: str, sender: str) -> list[Decided]:
    """The event that records a pushed row's final status (no action runs: only a decision runs one). A row
    that does not say who decided or when was decided by its sender, as far as this node knows, now."""
    if pending.status == "expired":
        return [(PendingExpired([pending.id], pending.decided_at or now), pending.namespace)]
    status: Literal["approved", "rejected"] = "approved" if pending.status == "approved" else "rejected"
    approvals = [Approval(a["agent_id"], a["approved_at"]) for a in pending.approvals]
    return [(PendingDecided(pending.id, status, pending.decided_by or sender,
                            pending.decided_at or now, approvals, False, None, "once", pending.namespace,
                            pending.requested_by), pending.namespace)]


def _later(a: str, b: str) -> bool:
    return parse_ts(a) > parse_ts(b)


class PeerGovernance:
    """Applies a push's governance arrays through the governance service's state and action rules."""

    def __init__(self, service: GovernanceService) -> None:
        self.service = service

    def parse(self, arrays: dict[str, list[Any]]) -> GovernancePush:
        return parse_push(arrays["pendings"], arrays["pending_decisions"], arrays["namespace_meta"],
                          arrays["namespace_meta_clears"], default_timeout=self.service.config.pending_timeout_secs)

    async def apply(self, push: GovernancePush, *, agent_id: str, dry_run: bool = False) -> PeerOutcome:
        """Everything in one append (``dry_run``: the same counters, nothing written)."""
        service = self.service
        await service.writer.caught_up()
        # The memory an approved store creates gets its id and vector before the lock, as a local approval.
        new_ids = {d.id: str(uuid.uuid4()) for d in push.decisions if d.approved}
        pushed = {p.id: p for p in push.pendings}
        vectors: dict[str, list[Decided]] = {}
        if not dry_run:
            for pending_id, new_id in new_ids.items():
                pending = service.queries.pending(pending_id) or pushed.get(pending_id)
                if pending is not None:
                    vectors[pending_id] = await service.store_vectors(pending, new_id)
        outcomes: list[PeerOutcome] = []

        async def decide() -> list[Planned]:
            outcomes[:] = [PeerOutcome(skipped=push.skipped, errors=list(push.errors))]  # a retry starts afresh
            return self._plan(push, outcomes[0], new_ids, vectors, now_ts(), agent_id)

        if dry_run:
            await decide()
            return outcomes[0]
        write = await service.writer.with_quorum(await service.writer.decide_and_append(decide, actor=agent_id))
        return replace(outcomes[0], write=write)

    def _plan(self, push: GovernancePush, out: PeerOutcome, new_ids: dict[str, str],
              vectors: dict[str, list[Decided]], now: str, sender: str) -> list[Planned]:
        queries = self.service.queries
        events: list[Planned] = []
        # What this append has already done, so later items (a decision of a pushed pending) see it.
        pendings: dict[str, PendingRecord | None] = {}
        standards: dict[str, NamespaceMeta | None] = {}

        def pending_of(pending_id: str) -> PendingRecord | None:
            return pendings[pending_id] if pending_id in pendings else queries.pending(pending_id)

        def standard_of(namespace: str) -> NamespaceMeta | None:
            return standards[namespace] if namespace in standards else queries.standard(namespace)

        for p in push.pendings:
            current = pending_of(p.id)
            if current is None:
                request = PendingAction(p.id, p.action_type, p.namespace, p.payload,  # type: ignore[arg-type]
                                        p.requested_by, p.requested_at, p.timeout_secs, p.memory_id)
                events.append((PendingRequested(request), p.namespace))
            elif not (current.status == "pending" and p.status != "pending"):
                out.noop += 1  # known, and nothing new: the same row again, or already decided here
                continue
            if p.status != "pending":
                events.extend(_closing(p, now, sender))
            pendings[p.id] = p
            out.pendings_applied += 1
        for d in push.decisions:
            current = pending_of(d.id)
            if current is None or current.status != "pending":
                out.noop += 1  # unknown here (nothing to decide), or decided already: the first decision stands
                continue
            approvals = [Approval(a["agent_id"], a["approved_at"]) for a in current.approvals]
            action: list[Decided] = []
            result_id = None
            if d.approved:
                action, result_id = self.service.action_events(current, now, new_ids[d.id], vectors.get(d.id, []))
            decided = PendingDecided(d.id, "approved" if d.approved else "rejected", d.decider, now, approvals,
                                     bool(action), result_id, "once", current.namespace, current.requested_by)
            events.append(Guarded((decided, current.namespace), action))  # a decision made first elsewhere runs nothing
            pendings[d.id] = replace(current, status="approved" if d.approved else "rejected")
            out.pending_decisions_applied += 1
        for m in push.meta:
            known = standard_of(m.namespace)
            if known is not None and ((known.standard_id, known.parent) == (m.standard_id, m.parent)
                                      or _later(known.updated_at, m.updated_at)):
                out.noop += 1  # the same standard, or ours is newer
                continue
            events.append((StandardSet(m.namespace, m.standard_id, m.updated_at, m.parent), m.namespace))
            standards[m.namespace] = m
            out.namespace_meta_applied += 1
        for namespace in push.clears:
            if standard_of(namespace) is None:
                out.noop += 1
                continue
            events.append((StandardCleared(namespace), namespace))
            standards[namespace] = None
            out.namespace_meta_cleared += 1
        return events
