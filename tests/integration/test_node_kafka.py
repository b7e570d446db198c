"""A whole node on the Kafka log (tansu): the same service, projector and read model as on the other logs."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infra.cluster import KafkaBroker
from infra.log.kafka import KafkaLog
from producers.cli.main import main as cli
from producers.input.commands import parse_create, parse_recall, parse_update
from producers.memory.wire import stats_body
from producers.runtime.node import Node, NodeConfig
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import now_ts
from tests.servers import ServerProcess


@pytest.fixture
async def kafka_node(tmp_path: Path, kafka_broker: KafkaBroker) -> AsyncIterator[Node]:
    url = f"{kafka_broker.url}/node-{uuid.uuid4().hex[:8]}"
    node = await Node.open(NodeConfig(data_dir=tmp_path / "a", log_url=url))
    await node.start()
    yield node
    await node.close()


async def test_store_recall_update_on_kafka(kafka_node: Node, tmp_path: Path) -> None:
    service = kafka_node.service
    assert isinstance(kafka_node.log, KafkaLog)
    stored = await service.store(parse_create({"title": "kafka fact", "content": "partitions keep namespace order",
                                               "namespace": "team/kafka"}, now=now_ts()), agent_id="agent-k")
    other = await service.store(parse_create({"title": "global fact", "content": "partitions are many"},
                                             now=now_ts()), agent_id="agent-k")
    assert {p.partition for p in stored.write.positions} != {p.partition for p in other.write.positions}
    hits = await service.recall(parse_recall({"context": "partitions namespace order"}), agent_id="reader")
    assert "kafka fact" in [h.memory.title for h in hits.memories]
    assert (await service.resolve(stored.memory.id)).access_count == 1
    updated, _ = await service.update(stored.memory.id, parse_update({"content": "moved", "namespace": "elsewhere"}),
                                      agent_id="agent-k")
    assert updated.namespace == "elsewhere"
    await service.delete(other.memory.id, agent_id="agent-k")
    target = tmp_path / "rebuilt.db"
    await rebuild_sqlite(kafka_node.log, kafka_node.keyring, target, refuse_breaks=True)  # chains across partitions
    rebuilt = SQLiteReadModel(target)
    assert rebuilt.queries.all_memories() == kafka_node.model.queries.all_memories()
    assert rebuilt.rejected_count() == 0
    rebuilt.close()


async def test_stats_say_what_the_kafka_log_guarantees(kafka_node: Node) -> None:
    body = await stats_body(kafka_node)
    assert body["log"]["backend"]["idempotent_producer"] is False
    assert body["log"]["backend"]["supports_expected"] is False
    assert len(body["log"]["end_offsets"]) == 8


def test_cli_and_server_on_kafka(tmp_path: Path, kafka_broker: KafkaBroker,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --log kafka://…` and the CLI verbs on the same topic, from separate processes."""
    log_url = f"{kafka_broker.url}/srv-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "srv"
    server = ServerProcess(data, extra=["--log", log_url]).start()
    try:
        tester = {"X-Agent-Id": "tester"}  # one agent writes both and reads its own (private) memories
        r = httpx.post(f"{server.url}/api/v1/memories", json={"title": "over http", "content": "via kafka"},
                       headers=tester)
        assert r.status_code == 201
        assert set(r.json()["log_clock"]) <= {f"{log_url.rsplit('/', 1)[1]}-{n}" for n in range(8)}
        assert cli(["store", "--data-dir", str(data), "--log", log_url, "-T", "over cli", "-c", "via kafka",
                    "-n", "team/x", "--agent-id", "tester"]) == 0
        capsys.readouterr()
        listed = httpx.get(f"{server.url}/api/v1/memories", headers=tester).json()
        assert {m["title"] for m in listed["memories"]} == {"over http", "over cli"}
        assert cli(["recall", "--data-dir", str(data), "--log", log_url, "via kafka", "--json"]) == 0
        assert {m["title"] for m in json.loads(capsys.readouterr().out)["memories"]} == {"over http", "over cli"}
    finally:
        server.stop()
    assert cli(["log", "tail", "--data-dir", str(data), "--log", log_url, "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["type"] for e in events].count("memory.stored") == 2
    assert cli(["verify", "--data-dir", str(data), "--log", log_url, "--quiet"]) == 0


async def test_quorum_writes_from_confirmations_on_a_kafka_topic(tmp_path: Path, kafka_broker: KafkaBroker) -> None:
    from infra.confirm.kafka import KafkaConfirmations
    from producers.errors import QuorumNotMetError
    from producers.write.quorum import QuorumConfig
    from tests.node_pair import trust_each_other

    url = f"{kafka_broker.url}/quorum-{uuid.uuid4().hex[:8]}"
    names = ("a", "b")
    trust_each_other(tmp_path, names)
    nodes = {}
    for name in names:
        config = NodeConfig(data_dir=tmp_path / name, log_url=url, node_id=f"node-{name}", embedder="off",
                            quorum=QuorumConfig(writes=2, nodes=2, timeout_ms=5000))
        nodes[name] = await Node.open(config)
        await nodes[name].start()
    try:
        assert isinstance(nodes["a"].confirmations, KafkaConfirmations)
        stored = await nodes["a"].service.store(parse_create({"title": "both", "content": "applied on a and b"},
                                                             now=now_ts()), agent_id="agent-k")
        assert (await nodes["b"].service.resolve(stored.memory.id)).title == "both"
        await nodes.pop("b").close()
        with pytest.raises(QuorumNotMetError) as info:
            await nodes["a"].service.store(parse_create({"title": "alone", "content": "only a applies it"},
                                                        now=now_ts()), agent_id="agent-k")
        assert info.value.body()["needed"] == 2 and info.value.body()["got"] == 1
    finally:
        for node in nodes.values():
            await node.close()


async def test_projector_position_is_mirrored_to_a_kafka_consumer_group(kafka_node: Node) -> None:
    import asyncio

    kafka_node.runner._commit_every = 0.1
    stored = await kafka_node.service.store(parse_create({"title": "lag", "content": "visible to kafka tools"},
                                                         now=now_ts()), agent_id="agent-k")
    consumer = f"projector-{kafka_node.key.key_id}"
    async with asyncio.timeout(15):
        while await kafka_node.log.committed_position(consumer) != kafka_node.runner.position:
            await asyncio.sleep(0.2)
    from infra.log import clock_covers

    assert clock_covers(kafka_node.runner.position, stored.write.clock())
