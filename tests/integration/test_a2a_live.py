"""The four held-out A2A scenarios of issue #17 (part 6), each over HTTP against a live ``ai-memory serve``
process, with the original v0.7.0's statuses and texts (read from its handlers: ``subscriptions.rs``,
``capabilities``, ``memories_query.rs`` with ``MAX_BULK_SIZE`` = 1000, ``kg.rs``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import ServerProcess

BOB = {"X-Agent-Id": "ai:bob"}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    proc = ServerProcess(tmp_path_factory.mktemp("a2a") / "node", env={"AI_MEMORY_EMBEDDER": "off",
                                                                         "AI_MEMORY_AGENT_ID": ""})
    proc.data_dir.mkdir(parents=True)
    proc.start(timeout=90)
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            yield client
    finally:
        proc.stop()


def test_subscription_by_agent_and_namespace(http: httpx.Client) -> None:
    body = {"agent_id": "ai:bob", "namespace": "s33", "namespace_filter": "s33", "url": "http://localhost:9/h",
            "events": "memory_store"}
    created = http.post("/api/v1/subscriptions", json=body, headers=BOB)
    assert created.status_code == 201, created.text
    listed = http.get("/api/v1/subscriptions", params={"agent_id": "ai:bob"}, headers=BOB).json()["subscriptions"]
    assert [(s["id"], s["agent_id"], s["namespace"], s["url"]) for s in listed] == [
        (created.json()["id"], "ai:bob", "s33", "http://localhost:9/h")]
    removed = http.delete("/api/v1/subscriptions", params={"agent_id": "ai:bob", "namespace": "s33"}, headers=BOB)
    assert removed.status_code == 200
    assert removed.json()["id"] == created.json()["id"] and removed.json()["removed"] is True
    assert http.get("/api/v1/subscriptions", params={"agent_id": "ai:bob"}, headers=BOB).json()["subscriptions"] == []


def test_a_denial_raises_the_enforce_count(http: httpx.Client) -> None:
    def enforce() -> int:
        counts = http.get("/api/v1/capabilities").json()["permissions"]["decision_counts"]
        assert set(counts) >= {"enforce"}
        value: int = counts["enforce"]
        return value

    policy = {"write": "registered", "promote": "any", "delete": "owner", "approver": "human"}
    assert http.post("/api/v1/namespaces/a2a-gov/standard", json={"governance": policy},
                     headers={"X-Agent-Id": "alice"}).status_code in (200, 201)
    before = enforce()
    denied = http.post("/api/v1/memories", json={"title": "t", "content": "c", "namespace": "a2a-gov"},
                       headers={"X-Agent-Id": "mallory"})
    assert denied.status_code == 403
    assert enforce() == before + 1


def test_a_bulk_of_500_lists_whole_and_limits_clamp_at_1000(http: httpx.Client) -> None:
    def bulk(namespace: str, n: int, first: int, agent: str) -> None:
        # Collective: every reader sees them (two writers, as each agent's daily quota is the original's 1000).
        items = [{"title": f"{namespace}-{i}", "content": "bulk", "namespace": namespace,
                  "metadata": {"scope": "collective"}} for i in range(first, first + n)]
        r = http.post("/api/v1/memories/bulk", json=items, headers={"X-Agent-Id": agent})
        assert r.status_code == 200 and r.json()["created"] == n, r.text

    bulk("a2a-bulk", 500, 0, "ai:bulk1")
    listed = http.get("/api/v1/memories", params={"namespace": "a2a-bulk", "limit": 550}, headers=BOB).json()
    assert listed["count"] == 500 and len({m["id"] for m in listed["memories"]}) == 500
    bulk("a2a-bulk", 600, 500, "ai:bulk2")
    clamped = http.get("/api/v1/memories", params={"namespace": "a2a-bulk", "limit": 5000}, headers=BOB).json()
    assert clamped["count"] == 1000


def test_kg_query_past_depth_5(http: httpx.Client) -> None:
    ids = [http.post("/api/v1/memories", json={"title": f"kg{i}", "content": "c"}, headers=BOB).json()["id"]
           for i in range(2)]
    assert http.post("/api/v1/links", json={"source_id": ids[0], "target_id": ids[1]}, headers=BOB).status_code == 201
    # The original's SQLite and Postgres paths both answer a depth past KG_QUERY_MAX_SUPPORTED_DEPTH with 422
    # and the storage layer's text (handlers/kg.rs); 400 is for what is checked before the depth.
    deep = http.post("/api/v1/kg/query", json={"source_id": ids[0], "max_depth": 6}, headers=BOB)
    assert deep.status_code == 422 and deep.json() == {"error": "max_depth=6 exceeds supported depth=5"}
    bad_id = http.post("/api/v1/kg/query", json={"source_id": "a b", "max_depth": 6}, headers=BOB)
    assert bad_id.status_code == 400 and bad_id.json()["error"].startswith("invalid source_id: ")
    bad_caller = http.post("/api/v1/kg/query", json={"source_id": ids[0], "max_depth": 6},
                           headers={"X-Agent-Id": "bad agent"})
    assert bad_caller.status_code == 400 and bad_caller.json()["error"].startswith("invalid agent_id: ")
    ok = http.post("/api/v1/kg/query", json={"source_id": ids[0], "max_depth": 5}, headers=BOB).json()
    assert ok["count"] == 1 and ok["max_depth"] == 5
