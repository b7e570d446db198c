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

from infra.log import merge_clocks
from producers.governance import GovernanceConfig
from producers.http import create_app
from producers.runtime.node import Node, NodeConfig
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import load_or_create_node_key
from schemas.events import MemoryStored, PendingDecided

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
        """Both nodes have applied everything either node knows the log holds (a node may learn of the other's
        last appends a moment late: tansu's watermark can lag its records, ``infra/log/kafka.py``)."""
        ends = [await node.writer.caught_up() for node in self.nodes]
        for node in self.nodes:
            await node.writer.wait(merge_clocks(*ends), timeout=10)


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
    governance = GovernanceConfig(mode="enforce", max_memories_per_day=QUOTA, max_links_per_day=QUOTA)
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
    """A rebuild from the log reaches the node's outcomes (the racing decisions were made in log order): the
    same memories, the same pending actions and decisions, the same events refused."""
    await rebuild_sqlite(node.log, node.keyring, path)
    rebuilt = SQLiteReadModel(path)
    try:
        assert rebuilt.queries.all_memories() == node.model.queries.all_memories()
        assert (rebuilt.governance.list_pending(status=None, limit=1000)
                == node.governance.queries.list_pending(status=None, limit=1000))
        assert _refused(rebuilt.rejected_events(limit=10_000)) == _refused(node.model.rejected_events(limit=10_000))
    finally:
        rebuilt.close()


def _refused(rows: list[dict[str, object]]) -> list[tuple[object, object]]:
    return sorted((r["event_id"], r["reason"]) for r in rows)


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


def _exactly_the_quota(answers: list[httpx.Response], limit: str) -> None:
    """QUOTA writes acknowledged and the rest refused with the original's 429 body, across both nodes."""
    assert Counter(r.status_code for r in answers) == Counter({201: QUOTA, 429: 4}), [r.text for r in answers]
    refused = [r.json() for r in answers if r.status_code == 429]
    assert all(body["code"] == "QUOTA_EXCEEDED" and body["max"] == QUOTA and body["limit"] == limit
               for body in refused), refused


async def test_daily_quota_is_exact_across_nodes(pair: Pair, tmp_path: Path) -> None:
    stores = await asyncio.gather(*(_store(pair.clients[n % 2], f"q{n}", agent="hungry") for n in range(QUOTA + 4)))
    _exactly_the_quota(stores, "memories_per_day")
    await pair.settled()
    for node in pair.nodes:
        assert len(_titles(node, "race")) == QUOTA
        status = await node.governance.quota_status("hungry")
        assert status["quota"]["current_memories_today"] == QUOTA
    await _replays_the_same(pair.nodes[0], tmp_path / "replay.db")


async def test_daily_link_quota_is_exact_across_nodes(pair: Pair, tmp_path: Path) -> None:
    # The linker's own: only a source's owner links from it over HTTP (the original v0.7.0's rule).
    ends = [(await _store(pair.clients[0], f"end {n}", agent="linker")).json()["id"] for n in range(2)]
    await pair.settled()
    links = await asyncio.gather(*(pair.clients[n % 2].post("/api/v1/links",
                                                            json={"source_id": ends[0], "target_id": ends[1],
                                                                  "relation": f"rel_{n}"},
                                                            headers={"X-Agent-Id": "linker"})
                                   for n in range(QUOTA + 4)))
    _exactly_the_quota(links, "links_per_day")
    await pair.settled()
    for node in pair.nodes:
        assert len(node.model.graph.out_links([ends[0]])) == QUOTA
        status = await node.governance.quota_status("linker")
        assert status["quota"]["current_links_today"] == QUOTA
    await _replays_the_same(pair.nodes[1], tmp_path / "replay.db")


async def _race_approvals(pair: Pair, namespace: str, voters: tuple[str, str], allowed: list[list[int]],
                          tmp_path: Path) -> None:
    """Three gated stores in ``namespace``, each approved by ``voters`` racing on the two nodes (sorted status
    codes one of ``allowed``). Then each was decided and executed once, on both nodes and in a replay: the log
    may hold the losing approval's decision and store too, but in log order only the first decision was
    applied, and the loser's store (naming it as cause) was refused."""
    for round_ in range(3):
        asked = await _store(pair.clients[1], f"{namespace} {round_}", agent="requester", namespace=namespace)
        assert asked.status_code == 202, asked.text
        pending_id = asked.json()["pending_id"]
        await pair.settled()
        answers = await asyncio.gather(*(c.post(f"/api/v1/pending/{pending_id}/approve",
                                                headers={"X-Agent-Id": voter})
                                         for voter, c in zip(voters, pair.clients, strict=True)))
        assert sorted(r.status_code for r in answers) in allowed, [r.text for r in answers]
    await pair.settled()
    for node in pair.nodes:
        approved = node.governance.queries.list_pending(status="approved", limit=100)
        assert len(approved) == 3 and all(p.decided_by is not None for p in approved)
        applied = await _applied(node, namespace)
        for n in range(3):
            assert applied[PendingDecided.TYPE, f"{namespace} {n}"] == 1, applied
            assert applied[MemoryStored.TYPE, f"{namespace} {n}"] == 1, applied
    await _replays_the_same(pair.nodes[1], tmp_path / "replay.db")


