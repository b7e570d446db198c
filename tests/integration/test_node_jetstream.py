"""A whole node on NATS JetStream: the same service, projector and read model as on the embedded log."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infra.cluster import NatsServer
from producers.cli.main import main as cli
from producers.input.commands import parse_create, parse_recall
from producers.runtime.node import Node, NodeConfig
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import now_ts
from tests.servers import ServerProcess


def _url(server: NatsServer, stream: str) -> str:
    return f"{server.url}/{stream}"


@pytest.fixture
def stream() -> str:
    return f"node-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def nats_node(tmp_path: Path, nats_server: NatsServer, stream: str) -> AsyncIterator[Node]:
    node = await Node.open(NodeConfig(data_dir=tmp_path / "a", log_url=_url(nats_server, stream)))
    await node.start()
    yield node
    await node.close()


async def test_store_recall_update_on_jetstream(nats_node: Node, tmp_path: Path) -> None:
    service = nats_node.service
    stored = await service.store(parse_create({"title": "nats fact", "content": "jetstream keeps order"},
                                              now=now_ts()), agent_id="agent-n")
    assert stored.write.offset is not None and stored.write.offset >= 1
    hits = await service.recall(parse_recall({"context": "jetstream order"}), agent_id="reader")
    assert [h.memory.title for h in hits.memories] == ["nats fact"]
    assert (await service.resolve(stored.memory.id)).access_count == 1
    target = tmp_path / "rebuilt.db"
    await rebuild_sqlite(nats_node.log, nats_node.keyring, target)
    rebuilt = SQLiteReadModel(target)
    assert rebuilt.queries.all_memories() == nats_node.model.queries.all_memories()
    rebuilt.close()


async def test_two_nodes_share_one_stream(nats_node: Node, nats_server: NatsServer, stream: str,
                                          tmp_path: Path) -> None:
    second_dir = tmp_path / "b"
    (second_dir / "keys").mkdir(parents=True)
    # Node b trusts node a's key: events signed by a verify on b.
    shutil.copy(nats_node.config.data_dir / "keys" / f"{nats_node.key.key_id}.pub", second_dir / "keys")
    b = await Node.open(NodeConfig(data_dir=second_dir, log_url=_url(nats_server, stream)))
    await b.start()
    try:
        stored = await nats_node.service.store(parse_create({"title": "shared", "content": "seen by both"},
                                                            now=now_ts()), agent_id="a")
        seen = await b.service.resolve(stored.memory.id)
        assert seen.title == "shared" and b.model.rejected_count() == 0
        mine = await b.service.store(parse_create({"title": "from b", "content": "b wrote"}, now=now_ts()),
                                     agent_id="b")
        await nats_node.service.sync()
        # a does not trust b's key: b's event is refused on a, and says so.
        assert nats_node.model.rejected_count() >= 1
        assert nats_node.model.queries.get(mine.memory.id) is None
    finally:
        await b.close()


def test_cli_and_server_on_nats(tmp_path: Path, nats_server: NatsServer, stream: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    log_url = _url(nats_server, stream)
    data = tmp_path / "srv"
    server = ServerProcess(data, extra=["--log", log_url]).start()
    try:
        tester = {"X-Agent-Id": "tester"}  # one agent writes both and reads its own (private) memories
        r = httpx.post(f"{server.url}/api/v1/memories", json={"title": "over http", "content": "via nats"},
                       headers=tester)
        assert r.status_code == 201
        assert cli(["store", "--data-dir", str(data), "--log", log_url, "-T", "over cli", "-c", "via nats",
                    "--agent-id", "tester"]) == 0
        capsys.readouterr()
        listed = httpx.get(f"{server.url}/api/v1/memories", headers=tester).json()
        assert {m["title"] for m in listed["memories"]} == {"over http", "over cli"}
    finally:
        server.stop()
    assert cli(["log", "tail", "--data-dir", str(data), "--log", log_url, "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(e["payload"]["memory"]["title"] for e in events if e["type"] == "memory.stored") == [
        "over cli", "over http"]
    assert cli(["verify", "--data-dir", str(data), "--log", log_url, "--quiet"]) == 0
