"""The nodes of one host on one SQLite read model: two real ``ai-memory serve`` processes on one NATS stream and one
read-model file, writing at once over HTTP. Every write is acknowledged and read on both nodes; each event is
applied once on the host (the nodes' applied counts add up to the log's length); the shared file equals a rebuild
from the log, compared by hash."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from infra.cluster.local import prepare_nodes, shared_read_model
from infra.cluster.nats_server import NatsServer
from producers.http.base import CLOCK_HEADER
from producers.memory.model_hash import memories_hash
from producers.sync.service import parse_clock
from projectors import SQLiteReadModel
from tests.integration.test_cluster_sigstop import _caught_up, _rebuilt_hash
from tests.servers import ServerProcess

WRITES = 30


def _applied(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ai_memory_events_applied_total"))


async def test_two_serve_processes_share_one_sqlite_read_model(tmp_path: Path, nats_server: NatsServer) -> None:
    stream = f"shared-{uuid.uuid4().hex[:8]}"
    extra = ["--log", f"{nats_server.url}/{stream}", *shared_read_model(tmp_path)]
    nodes = [ServerProcess(d, env={"AI_MEMORY_EMBEDDER": "off", "AI_MEMORY_AGENT_ID": ""}, extra=extra)
             for d in prepare_nodes(tmp_path / "nodes", 2)]
    try:
        for node in nodes:
            node.start(timeout=30)
        async with httpx.AsyncClient(timeout=30) as client:
            async def write(node: ServerProcess, n: int) -> httpx.Response:
                return await client.post(f"{node.url}/api/v1/memories", headers={"X-Agent-Id": "host-agent"},
                                         json={"title": f"note {node.port} {n}", "content": f"shared note {n}",
                                               "namespace": "host"})

            answers = await asyncio.gather(*(write(node, n) for n in range(WRITES) for node in nodes))
        assert all(r.status_code == 201 for r in answers), [r.text for r in answers if r.status_code != 201][:3]
        clocks = [parse_clock(r.headers[CLOCK_HEADER]) for r in answers]
        end = {p: max(c.get(p, 0) for c in clocks) for c in clocks for p in c}
        for node in nodes:
            _caught_up(node.url, end)
            listed = httpx.get(f"{node.url}/api/v1/memories", params={"limit": 200, "namespace": "host"},
                               headers={"X-Agent-Id": "host-agent"}, timeout=30).json()["memories"]
            assert len(listed) == 2 * WRITES
        applied = sum(_applied(node.url) for node in nodes)
    finally:
        for node in nodes:
            node.stop()
    rebuilt = await _rebuilt_hash(f"{nats_server.url}/{stream}", stream, nodes[0].data_dir / "keys",
                                  tmp_path / "rebuild")
    model = SQLiteReadModel(tmp_path / "readmodel.db")
    try:
        assert memories_hash(model) == rebuilt
        # Each event applied once on the host, by one node or the other.
        assert applied == model.applied_count() >= 2 * WRITES and model.rejected_count() == 0
    finally:
        model.close()
