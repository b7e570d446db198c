"""Writes racing on two nodes of one log, on every backend (embedded, NATS single and 3-node, Kafka on tansu).

The log is the sequencer: each node appends without a lock or a conditional append, and the projectors decide
racing titles, quotas and approvals in log order. So: two creates of one title with ``on_conflict=error`` give
exactly one 201 and one 409 with ``code`` and ``existing_id``; ``merge`` and ``version`` reach the same final
state on both nodes; a daily quota is exact across nodes; racing approvals decide and execute once; unique
titles never conflict. Bounded: a few dozen writes per test, every wait with a timeout.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from producers.governance import GovernanceConfig
from producers.http import create_app
from producers.node import Node, NodeConfig
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import load_or_create_node_key
from schemas.events import MemoryStored

#: "postgres": the embedded log, each node's read model in its own Postgres database (the projector's title and
#: quota decisions exist once per read-model backend).
BACKENDS = ("embedded", "postgres", "nats", "nats3", "kafka")
#: Every node's daily memory quota per agent (no other test here stores more than this as one agent).
QUOTA = 12


@dataclass
class Pair:
    """Two nodes on one log that trust each other's keys, each behind its own HTTP app."""

    nodes: list[Node]
    clients: list[httpx.AsyncClient]

    async def settled(self) -> None:
        """Both nodes have applied everything in the log."""
        for node in self.nodes:
            await node.writer.caught_up()


def _log_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> tuple[str, int]:
    if backend in ("embedded", "postgres"):
        return f"sqlite://{tmp_path / 'shared-log.db'}", 1
    if backend == "nats":
        return f"{request.getfixturevalue('nats_server').url}/{name}", 1
    if backend == "nats3":
        return f"{request.getfixturevalue('nats_cluster').url}/{name}", 3
    return f"{request.getfixturevalue('kafka_broker').url}/{name}", 1


@pytest.fixture(params=BACKENDS)
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    name = f"race-{uuid.uuid4().hex[:8]}"
    url, replicas = _log_url(request.param, request, tmp_path, name)
    names = ("a", "b")
    for n in names:
        load_or_create_node_key(tmp_path / n / "keys", f"node-{n}")
    for n in names:
        for other in names:
            if other != n:
                shutil.copy(tmp_path / other / "keys" / f"node-{other}.pub", tmp_path / n / "keys")
    governance = GovernanceConfig(mode="enforce", max_memories_per_day=QUOTA)
    async with AsyncExitStack() as stack:
        nodes: list[Node] = []
        clients: list[httpx.AsyncClient] = []
        for n in names:
            read_model = (request.getfixturevalue("postgres_server").create_database(f"race_{uuid.uuid4().hex[:10]}")
                          if request.param == "postgres" else "")
            node = await Node.open(NodeConfig(data_dir=tmp_path / n, log_url=url, stream=name, replicas=replicas,
                                              node_id=f"node-{n}", embedder="off", governance=governance,
                                              read_model_url=read_model))
            stack.push_async_callback(node.close)
            await node.start()
            nodes.append(node)
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://t")
            stack.push_async_callback(client.aclose)
            clients.append(client)
        yield Pair(nodes, clients)


async def _store(client: httpx.AsyncClient, title: str, *, agent: str = "writer", namespace: str = "race",
                 **extra: Any) -> httpx.Response:
    return await client.post("/api/v1/memories", json={"title": title, "content": f"{title} from {agent}",
                                                      "namespace": namespace, **extra},
                             headers={"X-Agent-Id": agent})


async def _replays_the_same(node: Node, path: Path) -> None:
    """A rebuild from the log reaches the node's outcomes (the racing decisions were made in log order)."""
    await rebuild_sqlite(node.log, node.keyring, path)
    rebuilt = SQLiteReadModel(path)
    try:
        assert rebuilt.queries.all_memories() == node.model.queries.all_memories()
    finally:
        rebuilt.close()


def _titles(node: Node, namespace: str) -> dict[str, str]:
    return {m.title: m.id for m in node.model.queries.all_memories() if m.namespace == namespace}


async def test_racing_creates_one_title_error(pair: Pair, tmp_path: Path) -> None:
    for round_ in range(4):
        title = f"contested {round_}"
        answers = await asyncio.gather(*(_store(c, title, agent=f"agent-{i}", on_conflict="error")
                                         for i, c in enumerate(pair.clients)))
        assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
        won = next(r for r in answers if r.status_code == 201).json()
        lost = next(r for r in answers if r.status_code == 409).json()
        assert lost["code"] == "CONFLICT" and lost["existing_id"] == won["id"] and lost["error"]
    await pair.settled()
    first, second = (_titles(node, "race") for node in pair.nodes)
    assert first == second and len(first) == 4
    await _replays_the_same(pair.nodes[1], tmp_path / "replay.db")


