"""Ten agents on one node at once, for a bounded time: each stores, updates its own memories and recalls, and
asks for gated stores that two approvers race to decide. Afterwards: no acknowledged write is lost, nothing
is duplicated, and every gated action is either still pending or decided exactly once: the log may hold a
second decision (two approvals decided against the same state), but the projectors applied only the first in
log order, and refused the second together with the action it carried."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from producers.governance import GovernanceConfig
from producers.http import create_app
from producers.runtime.node import Node, NodeConfig
from schemas.events import MemoryStored, PendingDecided, PendingRequested

BOTH_READ_MODELS = True
AGENTS = 10
SECONDS = 2.5


@pytest.fixture
async def node(tmp_path: Path, read_model: str) -> AsyncIterator[Node]:
    n = await Node.open(NodeConfig(data_dir=tmp_path / "node", read_model_url=read_model, embedder="off",
                                   governance=GovernanceConfig(mode="enforce")))
    await n.start()
    yield n
    await n.close()


@dataclass
class Seen:
    stored: dict[str, str] = field(default_factory=dict)  # id -> title
    last_update: dict[str, str] = field(default_factory=dict)  # id -> content of the last acknowledged update
    pending: dict[str, str] = field(default_factory=dict)  # pending id -> title
    approved: Counter[str] = field(default_factory=Counter)  # pending id -> acknowledged approvals
    rejected: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


async def agent(client: httpx.AsyncClient, name: str, seen: Seen, deadline: float) -> None:
    headers = {"X-Agent-Id": name}
    rng = random.Random(name)
    mine: list[str] = []
    n = 0
    while asyncio.get_running_loop().time() < deadline:
        n += 1
        choice = rng.random()
        if choice < 0.35 or not mine:
            title = f"{name} note {n}"
            r = await client.post("/api/v1/memories", json={"title": title, "content": f"v0 of {title}",
                                                            "namespace": f"free/{name}"}, headers=headers)
            if r.status_code == 201:
                mine.append(r.json()["id"])
                seen.stored[r.json()["id"]] = title
            else:
                seen.errors.append(f"store {r.status_code} {r.text}")
        elif choice < 0.6:
            memory_id = rng.choice(mine)
            content = f"{name} update {n}"
            r = await client.put(f"/api/v1/memories/{memory_id}", json={"content": content}, headers=headers)
            if r.status_code == 200:
                seen.last_update[memory_id] = content
            else:
                seen.errors.append(f"update {r.status_code} {r.text}")
        elif choice < 0.8:
            r = await client.post("/api/v1/recall", json={"context": f"{name} note", "limit": 5}, headers=headers)
            if r.status_code != 200:
                seen.errors.append(f"recall {r.status_code} {r.text}")
        else:
            title = f"{name} gated {n}"
            r = await client.post("/api/v1/memories", json={"title": title, "content": "needs approval",
                                                            "namespace": "gated"}, headers=headers)
            if r.status_code == 202:
                seen.pending[r.json()["pending_id"]] = title
            else:
                seen.errors.append(f"gated store {r.status_code} {r.text}")


async def approver(client: httpx.AsyncClient, name: str, seen: Seen, deadline: float) -> None:
    """Decides whatever is pending; the other approver races it for the same requests."""
    rng = random.Random(name)
    while asyncio.get_running_loop().time() < deadline:
        listed = (await client.get("/api/v1/pending", params={"status": "pending"},
                                   headers={"X-Agent-Id": name})).json()["pending"]
        for item in listed:
            verb = "approve" if rng.random() < 0.7 else "reject"
            r = await client.post(f"/api/v1/pending/{item['id']}/{verb}", headers={"X-Agent-Id": name})
            if r.status_code == 200:
                (seen.approved if verb == "approve" else seen.rejected)[item["id"]] += 1
            elif r.status_code not in (403, 404):  # lost the race: already decided
                seen.errors.append(f"{verb} {r.status_code} {r.text}")
        await asyncio.sleep(0.01)


async def test_ten_agents_at_once(node: Node) -> None:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/api/v1/namespaces/gated/standard", json={"governance": {"write": "approve"}},
                              headers={"X-Agent-Id": "owner"})
        assert r.status_code == 201
        seen = Seen()
        deadline = asyncio.get_running_loop().time() + SECONDS
        await asyncio.gather(*(agent(client, f"agent-{i}", seen, deadline) for i in range(AGENTS)),
                             approver(client, "host:approver-a", seen, deadline),
                             approver(client, "host:approver-b", seen, deadline))
    assert seen.errors == []
    assert len(seen.stored) > AGENTS and seen.pending, "the run did too little to test anything"
    queries = node.model.queries
    # No lost write: every acknowledged store is there, with the content of its last acknowledged update.
    for memory_id, title in seen.stored.items():
        memory = queries.get(memory_id)
        assert memory is not None and memory.title == title
        assert memory.content == seen.last_update.get(memory_id, f"v0 of {title}")
    # No duplicate: one memory per acknowledged store (plus the standard and the approved gated stores).
    listed = [m for m in queries.export("2000-01-01T00:00:00+00:00")]
    assert len({m.id for m in listed}) == len(listed)
    assert Counter(m.title for m in listed).most_common(1)[0][1] == 1
    # Every gated action: pending, or decided exactly once (acknowledged once, one decision applied in log
    # order, one store of its memory applied).
    decisions: Counter[str] = Counter()
    executed: Counter[str] = Counter()
    requests: set[str] = set()
    for record in await node.log.read(limit=100_000):
        envelope = record.event.envelope
        applied = node.model.refusal(record.partition, record.offset) is None
        if envelope.type == PendingDecided.TYPE and applied:
            decisions[envelope.payload["id"]] += 1
        elif envelope.type == PendingRequested.TYPE:
            requests.add(envelope.payload["pending"]["id"])
        elif envelope.type == MemoryStored.TYPE and envelope.namespace == "gated" and applied:
            executed[envelope.payload["memory"]["title"]] += 1
    assert requests == set(seen.pending)
    assert all(n == 1 for n in decisions.values()), decisions
    for pending_id, title in seen.pending.items():
        state = node.governance.queries.pending(pending_id)
        assert state is not None
        acknowledged = seen.approved[pending_id] + seen.rejected[pending_id]
        stored = queries.find_by_title(title, "gated")
        if state.status == "pending":
            assert acknowledged == 0 and decisions[pending_id] == 0 and stored is None
        else:
            assert acknowledged == 1 and decisions[pending_id] == 1
            assert (stored is not None) == (state.status == "approved") == (executed[title] == 1)
