"""T3: three ai-memory nodes on a real 3-node NATS cluster, stream replicas = 3.

Quorum writes from confirmations, read-your-writes across nodes, a node down and back, and SIGKILL of the
stream leader during a write load. Bounded in time: every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from infra.cluster import NatsCluster
from infra.log import LogError
from infra.log.jetstream import JetStreamLog
from producers.cli.main import main as cli
from producers.errors import QuorumNotMetError
from producers.http import create_app
from producers.input.commands import parse_create
from producers.runtime.node import Node, NodeConfig
from producers.write.quorum import QuorumConfig
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import Memory, load_or_create_node_key, now_ts

NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """This module's own cluster: the fault tests kill its servers, so no other test may share it."""
    from tests.conftest import _require_nats_server

    _require_nats_server()
    with NatsCluster(store_dir=tmp_path_factory.mktemp("t3")) as c:
        yield c


class Cluster:
    """Three node configs that trust each other's keys, on one fresh stream."""

    def __init__(self, root: Path, nats: NatsCluster, *, writes: int, timeout_ms: int = 2000,
                 names: tuple[str, ...] = NAMES) -> None:
        self.stream = f"t3-{uuid.uuid4().hex[:8]}"
        self.configs: dict[str, NodeConfig] = {}
        for name in names:
            load_or_create_node_key(root / name / "keys", f"node-{name}")
            (root / name / "node_id").write_text(f"node-{name}\n")  # so the CLI on this data dir is this node
        for name in names:
            for other in names:
                if other != name:
                    shutil.copy(root / other / "keys" / f"node-{other}.pub", root / name / "keys")
            self.configs[name] = NodeConfig(
                data_dir=root / name, log_url=f"{nats.url}/{self.stream}", stream=self.stream, replicas=3,
                node_id=f"node-{name}", embedder="off",
                quorum=QuorumConfig(writes=writes, nodes=len(names), timeout_ms=timeout_ms))
        self.nodes: dict[str, Node] = {}

    async def up(self, name: str) -> Node:
        node = await Node.open(self.configs[name])
        await node.start()
        self.nodes[name] = node
        return node

    async def down(self, name: str) -> None:
        await self.nodes.pop(name).close()

    async def close(self) -> None:
        for name in list(self.nodes):
            await self.down(name)


@pytest.fixture
async def t3(tmp_path: Path, cluster: NatsCluster) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, cluster, writes=2, timeout_ms=1500)
    for name in NAMES:
        await c.up(name)
    yield c
    await c.close()


def _create(title: str) -> object:
    return parse_create({"title": title, "content": f"content of {title}"}, now=now_ts())


async def _converged(nodes: list[Node], *, timeout: float = 20.0) -> list[Memory]:
    """Wait until every node has applied the log's end, then return the (equal) memories."""
    end = await nodes[0].log.end_offsets()
    for node in nodes:
        await node.service.wait_for(end, timeout=timeout)
    views = [node.model.queries.all_memories() for node in nodes]
    assert all(v == views[0] for v in views)
    return views[0]


