"""The governance read-model contract: one recorded log of governance events (standards, pending actions and
their votes, decisions and expiry, remembered decisions, agents, quota charges) gives these answers on every
backend. Subclasses provide a ``model`` fixture (a fresh, empty :class:`MemoryReadModel`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.log import LogRecord
from projectors import MemoryReadModel, Verdict
from schemas import SCHEMA_VERSION, Envelope, Memory, encode_payload, new_event_id, sign
from schemas.events import (
    AgentRegistered,
    Approval,
    Link,
    LinkCreated,
    MemoryStored,
    PendingAction,
    PendingDecided,
    PendingExpired,
    PendingRequested,
    PendingVoted,
    RuleRemembered,
    StandardCleared,
    StandardSet,
)
from tests.factories import node_key

DAY1 = "2026-05-01T10:00:00+00:00"
DAY2 = "2026-05-02T10:00:00+00:00"


def _memory(mid: str, agent: str, ts: str) -> Memory:
    return Memory(id=mid, tier="mid", namespace="org", title=f"title {mid}", content="0123456789", tags=[],
                  priority=5, confidence=1.0, source="api", access_count=0, created_at=ts, updated_at=ts,
                  metadata={"agent_id": agent})


def _pending(pid: str, action: str, ts: str, timeout: int = 3600) -> PendingAction:
    return PendingAction(id=pid, action_type=action, namespace="org", payload={"id": "m1"},  # type: ignore[arg-type]
                         requested_by="bob", requested_at=ts, timeout_secs=timeout, memory_id="m1")


_EVENTS: list[tuple[Any, str, str]] = [  # (event, actor, envelope ts)
    (StandardSet("org", "std-1", DAY1), "alice", DAY1),
    (StandardSet("org/team", "std-2", DAY1, parent="acme"), "alice", DAY1),
    (StandardSet("org", "std-3", DAY2), "alice", DAY2),  # replaces org's standard
    (StandardSet("gone", "std-4", DAY1), "alice", DAY1),
    (StandardCleared("gone"), "alice", DAY1),
    (PendingRequested(_pending("p1", "delete", DAY1)), "bob", DAY1),
    (PendingRequested(_pending("p2", "promote", DAY1)), "bob", DAY1),
    (PendingRequested(_pending("p3", "store", DAY2, timeout=60)), "bob", DAY2),
    (PendingRequested(_pending("p1", "delete", DAY2)), "bob", DAY2),  # same id again: refused
    (PendingVoted("p2", Approval("v1", DAY1), 2), "v1", DAY1),
    (PendingVoted("p2", Approval("v1", DAY1), 2), "v1", DAY1),  # double vote: refused
    (PendingDecided("p2", "approved", "v2", DAY2, [Approval("v1", DAY1), Approval("v2", DAY2)], True, "m1",
                    "once", "org", "bob"), "v2", DAY2),
    (PendingDecided("p1", "rejected", "carol", DAY2, [], False, None, "forever", "org", "bob"), "carol", DAY2),
    (PendingDecided("p1", "approved", "carol", DAY2), "carol", DAY2),  # already decided: refused
    (PendingExpired(["p3", "p1"], "2026-05-03T00:00:00+00:00"), "system:governance", DAY2),
    (RuleRemembered("delete", "org", "bob", "deny", "forever", DAY2), "carol", DAY2),
    (RuleRemembered("store", "org", "bob", "approve", "session", DAY2, session="s1"), "carol", DAY2),
    (AgentRegistered("v1", "human", ["vote"], DAY1), "v1", DAY1),
    (AgentRegistered("v1", "ai:claude-opus-4.7", [], DAY2), "v1", DAY2),  # keeps the first registration time
    (AgentRegistered("v2", "human", [], DAY1), "v2", DAY1),
    (MemoryStored(_memory("m1", "bob", DAY1)), "bob", DAY1),
    (MemoryStored(_memory("m2", "bob", DAY1)), "bob", DAY1),
    (MemoryStored(_memory("m3", "bob", DAY2)), "bob", DAY2),  # a new day: the daily count starts again
    (LinkCreated(Link("m1", "m2", "related_to", DAY2)), "bob", DAY2),
    (LinkCreated(Link("m1", "gone", "related_to", DAY2)), "bob", DAY2),  # refused: not charged
]


def governance_log(tmp: Path) -> list[LogRecord]:
    key = node_key(tmp, "recorder")
    records = []
    for offset, (event, actor, ts) in enumerate(_EVENTS, start=1):
        envelope = Envelope(event_id=new_event_id(), type=event.TYPE, schema_version=SCHEMA_VERSION,
                            namespace="org", actor=actor, origin=key.key_id, ts=ts, payload=encode_payload(event),
                            key_id=key.key_id)
        records.append(LogRecord("p", offset, sign(envelope, key)))
    return records


def caused_log(tmp: Path) -> list[LogRecord]:
    """Two approvals of one pending action, each followed by its action (a store naming it as cause), and a
    store naming a decision the log never holds."""
    key = node_key(tmp, "recorder")
    first, second = new_event_id(), new_event_id()
    events: list[tuple[Any, str, str | None]] = [  # (event, event id, cause)
        (PendingRequested(_pending("p9", "store", DAY1)), new_event_id(), None),
        (PendingDecided("p9", "approved", "carol", DAY1, [], True, "m9"), first, None),
        (MemoryStored(_memory("m9", "bob", DAY1)), new_event_id(), first),
        (PendingDecided("p9", "approved", "dave", DAY1, [], True, "m10"), second, None),  # refused: decided
        (MemoryStored(_memory("m10", "bob", DAY1)), new_event_id(), second),  # refused with its decision
        (MemoryStored(_memory("m11", "bob", DAY1)), new_event_id(), "never-appended"),  # refused: no decision
    ]
    records = []
    for offset, (event, event_id, cause) in enumerate(events, start=1):
        envelope = Envelope(event_id=event_id, type=event.TYPE, schema_version=SCHEMA_VERSION, namespace="org",
                            actor="carol", origin=key.key_id, ts=DAY1, payload=encode_payload(event),
                            key_id=key.key_id, cause=cause)
        records.append(LogRecord("p", offset, sign(envelope, key)))
    return records


class GovernanceContract:
    def test_an_event_follows_its_decision(self, model: MemoryReadModel, tmp_path: Path) -> None:
        verdicts = [Verdict(r) for r in caused_log(tmp_path)]
        for _ in range(2):  # re-delivery changes nothing
            for start in range(0, len(verdicts), 2):
                model.apply_batch(verdicts[start:start + 2])
        rejected = {r["offset"]: str(r["reason"]) for r in model.rejected_events()}
        assert set(rejected) == {4, 5, 6}
        assert "already approved" in rejected[4]
        assert rejected[5].startswith("follows decision") and "which was refused: pending action p9" in rejected[5]
        assert "never-appended, which was not applied before it" in rejected[6]
        assert [m.id for m in model.queries.all_memories()] == ["m9"]
        p9 = model.governance.pending("p9")
        assert p9 is not None and p9.decided_by == "carol"


    @pytest.fixture
    def loaded(self, model: MemoryReadModel, tmp_path: Path) -> MemoryReadModel:
        verdicts = [Verdict(r) for r in governance_log(tmp_path)]
        for _ in range(2):  # re-delivery changes nothing
            for start in range(0, len(verdicts), 5):
                model.apply_batch(verdicts[start:start + 5])
        return model

    def test_refusals(self, loaded: MemoryReadModel) -> None:
        rejected = {r["offset"]: str(r["reason"]) for r in loaded.rejected_events()}
        assert set(rejected) == {9, 11, 14, 25}
        assert "already exists" in rejected[9] and "already voted" in rejected[11]
        assert "already rejected" in rejected[14]

    def test_standards(self, loaded: MemoryReadModel) -> None:
        g = loaded.governance
        org = g.standard("org")
        assert org is not None and org.standard_id == "std-3" and org.parent is None and org.updated_at == DAY2
        team = g.standard("org/team")
        assert team is not None and team.parent == "acme"
        assert g.standard("gone") is None
        assert [m.namespace for m in g.standards()] == ["org", "org/team"]
        assert g.is_standard("std-3") and g.is_standard("std-2")
        assert not g.is_standard("std-1") and not g.is_standard("std-4")  # replaced, cleared

    def test_pending_lifecycle(self, loaded: MemoryReadModel) -> None:
        g = loaded.governance
        p1, p2, p3 = g.pending("p1"), g.pending("p2"), g.pending("p3")
        assert p1 is not None and p1.status == "rejected" and p1.decided_by == "carol"
        assert p2 is not None and p2.status == "approved" and [a["agent_id"] for a in p2.approvals] == ["v1", "v2"]
        assert p3 is not None and p3.status == "expired" and p3.decided_at == "2026-05-03T00:00:00+00:00"
        assert p3.expires_at == "2026-05-02T10:01:00.000000+00:00" and p3.payload == {"id": "m1"}
        assert [p.id for p in g.list_pending(status=None, limit=10)] == ["p3", "p2", "p1"]
        assert [p.id for p in g.list_pending(status="approved", limit=10)] == ["p2"]
        assert g.list_pending(status=None, limit=1)[0].id == "p3"
        assert g.count_pending("expired") == 1 and g.count_pending("pending") == 0
        assert g.due_pending("2030-01-01T00:00:00+00:00") == [] and g.pending("nope") is None
        assert p2.to_api()["memory_id"] == "m1" and "decided_by" in p2.to_api()

    def test_remembered(self, loaded: MemoryReadModel) -> None:
        g = loaded.governance
        assert g.remembered("delete", "org", "bob", ()) == "deny"
        assert g.remembered("store", "org", "bob", ("s1",)) == "approve"
        assert g.remembered("store", "org", "bob", ("other",)) is None
        assert g.remembered("delete", "org", "carol", ("s1",)) is None

    def test_agents(self, loaded: MemoryReadModel) -> None:
        g = loaded.governance
        v1 = g.agent("v1")
        assert v1 is not None and v1.agent_type == "ai:claude-opus-4.7" and v1.capabilities == []
        assert v1.registered_at == DAY1 and v1.last_seen_at == DAY2
        assert g.agent("V1") is None  # ids are exact; consensus lower-cases votes, not registrations
        assert [a.agent_id for a in g.agents()] == ["v1", "v2"]

    def test_quota_counters(self, loaded: MemoryReadModel) -> None:
        g = loaded.governance
        bob = g.quota("bob")
        assert bob is not None and bob.day == "2026-05-02"
        assert (bob.memories_today, bob.links_today) == (1, 1)
        size = len("title m1") + len("0123456789") + len('{"agent_id":"bob"}')
        assert bob.storage_bytes == 3 * size
        assert bob.on("2026-05-03").memories_today == 0 and bob.on("2026-05-03").storage_bytes == 3 * size
        assert g.quota("nobody") is None and [q.agent_id for q in g.quotas()] == ["bob"]
