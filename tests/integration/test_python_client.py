"""The original's own Python client (PyPI ai-memory-mcp, import ``ai_memory``), unmodified, against a real
``ai-memory serve`` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ai_memory import AiMemoryClient
from ai_memory.errors import AuthError, ConflictError, NotFoundError, ValidationError

from tests.servers import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("client") / "data", extra=["--api-key", "k3y"]).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[AiMemoryClient]:
    c = AiMemoryClient(server.url, api_key="k3y", agent_id="client-test")
    yield c
    c.close()


def test_store_get_update_promote_delete(client: AiMemoryClient) -> None:
    created = client.store(title="client roundtrip", content="stored by the original client", namespace="cli-t",
                           tags=["a"], priority=7)
    memory = client.get(created["id"])
    assert memory.title == "client roundtrip" and memory.namespace == "cli-t" and memory.priority == 7
    assert memory.metadata["agent_id"] == "client-test"
    with pytest.raises(ConflictError):
        client.store(title="client roundtrip", content="again", namespace="cli-t")
    client.update(created["id"], {"content": "changed"})
    assert client.get(created["id"]).content == "changed"
    assert client.promote(created["id"])["tier"] == "long"
    client.delete(created["id"])
    with pytest.raises(NotFoundError):
        client.get(created["id"])


def test_list_search_recall(client: AiMemoryClient) -> None:
    client.store(title="kafka partitions", content="order is kept per partition", namespace="cli-s")
    client.store(title="nats streams", content="jetstream keeps order per stream", namespace="cli-s")
    assert {m.title for m in client.list(namespace="cli-s")} == {"kafka partitions", "nats streams"}
    assert [m.title for m in client.search("jetstream", namespace="cli-s")] == ["nats streams"]
    recalled = client.recall("order partition stream", namespace="cli-s", limit=5)
    assert recalled.count == 2 and {m.title for m in recalled.memories} == {"kafka partitions", "nats streams"}


def test_bulk_forget_stats_namespaces_gc_export_import(client: AiMemoryClient) -> None:
    out = client.bulk_store([{"title": f"bulk {i}", "content": "x", "namespace": "cli-b"} for i in range(3)])
    assert out.created == 3 and len(out.ids) == 3
    stats = client.stats()
    assert stats.total >= 3
    assert any(ns["namespace"] == "cli-b" for ns in client.namespaces())
    exported = client.export()
    assert exported["count"] >= 3
    assert client.forget(namespace="cli-b")["deleted"] == 3
    back = client.import_({"memories": [m for m in exported["memories"] if m["namespace"] == "cli-b"]})
    assert back["imported"] == 3
    assert client.gc()["expired_deleted"] == 0
    assert "ai_memory_memories" in client.metrics()
    assert client.health()["status"] == "ok"


def test_errors_map_to_the_clients_exceptions(client: AiMemoryClient, server: ServerProcess) -> None:
    with pytest.raises(ValidationError, match="priority must be between 1 and 10"):
        client.store(title="bad", content="x", priority=99)
    anonymous = AiMemoryClient(server.url)
    with pytest.raises(AuthError):
        anonymous.stats()
    anonymous.close()


def test_data_dir_holds_log_keys_and_read_model(server: ServerProcess) -> None:
    names = {p.name for p in Path(server.data_dir).iterdir()}
    assert {"log.db", "readmodel.db", "keys", "node_id"} <= names
