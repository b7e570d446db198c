"""Pending actions that converge across regions: their status, approvals and decision are a function of the
set of their events, folded in merge order (:mod:`projectors.merge_order`), not of the order a node read them.

Every vote, decision and expiry of a pending action is kept by merge key (``pending_history``), even one that
arrives before the request it names (another region's partition may be read first). The row shows the fold:

* the *first terminal event* in merge order (a decision, or the sweeper's expiry) decides: its status, decider
  and time; a decision's own approvals, or else the votes before it;
* a vote counts once per agent (its earliest in merge order), and only before the terminal event.

An event the fold does not use is refused as before (a second decision: "already approved"; a vote after the
decision; a second vote). A decision that arrives late but precedes, in merge order, the decision a node had
applied takes its place: the displaced decision is recorded as refused (so what it would still run is refused
with it) and :func:`~projectors.merge_order.void` asks the convergence layer to undo what it ran. So every node
ends with one decision and one execution, whatever the interleaving. With one partition merge order is log
order: the first decision in the log decides, as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.log import LogRecord
from projectors.merge_order import applying, void
from projectors.rules import Inapplicable, json_column
from projectors.sql import Sql, first
from schemas.events import PendingDecided, PendingExpired, PendingVoted

__all__ = ["PendingEvent", "PendingState", "fold", "settle", "show"]


@dataclass(frozen=True)
class PendingEvent:
    """One kept vote, decision or expiry of a pending action."""

    key: str
    event_id: str
    partition: str
    offset: int
    type: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class PendingState:
    status: str = "pending"
    decided_by: str | None = None
    decided_at: str | None = None
    approvals: list[dict[str, str]] = field(default_factory=list)
    #: The event that decided it (None while pending), and the events the fold used.
    terminal: PendingEvent | None = None
    used: frozenset[str] = frozenset()


def fold(events: Sequence[PendingEvent]) -> PendingState:
    """The pending action's state from its events in merge order (``events`` sorted by key)."""
    votes: dict[str, dict[str, str]] = {}
    used: set[str] = set()
    for event in events:
        if event.type == PendingVoted.TYPE and event.payload["vote"]["agent_id"] not in votes:
            vote = event.payload["vote"]
            votes[vote["agent_id"]] = {"agent_id": vote["agent_id"], "approved_at": vote["approved_at"]}
            used.add(event.key)
        elif event.type in (PendingDecided.TYPE, PendingExpired.TYPE):
            return _decided(event, list(votes.values()), frozenset(used | {event.key}))
    return PendingState(approvals=list(votes.values()), used=frozenset(used))


def _decided(event: PendingEvent, votes: list[dict[str, str]], used: frozenset[str]) -> PendingState:
    p = event.payload
    if event.type == PendingExpired.TYPE:
        return PendingState("expired", None, p["at"], votes, event, used)
    approvals = [{"agent_id": a["agent_id"], "approved_at": a["approved_at"]} for a in p.get("approvals", [])]
    return PendingState(p["status"], p["decided_by"], p["decided_at"], approvals, event, used)


def _history(sql: Sql, pending_id: str) -> list[PendingEvent]:
    rows = sql.rows("SELECT key, event_id, log_partition, log_offset, type, payload FROM pending_history "
                    "WHERE pending_id = :id ORDER BY key", {"id": pending_id})
    if not rows:
        return _seeded(sql, pending_id)
    return [PendingEvent(str(r["key"]), str(r["event_id"]), str(r["log_partition"]), int(r["log_offset"]),
                         str(r["type"]), json.loads(r["payload"])) for r in rows]


