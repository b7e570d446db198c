"""Governance events: namespace standards, pending actions and their decisions, remembered decisions, agents.

Every policy change, request, vote and decision is one of these events. The producer decides (against the
projected state, when the command arrives) and the event records the outcome with every timestamp a projector
needs. The policy itself lives where the original keeps it, in the standard memory's ``metadata.governance``:
setting it appends a ``memory.updated`` of that memory beside ``governance.standard_set``, in one append.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "AgentRegistered",
    "Approval",
    "PendingAction",
    "PendingActionType",
    "PendingDecided",
    "PendingExpired",
    "PendingRequested",
    "PendingVoted",
    "RuleRemembered",
    "StandardCleared",
    "StandardSet",
]

OMIT_NONE = {"omit_none": True}

PendingActionType = Literal["store", "update", "delete", "promote"]


@dataclass(frozen=True, slots=True)
class StandardSet:
    """``namespace`` now has the standard memory ``standard_id`` (and the explicit ``parent`` for inheritance)."""

    TYPE: ClassVar[str] = "governance.standard_set"
    namespace: str
    standard_id: str
    updated_at: str
    parent: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class StandardCleared:
    """``namespace`` no longer has a standard (the standard memory itself stays)."""

    TYPE: ClassVar[str] = "governance.standard_cleared"
    namespace: str


@dataclass(frozen=True, slots=True)
class Approval:
    """One consensus vote; ``agent_id`` is lower-cased, so the same agent never votes twice."""

    agent_id: str
    approved_at: str


@dataclass(frozen=True, slots=True)
class PendingAction:
    """A gated action waiting for a decision (the original's ``pending_actions`` row, as first requested).

    ``payload`` is what the action would do: the would-be memory for a store, the changes for an update,
    ``{"id": …}`` for a delete or promote. ``timeout_secs`` is the time it may wait before the sweeper expires it.
    """

    id: str
    action_type: PendingActionType
    namespace: str
    payload: dict[str, Any]
    requested_by: str
    requested_at: str
    timeout_secs: int
    memory_id: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class PendingRequested:
    TYPE: ClassVar[str] = "governance.pending_requested"
    pending: PendingAction


@dataclass(frozen=True, slots=True)
class PendingVoted:
    """A consensus vote that did not yet reach the quorum."""

    TYPE: ClassVar[str] = "governance.pending_voted"
    id: str
    vote: Approval
    quorum: int


@dataclass(frozen=True, slots=True)
class PendingDecided:
    """The pending action was approved or rejected. An approval is appended together with the action's own
    events, which name it as their envelope's ``cause`` (``executed`` says whether there were any: a delete of a
    memory already gone executes nothing). Only the first decision of a pending action in log order is applied;
    a later one is refused, and with it the events that name it."""

    TYPE: ClassVar[str] = "governance.pending_decided"
    id: str
    status: Literal["approved", "rejected"]
    decided_by: str
    decided_at: str
    approvals: list[Approval] = field(default_factory=list)
    executed: bool = False
    result_id: str | None = field(default=None, metadata=OMIT_NONE)
    remember: Literal["once", "session", "forever"] = "once"
    #: The request's namespace and requester, so a feed of decisions needs nothing else.
    namespace: str = ""
    requested_by: str = ""


@dataclass(frozen=True, slots=True)
class PendingExpired:
    """The sweeper found these still pending after their timeout."""

    TYPE: ClassVar[str] = "governance.pending_expired"
    ids: list[str]
    at: str


@dataclass(frozen=True, slots=True)
class RuleRemembered:
    """A decision made with ``remember: session | forever``: the same (action, namespace, requester) is decided
    the same way from now on. A ``session`` rule holds only while the serving process ``session`` lives."""

    TYPE: ClassVar[str] = "governance.rule_remembered"
    action_type: PendingActionType
    namespace: str
    agent_id: str
    decision: Literal["approve", "deny"]
    remember: Literal["session", "forever"]
    recorded_at: str
    session: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class AgentRegistered:
    """An agent registered (or re-registered: the first ``registered_at`` is kept by the projector)."""

    TYPE: ClassVar[str] = "agent.registered"
    agent_id: str
    agent_type: str
    capabilities: list[str]
    registered_at: str
