"""The stream leader's nats-server dies (kill -9) or freezes (SIGSTOP) while every node writes: three real
``ai-memory serve`` processes on a real 3-server NATS cluster (stream replicas = 3), loopback, bounded in time.

Writes resume on every node within 15 s (a node connected to the lost server leaves it: client pings, then
another member). On a quiet machine the gap is 5-6 s, nearly all of it NATS electing a new stream leader; the
bound leaves room for a loaded CI machine, where one run measured 10.3 s. No acknowledged write is lost, and
every node's read model equals a rebuild from the log, compared by hash.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from infra.cluster import NatsCluster
from infra.cluster.local import prepare_nodes
from infra.cluster.nats_server import NatsServer
from infra.log.jetstream import JetStreamLog
from tests.integration.test_cluster_sigstop import _caught_up, _node_hash, _rebuilt_hash
from tests.servers import ServerProcess

RESUME_WITHIN_S = 15.0
FAULT_FOR_S = 18.0  # longer than the bound, so a node that never resumes cannot pass
CHILD_ENV = {"AI_MEMORY_EMBEDDER": "off", "AI_MEMORY_AGENT_ID": ""}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """This module's own cluster: its servers are killed and frozen, no other test may share it."""
    from tests.conftest import _require_nats_server

    _require_nats_server()
    with NatsCluster(store_dir=tmp_path_factory.mktemp("faults")) as c:
        yield c


@dataclass
class Run:
    stream: str
    nodes: list[ServerProcess]
    acked: dict[str, list[tuple[float, str, dict[str, int]]]] = field(default_factory=dict)  # url -> (t, id, clock)
    refused: list[str] = field(default_factory=list)


@pytest.fixture
def run(tmp_path: Path, cluster: NatsCluster) -> Iterator[Run]:
    stream = f"fault-{uuid.uuid4().hex[:8]}"
    log_url = f"{cluster.url}/{stream}"
    nodes = [ServerProcess(d, env=CHILD_ENV, extra=["--log", log_url, "--replicas", "3", "--cluster-size", "3",
                                                    "--quorum-writes", "1"])
             for d in prepare_nodes(tmp_path / "nodes", 3)]
    try:
        for node in nodes:
            node.start(timeout=30)
        yield Run(stream, nodes)
    finally:
        for server in cluster.nodes:  # never leave the cluster frozen or short of a member
            if server.process is not None and server.running:
                os.kill(server.process.pid, signal.SIGCONT)
            if not server.running:
                server.start()
        for node in nodes:
            node.stop()


async def _leader(cluster: NatsCluster, stream: str) -> NatsServer:
    log = await JetStreamLog.connect(f"{cluster.url}/{stream}", replicas=3)
    try:
        name = (await log.cluster_info())["leader"]
    finally:
        await log.close()
    return next(s for s in cluster.nodes if s.store_dir.name == name)


async def _writer(client: httpx.AsyncClient, run: Run, url: str, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        try:
            # Collective: the check below lists every writer's memories without naming an agent.
            r = await client.post(f"{url}/api/v1/memories", json={"title": f"{url[-5:]}n{n}", "content": "x",
                                                                   "scope": "collective"},
                                  headers={"X-Agent-Id": f"writer-{url[-5:]}-{n // 500}"}, timeout=30)  # under quota
        except httpx.TransportError as exc:
            run.refused.append(f"{url}: {exc!r}")
            continue
        if r.status_code == 201:
            run.acked.setdefault(url, []).append((time.monotonic(), r.json()["id"], r.json()["log_clock"]))
        else:
            assert r.status_code == 503 and "retry-after" in r.headers, r.text  # transient, never a bare 409
            run.refused.append(f"{url}: {r.status_code} {r.text[:120]}")
            await asyncio.sleep(0.05)


def _longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch in [start, end] without an acknowledged write."""
    marks = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(marks))


async def _fault_during_writes(run: Run, cluster: NatsCluster, tmp_path: Path, fault: str) -> None:
    victim = await _leader(cluster, run.stream)
    stop = asyncio.Event()
    async with httpx.AsyncClient() as client:
        writers = [asyncio.create_task(_writer(client, run, node.url, stop)) for node in run.nodes]
        await asyncio.sleep(1.5)  # every node writing
        assert all(run.acked.get(node.url) for node in run.nodes), run.refused[-5:]
        began = time.monotonic()
        if fault == "kill":
            victim.kill()
        else:
            assert victim.process is not None
            os.kill(victim.process.pid, signal.SIGSTOP)
        await asyncio.sleep(FAULT_FOR_S)
        ended = time.monotonic()
        if fault == "kill":
            await asyncio.to_thread(victim.start)
        else:
            assert victim.process is not None
            os.kill(victim.process.pid, signal.SIGCONT)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*writers), timeout=60)
    for node in run.nodes:  # writes resumed on every node, within the bound, while the server was still down
        gap = _longest_gap([t for t, _, _ in run.acked[node.url]], began, ended)
        assert gap <= RESUME_WITHIN_S, (node.url, gap, [r for r in run.refused if r.startswith(node.url)][-3:])
    last = {p: max(c.get(p, 0) for acks in run.acked.values() for _, _, c in acks)
            for p in {p for acks in run.acked.values() for _, _, c in acks for p in c}}
    acked_ids = {memory_id for acks in run.acked.values() for _, memory_id, _ in acks}
    for node in run.nodes:
        _caught_up(node.url, last, timeout=60)
        listed = httpx.get(f"{node.url}/api/v1/memories", params={"limit": 200}, timeout=30).json()["memories"]
        assert len(listed) == min(200, len(acked_ids))
    for node in run.nodes:
        node.stop()  # stopped, so each read model is read as its node left it
    rebuilt = await _rebuilt_hash(f"{cluster.url}/{run.stream}", run.stream, run.nodes[0].data_dir / "keys",
                                  tmp_path / "rebuild")
    assert [_node_hash(node.data_dir) for node in run.nodes] == [rebuilt] * 3
    from projectors import SQLiteReadModel

    model = SQLiteReadModel(run.nodes[0].data_dir / "readmodel.db")
    try:
        stored = {m.id for m in model.queries.all_memories()}
    finally:
        model.close()
    assert acked_ids <= stored  # no acknowledged write lost


@pytest.mark.slow
async def test_kill_9_of_the_stream_leader_during_writes_from_every_node(run: Run, cluster: NatsCluster,
                                                                           tmp_path: Path) -> None:
    await _fault_during_writes(run, cluster, tmp_path, "kill")


@pytest.mark.slow
async def test_sigstop_of_the_stream_leader_during_writes_from_every_node(run: Run, cluster: NatsCluster,
                                                                            tmp_path: Path) -> None:
    await _fault_during_writes(run, cluster, tmp_path, "stop")