def _seeded(sql: Sql, pending_id: str) -> list[PendingEvent]:
    """A row voted on or decided before its history was kept (a read model of an earlier version): its state
    becomes the first of its history (keys that sort before every merge key), so the fold starts from it."""
    row = first(sql, "SELECT status, decided_by, decided_at, approvals FROM pending_actions WHERE id = :id",
                {"id": pending_id})
    if row is None:
        return []
    approvals = json.loads(row["approvals"])
    seeds = [(PendingVoted.TYPE, {"id": pending_id, "vote": a, "quorum": 0}) for a in approvals]
    if row["status"] == "expired":
        seeds.append((PendingExpired.TYPE, {"ids": [pending_id], "at": row["decided_at"]}))
    elif row["status"] != "pending":
        seeds.append((PendingDecided.TYPE, {"id": pending_id, "status": row["status"], "decided_by": row["decided_by"],
                                            "decided_at": row["decided_at"], "approvals": approvals}))
    events = [PendingEvent(f"0000-seed-{i:04d}", "", "", 0, kind, payload) for i, (kind, payload) in enumerate(seeds)]
    for event in events:
        _keep(sql, pending_id, event)
    return events


def _keep(sql: Sql, pending_id: str, event: PendingEvent) -> None:
    sql.run("INSERT INTO pending_history (pending_id, key, event_id, log_partition, log_offset, type, payload) "
            "VALUES (:id, :k, :e, :p, :o, :t, :b)",
            {"id": pending_id, "k": event.key, "e": event.event_id, "p": event.partition, "o": event.offset,
             "t": event.type, "b": json_column(dict(event.payload))})


def _refusal(state: PendingState, event: PendingEvent, pending_id: str) -> str:
    if event.type == PendingVoted.TYPE and (state.terminal is None or state.terminal.key > event.key):
        return f"{event.payload['vote']['agent_id']} already voted on {pending_id}"
    assert state.terminal is not None  # a decision or vote goes unused only behind an earlier terminal event
    return f"pending action {pending_id} is already {state.status}"


def settle(sql: Sql, pending_id: str, record: LogRecord) -> None:
    """Keep the event being applied in the action's history and show the fold on its row (once requested).

    Raises:
        Inapplicable: the fold does not use the event (nothing is kept); an expiry is never refused.
    """
    envelope, at = record.event.envelope, applying()
    event = PendingEvent(at.key, envelope.event_id, record.partition, record.offset, envelope.type,
                         envelope.payload)
    history = _history(sql, pending_id)
    before, after = fold(history), fold(sorted([*history, event], key=lambda e: e.key))
    if event.key not in after.used:
        if event.type == PendingExpired.TYPE:
            return
        raise Inapplicable(_refusal(after, event, pending_id))
    _keep(sql, pending_id, event)
    displaced = before.terminal
    if displaced is not None and displaced.type == PendingDecided.TYPE and displaced.key not in after.used:
        _displace(sql, displaced, pending_id, after.status)
    _show(sql, pending_id, after)


def show(sql: Sql, pending_id: str) -> None:
    """Show on a just requested action what its votes and decisions, read before it, decide."""
    _show(sql, pending_id, fold(_history(sql, pending_id)))


def _show(sql: Sql, pending_id: str, state: PendingState) -> None:
    sql.run("UPDATE pending_actions SET status = :s, decided_by = :by, decided_at = :at, approvals = :a "
            "WHERE id = :id", {"s": state.status, "by": state.decided_by, "at": state.decided_at,
                               "a": json_column(state.approvals), "id": pending_id})


def _displace(sql: Sql, decision: PendingEvent, pending_id: str, status: str) -> None:
    """A decision this node had applied lost to one earlier in merge order: refused from now on (what names it
    as cause is refused), and what it ran undone."""
    reason = f"pending action {pending_id} is already {status} (decided earlier in merge order)"
    sql.run('INSERT INTO rejected_events (partition, "offset", event_id, type, reason) VALUES (:p, :o, :e, :t, :r) '
            'ON CONFLICT (partition, "offset") DO UPDATE SET reason = excluded.reason',
            {"p": decision.partition, "o": decision.offset, "e": decision.event_id, "t": decision.type, "r": reason})
    sql.run("DELETE FROM pending_history WHERE pending_id = :id AND key = :k", {"id": pending_id, "k": decision.key})
    void(decision.event_id)
