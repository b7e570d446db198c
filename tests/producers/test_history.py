"""A memory's history from the log (producers/memory/history.py): its events, and versions folded by the projector's
rules, which must end where the read model is."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from producers.errors import ActionPendingError
from producers.input.commands import parse_create, parse_update
from producers.memory import history
from producers.memory.history import memory_history
from producers.runtime.node import Node
from schemas import Memory, now_ts

BOTH_READ_MODELS = True


async def store(node: Node, agent: str, mode: str = "error", **body: Any) -> Memory:
    result = await node.service.store(parse_create(body, now=now_ts()), agent_id=agent, on_conflict=mode)
    return result.memory


def state(m: Memory) -> dict[str, Any]:
    """What the writes decide (access counts and touch times come from recalls, not writes)."""
    return {k: v for k, v in asdict(m).items() if k not in ("access_count", "last_accessed_at")}


async def test_versions_fold_every_write_to_the_read_models_state(node: Node) -> None:
    m = await store(node, "alice", title="T", content="one", tier="short", tags=["a"], priority=4, scope="team")
    await node.service.update(m.id, parse_update({"content": "two", "tags": ["b"], "priority": 6}),
                              agent_id="alice")
    await store(node, "bob", mode="merge", title="T", content="three", priority=2, tier="mid", confidence=0.5)
    await node.service.promote(m.id, agent_id="bob")
    other = await store(node, "bob", title="Other", content="x")
    await node.graph.link(m.id, other.id, "related_to", agent_id="bob")
    now = await node.service.get(m.id)

    h = await memory_history(node, now, as_agent=None)
    assert [v.event.type for v in h.versions] == ["memory.stored", "memory.updated", "memory.stored",
                                                  "memory.promoted"]
    assert [v.event.actor for v in h.versions] == ["alice", "alice", "bob", "bob"]
    last = h.versions[-1].memory
    assert last is not None and state(last) == state(now)
    assert set(h.versions[1].changed) == {"content", "priority", "tags"}
    first = h.versions[0].memory
    assert first is not None and first.content == "one" and first.tier == "short"
    types = [e.type for e in h.events]
    assert "link.created" in types and types.count("memory.embedded") >= 1
    link = next(e for e in h.events if e.type == "link.created")
    assert link.other_id == other.id
    assert all(e.signature == "verified" and e.key_id == node.key.key_id for e in h.events)
    assert h.scanned == sum((await node.log.end_offsets()).values()) and not h.truncated


async def test_a_reader_sees_neither_links_to_hidden_memories_nor_versions_from_before_its_view(node: Node) -> None:
    moved = await store(node, "bob", title="Handover", content="bob only", namespace="t/bob", scope="private")
    secret = await store(node, "bob", title="Secret", content="s", namespace="t/bob", scope="private")
    await node.graph.link(moved.id, secret.id, "related_to", agent_id="bob")
    await node.service.update(moved.id, parse_update({"namespace": "t/alice", "content": "alice's now"}),
                              agent_id="bob")
    now = await node.service.get(moved.id, as_agent="t/alice")
    h = await memory_history(node, now, as_agent="t/alice")
    assert [v.memory is not None for v in h.versions] == [False, True]
    assert all(e.other_id != secret.id for e in h.events)
    everyone = await memory_history(node, now, as_agent=None)
    assert any(e.other_id == secret.id for e in everyone.events)


async def test_a_long_log_is_read_from_its_last_events_only(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    m = await store(node, "alice", title="Old", content="first")
    for i in range(4):
        await store(node, "alice", title=f"filler {i}", content="x")
    await node.service.update(m.id, parse_update({"content": "second"}), agent_id="alice")
    monkeypatch.setattr(history, "HISTORY_SCAN", 3)  # the last 3 events: the update and its embedding
    h = await memory_history(node, await node.service.get(m.id), as_agent=None)
    assert h.truncated and h.scanned == 3
    assert [e.type for e in h.events][:1] == ["memory.updated"]
    assert h.versions == []  # an update with no stored version in reach folds onto nothing


async def test_the_governance_events_that_made_a_memory_are_in_its_history(node: Node) -> None:
    await node.governance.set_standard("gated", standard_id=None, parent=None, governance={"write": "approve"},
                                       agent_id="alice")
    with pytest.raises(ActionPendingError) as pending:
        await store(node, "bob", title="Gated", content="waits for a human", namespace="gated")
    decision = await node.governance.approve(pending.value.pending_id, agent_id="carol")
    made = await node.service.get(decision.body["memory_id"])
    h = await memory_history(node, made, as_agent=None)
    types = [e.type for e in h.events]
    assert "governance.pending_decided" in types and "memory.stored" in types
    decided = next(e for e in h.events if e.type == "governance.pending_decided")
    assert decided.actor == "carol"


async def test_a_pending_action_on_a_memory_and_its_votes_are_in_its_history(node: Node) -> None:
    for agent in ("alice", "bob", "carol"):
        await node.governance.register_agent(agent, "human", None)
    await node.governance.set_standard("team", standard_id=None, parent=None,
                                       governance={"write": "any", "promote": "approve", "approver": {"consensus": 2}},
                                       agent_id="alice")
    m = await store(node, "alice", title="Promote me", content="x", namespace="team")
    with pytest.raises(ActionPendingError) as pending:
        await node.service.promote(m.id, agent_id="bob")
    await node.governance.approve(pending.value.pending_id, agent_id="carol")
    h = await memory_history(node, await node.service.get(m.id), as_agent=None)
    assert [e.type for e in h.events if e.type.startswith("governance.")] == [
        "governance.pending_requested", "governance.pending_voted"]
