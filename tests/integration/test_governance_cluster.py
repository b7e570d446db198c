"""Governance across two nodes on one JetStream stream: a policy set on one node gates writes on the other, and
two approvers racing on different nodes for the same pending action give exactly one decision (the first in log
order; the second is refused with the action it carried), whose effect both nodes project alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.cluster import NatsServer
from producers.errors import ActionPendingError, ForbiddenError
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from schemas import now_ts
from schemas.events import PendingDecided
from tests.node_pair import trusting_nodes


@pytest.fixture
async def pair(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[tuple[Node, Node]]:
    stream = f"gov-{uuid.uuid4().hex[:8]}"
    config = NodeConfig(log_url=f"{nats_server.url}/{stream}", stream=stream, embedder="off")
    async with trusting_nodes(tmp_path, config) as (a, b):
        yield a, b


async def test_one_decision_when_approvers_race_on_two_nodes(pair: tuple[Node, Node]) -> None:
    a, b = pair
    out = await a.governance.set_standard("shared", standard_id=None, parent=None,
                                          governance={"write": "approve"}, agent_id="alice")
    await b.service.wait_for(out["log_clock"], timeout=10)
    with pytest.raises(ActionPendingError) as held:
        await b.service.store(parse_create({"title": "t", "content": "c", "namespace": "shared"}, now=now_ts()),
                              agent_id="bob")
    pending_id = held.value.pending_id
    await a.service.wait_for(held.value.extra["log_clock"], timeout=10)

    async def decide(node: Node, agent: str) -> str:
        try:
            await node.governance.approve(pending_id, agent_id=agent)
        except ForbiddenError as exc:
            return str(exc)
        return "approved"

    results = await asyncio.gather(decide(a, "carol"), decide(b, "dave"))
    assert results.count("approved") == 1, results
    assert "already decided: status=approved" in next(r for r in results if r != "approved")
    end = await a.log.end_offsets()
    for node in (a, b):
        await node.service.wait_for(end, timeout=10)
    # The log may hold both decisions (appended unconditionally); each node applied only the first.
    decisions = [r for r in await a.log.read(limit=10_000) if r.event.envelope.type == PendingDecided.TYPE]
    for node in (a, b):
        assert [node.model.refusal(r.partition, r.offset) is None for r in decisions].count(True) == 1
    for node in (a, b):
        state = node.governance.queries.pending(pending_id)
        assert state is not None and state.status == "approved"
        assert node.model.queries.find_by_title("t", "shared") is not None