async def test_racing_merge_and_version_reach_one_state(pair: Pair, tmp_path: Path) -> None:
    merged = await asyncio.gather(*(_store(c, "shared", agent=f"agent-{i}", on_conflict="merge")
                                    for i, c in enumerate(pair.clients)))
    assert [r.status_code for r in merged] == [201, 201], [r.text for r in merged]
    assert merged[0].json()["id"] == merged[1].json()["id"]  # both answer the one memory the title names
    versioned = await asyncio.gather(*(_store(c, "numbered", agent=f"agent-{i}", on_conflict="version")
                                       for i, c in enumerate(pair.clients)))
    assert [r.status_code for r in versioned] == [201, 201], [r.text for r in versioned]
    assert {r.json()["title"] for r in versioned} == {"numbered", "numbered (2)"}
    await pair.settled()
    states = [sorted((m.title, m.id, m.content) for m in node.model.queries.all_memories()) for node in pair.nodes]
    assert states[0] == states[1]
    assert [t for t, _, _ in states[0]] == ["numbered", "numbered (2)", "shared"]
    await _replays_the_same(pair.nodes[0], tmp_path / "replay.db")


async def test_unique_titles_never_conflict(pair: Pair) -> None:
    async def writer(client: httpx.AsyncClient, who: str) -> list[int]:
        return [(await _store(client, f"{who} note {n}", agent=who, on_conflict="error")).status_code
                for n in range(12)]

    codes = await asyncio.gather(*(writer(c, f"w{i}-{j}") for i, c in enumerate(pair.clients) for j in range(3)))
    assert Counter(code for run in codes for code in run) == Counter({201: 72})
    await pair.settled()
    assert len(_titles(pair.nodes[0], "race")) == 72 == len(_titles(pair.nodes[1], "race"))


async def test_daily_quota_is_exact_across_nodes(pair: Pair, tmp_path: Path) -> None:
    stores = await asyncio.gather(*(_store(pair.clients[n % 2], f"q{n}", agent="hungry") for n in range(QUOTA + 4)))
    codes = Counter(r.status_code for r in stores)
    assert codes == Counter({201: QUOTA, 429: 4}), [r.text for r in stores]
    refused = [r.json() for r in stores if r.status_code == 429]
    assert all(body["code"] == "QUOTA_EXCEEDED" and body["max"] == QUOTA for body in refused)
    await pair.settled()
    for node in pair.nodes:
        assert len(_titles(node, "race")) == QUOTA
        status = await node.governance.quota_status("hungry")
        assert status["quota"]["current_memories_today"] == QUOTA
    await _replays_the_same(pair.nodes[0], tmp_path / "replay.db")


async def test_racing_approvals_decide_and_execute_once(pair: Pair) -> None:
    a, b = pair.clients
    r = await a.post("/api/v1/namespaces/gated/standard", json={"governance": {"write": "approve"}},
                     headers={"X-Agent-Id": "owner"})
    assert r.status_code == 201, r.text
    await pair.settled()
    for round_ in range(3):
        asked = await _store(b, f"gated {round_}", agent="requester", namespace="gated")
        assert asked.status_code == 202, asked.text
        pending_id = asked.json()["pending_id"]
        await pair.settled()
        answers = await asyncio.gather(*(c.post(f"/api/v1/pending/{pending_id}/approve",
                                                headers={"X-Agent-Id": f"approver-{i}"})
                                         for i, c in enumerate(pair.clients)))
        codes = sorted(r.status_code for r in answers)
        assert codes[0] == 200 and codes[1] in (403, 404), [r.text for r in answers]
    await pair.settled()
    for node in pair.nodes:
        approved = node.governance.queries.list_pending(status="approved", limit=100)
        assert len(approved) == 3 and all(p.decided_by is not None for p in approved)
        gated = Counter(m.title for m in node.model.queries.all_memories() if m.namespace == "gated")
        assert all(gated[f"gated {n}"] == 1 for n in range(3)), gated
    # Executed once: one memory.stored per approved store in the log itself (not a second one merged into it).
    stores = Counter(rec.event.envelope.payload["memory"]["title"] for rec in await pair.nodes[0].log.read(limit=10_000)
                     if rec.event.envelope.type == MemoryStored.TYPE and rec.event.envelope.namespace == "gated")
    assert all(stores[f"gated {n}"] == 1 for n in range(3)), stores


@pytest.mark.parametrize("pair", ["embedded"], indirect=True)
async def test_a_merge_into_a_memory_deleted_elsewhere_stores_anew(pair: Pair) -> None:
    a, b = pair.clients
    first = await _store(a, "doomed", on_conflict="error")
    assert first.status_code == 201
    await pair.settled()
    await pair.nodes[1].runner.stop()  # node b does not hear the delete before it decides
    assert (await a.delete(f"/api/v1/memories/{first.json()['id']}", headers={"X-Agent-Id": "writer"})).is_success
    merged = await _store(b, "doomed", on_conflict="merge")
    assert merged.status_code == 201, merged.text
    assert merged.json()["id"] != first.json()["id"]  # not the deleted memory (its tombstone refused the merge)
    pair.nodes[1].runner.start()
    await pair.settled()
    for node in pair.nodes:
        assert _titles(node, "race") == {"doomed": merged.json()["id"]}