async def _replicas_current(log: JetStreamLog, *, timeout: float = 30.0) -> None:
    """Wait until every replica of the stream is current again (a restarted server has caught up)."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(LogError):
                info = await log.cluster_info()
                if len(info["replicas"]) == 2 and all(r["current"] for r in info["replicas"]):
                    return
            await asyncio.sleep(0.2)


async def test_quorum_write_and_read_your_writes_across_nodes(t3: Cluster) -> None:
    a, b = t3.nodes["a"], t3.nodes["b"]
    stored = await a.service.store(_create("replicated"), agent_id="agent-1")  # type: ignore[arg-type]
    assert stored.write.quorum_acks is not None and stored.write.quorum_acks >= 2
    # b waits for the writer's clock, then must see the write.
    await b.service.wait_for(stored.write.clock(), timeout=5)
    assert b.model.queries.get(stored.memory.id) is not None
    assert [m.title for m in await _converged(list(t3.nodes.values()))] == ["replicated"]
    assert isinstance(a.log, JetStreamLog)
    info = await a.log.cluster_info()
    assert info["leader"] in ("n1", "n2", "n3") and len(info["replicas"]) == 2


async def test_cluster_status_shows_leader_lag_and_peers(t3: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    await t3.nodes["a"].service.store(_create("status"), agent_id="agent-1")  # type: ignore[arg-type]
    config = t3.configs["a"]
    argv = ["cluster", "status", "--json", "--data-dir", str(config.data_dir), "--log", config.log_url,
            "--stream", config.stream]
    assert await asyncio.to_thread(cli, argv) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["stream"]["leader"] in ("n1", "n2", "n3") and status["projector_lag"] == {config.stream: 0}
    assert set(status["peers"]) == {"node-b", "node-c"}  # node a's own confirmations are not a peer's


async def test_minority_down_w2_succeeds_w3_times_out_then_catches_up(t3: Cluster, tmp_path: Path) -> None:
    await t3.down("c")
    a = t3.nodes["a"]
    ok = await a.service.store(_create("two of three"), agent_id="agent-1")  # type: ignore[arg-type]
    assert ok.write.quorum_acks == 2
    # The same node, now asking for all three: c is down, so the write cannot reach W = 3.
    a.service.quorum.config = QuorumConfig(writes=3, nodes=3, timeout_ms=800)  # type: ignore[union-attr]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(QuorumNotMetError) as failed:
        await a.service.store(_create("needs three"), agent_id="agent-1")  # type: ignore[arg-type]
    assert failed.value.body() == {"error": "quorum_not_met", "got": 2, "needed": 3, "reason": "timeout"}
    assert failed.value.headers() == {"Retry-After": "2"}
    assert loop.time() - started < 3.0
    transport = httpx.ASGITransport(app=create_app(a))
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as http:
        r = await http.post("/api/v1/memories", json={"title": "over http", "content": "needs three"})
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.json() == {"error": "quorum_not_met", "got": 2, "needed": 3, "reason": "timeout"}
    # The event stayed in the log: a and b have it now, c once it is back.
    c = await t3.up("c")
    titles = sorted(m.title for m in await _converged([a, t3.nodes["b"], c]))
    assert titles == ["needs three", "over http", "two of three"]


async def test_kill_leader_during_writes_keeps_every_acknowledged_write(t3: Cluster, cluster: NatsCluster) -> None:
    a, b = t3.nodes["a"], t3.nodes["b"]
    assert isinstance(a.log, JetStreamLog)
    leader = (await a.log.cluster_info())["leader"]
    victim = next(n for n in cluster.nodes if n.store_dir.name == leader)
    acked: list[str] = []
    failed: list[BaseException] = []

    async def writer(node: Node, prefix: str) -> None:
        for i in range(15):
            try:
                stored = await node.service.store(_create(f"{prefix}-{i}"), agent_id=prefix)  # type: ignore[arg-type]
                acked.append(stored.memory.id)
            except Exception as exc:  # refused writes are allowed; lost acknowledged ones are not
                failed.append(exc)
            await asyncio.sleep(0.02)

    async def killer() -> None:
        await asyncio.sleep(0.3)
        victim.kill()

    try:
        await asyncio.wait_for(asyncio.gather(writer(a, "wa"), writer(b, "wb"), killer()), timeout=120)
        await asyncio.to_thread(victim.start)
        memories = await _converged(list(t3.nodes.values()), timeout=30)
    finally:
        if not victim.running:
            await asyncio.to_thread(victim.start)
        await _replicas_current(a.log)  # leave the cluster whole for the next test
    ids = {m.id for m in memories}
    assert set(acked) <= ids
    assert len(acked) >= 20, failed  # the cluster elected a new leader and writes went on


async def test_four_nodes_five_agents_each_behave_as_one_memory(tmp_path: Path, cluster: NatsCluster) -> None:
    """The issue's T3 shape: 4 nodes x 5 agents, W = 2, concurrent writes; every node ends equal to a rebuild."""
    names = ("n1", "n2", "n3", "n4")
    t4 = Cluster(tmp_path, cluster, writes=2, timeout_ms=3000, names=names)
    try:
        for name in names:
            await t4.up(name)

        async def agent(node: Node, agent_id: str) -> list[str]:
            ids = []
            for i in range(3):
                stored = await node.service.store(_create(f"{agent_id} fact {i}"), agent_id=agent_id)  # type: ignore[arg-type]
                assert stored.write.quorum_acks is not None and stored.write.quorum_acks >= 2
                ids.append(stored.memory.id)
            return ids

        runs = [agent(t4.nodes[n], f"{n}-agent{a}") for n in names for a in range(5)]
        written = [i for ids in await asyncio.wait_for(asyncio.gather(*runs), timeout=120) for i in ids]
        memories = await _converged(list(t4.nodes.values()))
        assert sorted(m.id for m in memories) == sorted(written) and len(written) == 60
        first = t4.nodes["n1"]
        target = tmp_path / "rebuilt.db"
        await rebuild_sqlite(first.log, first.keyring, target, refuse_breaks=True)  # 4 writers, chains intact
        rebuilt = SQLiteReadModel(target)
        try:
            assert rebuilt.queries.all_memories() == memories
        finally:
            rebuilt.close()
    finally:
        await t4.close()


def test_a_cluster_whose_port_was_taken_starts_on_new_ports(tmp_path: Path) -> None:
    """Ports are picked when the cluster is made and listened on when it starts; another process can take one
    in between (CI saw it). The cluster then picks new ports instead of failing."""
    import socket

    from tests.conftest import _require_nats_server

    _require_nats_server()
    taken = NatsCluster(store_dir=tmp_path / "c", n=2)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    squatter.bind(("127.0.0.1", taken.cluster_ports[1]))
    squatter.listen()
    try:
        with taken:
            assert taken.cluster_ports[1] != squatter.getsockname()[1]
            assert all(node.running for node in taken.nodes)
    finally:
        squatter.close()