async def _applied(node: Node, namespace: str) -> Counter[tuple[str, str]]:
    """(event type, title of the gated memory) of every event in ``namespace`` the node applied, not refused."""
    titles = {p.id: p.payload.get("title", "") for p in node.governance.queries.list_pending(status=None, limit=1000)}
    out: Counter[tuple[str, str]] = Counter()
    for rec in await node.log.read(limit=10_000):
        envelope = rec.event.envelope
        if envelope.namespace != namespace or node.model.refusal(rec.partition, rec.offset) is not None:
            continue
        if envelope.type == MemoryStored.TYPE:
            out[envelope.type, envelope.payload["memory"]["title"]] += 1
        elif envelope.type == PendingDecided.TYPE:
            out[envelope.type, titles[envelope.payload["id"]]] += 1
    return out


async def test_racing_approvals_decide_and_execute_once(pair: Pair, tmp_path: Path) -> None:
    """Two approvals of one pending action on two nodes: one 200, the other what a later approval gets (403)."""
    r = await pair.clients[0].post("/api/v1/namespaces/gated/standard", json={"governance": {"write": "approve"}},
                                   headers={"X-Agent-Id": "owner"})
    assert r.status_code == 201, r.text
    await pair.settled()
    await _race_approvals(pair, "gated", ("approver-0", "approver-1"), [[200, 403]], tmp_path)


async def test_racing_consensus_votes_decide_and_execute_once(pair: Pair, tmp_path: Path) -> None:
    """Votes of a consensus of two racing on two nodes: whatever the interleaving, the votes that meet the
    quorum in log order decide it once, and every voter gets the original's answer (200 approved, 202 still
    collecting, or 403 already decided)."""
    voters = ("voter-0", "voter-1")
    for voter in voters:
        r = await pair.clients[0].post("/api/v1/agents", json={"agent_id": voter, "agent_type": "ai:claude-opus-4.7"},
                                       headers={"X-Agent-Id": voter})
        assert r.status_code in (200, 201), r.text
    r = await pair.clients[0].post("/api/v1/namespaces/council/standard",
                                   json={"governance": {"write": "approve", "approver": {"consensus": 2}}},
                                   headers={"X-Agent-Id": "owner"})
    assert r.status_code == 201, r.text
    await pair.settled()
    await _race_approvals(pair, "council", voters, [[200, 202], [200, 403]], tmp_path)
    # One voter on both nodes at once: one vote counted, both answered as a repeated vote is (202, collecting).
    asked = await _store(pair.clients[1], "council again", agent="requester", namespace="council")
    pending_id = asked.json()["pending_id"]
    await pair.settled()
    answers = await asyncio.gather(*(c.post(f"/api/v1/pending/{pending_id}/approve", headers={"X-Agent-Id": "voter-0"})
                                     for c in pair.clients))
    assert [r.status_code for r in answers] == [202, 202], [r.text for r in answers]
    assert all(r.json()["votes"] == 1 for r in answers)
    await pair.settled()
    for node in pair.nodes:
        pending = node.governance.queries.pending(pending_id)
        assert pending is not None and pending.status == "pending" and len(pending.approvals) == 1


async def test_racing_consolidations_of_one_title_run_once(pair: Pair, tmp_path: Path) -> None:
    """Two consolidations into one title racing on two nodes: one 201, one 409 with ``existing_id``; the
    loser's memory, links and archive events were refused with its store (they name it as cause)."""
    sources = [(await _store(pair.clients[0], f"part {n}")).json()["id"] for n in range(4)]
    await pair.settled()
    answers = await asyncio.gather(*(c.post("/api/v1/consolidate", json={"ids": sources[2 * i:2 * i + 2],
                                                                         "title": "digest", "summary": f"from {i}",
                                                                         "namespace": "race"},
                                            headers={"X-Agent-Id": f"agent-{i}"})
                                     for i, c in enumerate(pair.clients)))
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    won = next(r for r in answers if r.status_code == 201).json()
    lost = next(r for r in answers if r.status_code == 409).json()
    assert lost["code"] == "CONFLICT" and lost["existing_id"] == won["id"]
    await pair.settled()
    for node in pair.nodes:
        titles = _titles(node, "race")
        assert titles["digest"] == won["id"] and len(titles) == 3  # the digest and the loser's two sources
        assert len(node.model.archive.list_archived(namespace=None, limit=10, offset=0)) == 2
    await _replays_the_same(pair.nodes[0], tmp_path / "replay.db")


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
