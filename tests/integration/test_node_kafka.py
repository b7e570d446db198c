"""A whole node on the Kafka log (tansu): the same service, projector and read model as on the other logs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.cluster import KafkaBroker
from infra.log.kafka import KafkaLog
from producers.commands import parse_create, parse_recall, parse_update
from producers.node import Node, NodeConfig
from producers.wire import stats_body
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from schemas import now_ts


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
    await rebuild_sqlite(kafka_node.log, kafka_node.keyring, target)
    rebuilt = SQLiteReadModel(target)
    assert rebuilt.queries.all_memories() == kafka_node.model.queries.all_memories()
    assert rebuilt.rejected_count() == 0
    rebuilt.close()


async def test_stats_say_what_the_kafka_log_guarantees(kafka_node: Node) -> None:
    body = await stats_body(kafka_node)
    assert body["log"]["backend"]["idempotent_producer"] is False
    assert body["log"]["backend"]["supports_expected"] is False
    assert len(body["log"]["end_offsets"]) == 8
