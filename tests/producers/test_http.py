"""The HTTP API in-process (ASGI), checking the original's shapes, status codes and error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from producers.http import create_app
from producers.runtime.node import Node

# Every route behaves the same on a SQLite and on a Postgres read model.
BOTH_READ_MODELS = True


@pytest.fixture
async def keyed(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, api_key="s3cret"))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _deep(n: int) -> object:
    value: object = {}
    for _ in range(n):
        value = {"x": value}
    return value


async def post(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    body.setdefault("content", "some content")
    return await client.post("/api/v1/memories", json=body)


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    health = (await client.get("/api/v1/health")).json()
    assert health["status"] == "ok" and health["service"] == "ai-memory"
    await post(client, title="x")
    text = (await client.get("/metrics")).text
    # memory.stored, then memory.embedded with its vector
    assert "ai_memory_memories 1" in text and 'ai_memory_log_end_offset{partition="ai-memory"} 2' in text
    assert "ai_memory_log_chain_breaks 0" in text


async def test_create_201_shape_and_409(client: httpx.AsyncClient) -> None:
    r = await post(client, title="T", tier="long", tags=["a"], agent_id="agent-7")
    assert r.status_code == 201
    body = r.json()
    assert {"id", "tier", "namespace", "title", "agent_id", "offset"} <= set(body)
    assert body["agent_id"] == "agent-7" and body["offset"] == 2  # the offset of its memory.embedded
    dup = await post(client, title="T")
    assert dup.status_code == 409
    assert dup.json() == {"code": "CONFLICT", "existing_id": body["id"],
                          "error": "memory with title 'T' already exists in namespace 'global'"}


@pytest.mark.parametrize(("body", "message"), [
    ({"title": "", "content": "x"}, "title cannot be empty"),
    ({"title": "t" * 513, "content": "x"}, "title exceeds max length of 512 characters"),
    ({"title": "t", "content": "x" * 65537}, "content exceeds max size of 65536 bytes"),
    ({"title": "t", "content": "x", "tags": ["a"] * 51}, "too many tags (max 50)"),
    ({"title": "t", "content": "x", "tags": ["x" * 129]}, "exceeds max length of 128 bytes"),
    ({"title": "t", "content": "x", "priority": 11}, "priority must be between 1 and 10 (got 11)"),
    ({"title": "t", "content": "x", "confidence": 2}, "confidence must be between 0.0 and 1.0 (got 2)"),
    ({"title": "t", "content": "x", "namespace": "a b"}, "namespace cannot contain spaces"),
    ({"title": "t", "content": "x", "namespace": "/a"}, "namespace cannot start with '/'"),
    ({"title": "t", "content": "x", "namespace": "a/../b"}, "'.' and '..' are not allowed"),
    ({"title": "t", "content": "x", "agent_id": "bad id!"}, "invalid agent_id: agent_id contains invalid character"),
    ({"title": "t", "content": "x", "metadata": [1]}, "metadata must be a JSON object"),
    ({"title": "t", "content": "x", "metadata": {"d": _deep(40)}},
     "metadata nesting depth exceeds limit of 32"),
    ({"title": "t", "content": "x", "source": "robot"}, "invalid source 'robot'"),
    ({"title": "t", "content": "x", "on_conflict": "smash"}, "invalid on_conflict 'smash'"),
    ({"title": "t", "content": "x", "ttl_secs": -1}, "ttl_secs must be positive"),
    ({"title": "t", "content": "x", "expires_at": "yesterday"}, "expires_at is not valid RFC3339"),
    ({"title": "t", "content": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at is in the past"),
    ({"title": "t", "content": "x", "scope": "world"}, "invalid scope 'world'"),
    ({"content": "x"}, "missing field `title`"),
])
async def test_invalid_create_is_400_and_writes_nothing(client: httpx.AsyncClient, node: Node,
                                                        body: dict[str, object], message: str) -> None:
    r = await client.post("/api/v1/memories", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert await node.log.end_offsets() == {"ai-memory": 0}


async def test_malformed_json_and_oversized_body(client: httpx.AsyncClient, node: Node) -> None:
    r = await client.post("/api/v1/memories", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "Failed to parse the request body as JSON" in r.json()["error"]
    big = b'{"title":"t","content":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = await client.post("/api/v1/memories", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "2 MiB" in r.json()["error"]
    assert await node.log.end_offsets() == {"ai-memory": 0}


async def test_get_update_promote_delete(client: httpx.AsyncClient) -> None:
    mid = (await post(client, title="A", tier="short")).json()["id"]
    got = (await client.get(f"/api/v1/memories/{mid[:6]}")).json()
    assert got["id"] == mid and got["memory"]["id"] == mid and got["links"] == []
    assert "last_accessed_at" not in got["memory"]
    put = await client.put(f"/api/v1/memories/{mid}", json={"content": "changed", "priority": 9})
    assert put.status_code == 200 and put.json()["content"] == "changed" and put.json()["priority"] == 9
    bad = await client.put(f"/api/v1/memories/{mid}", json={"priority": 0})
    assert bad.status_code == 400
    promoted = (await client.post(f"/api/v1/memories/{mid}/promote")).json()
    assert promoted["promoted"] is True and promoted["tier"] == "long" and promoted["id"] == mid
    assert (await client.delete(f"/api/v1/memories/{mid}")).json()["deleted"] is True
    missing = await client.get(f"/api/v1/memories/{mid}")
    assert missing.status_code == 404 and missing.json() == {"error": "not found"}


async def test_ambiguous_prefix_is_400(client: httpx.AsyncClient) -> None:
    ids = [(await post(client, title=f"m{i}")).json()["id"] for i in range(40)]
    prefix = next(p for p in "0123456789abcdef" if sum(i.startswith(p) for i in ids) > 1)
    r = await client.get(f"/api/v1/memories/{prefix}")
    assert r.status_code == 400 and "ambiguous ID prefix" in r.json()["error"]


async def test_list_search_recall_shapes(client: httpx.AsyncClient) -> None:
    await post(client, title="rust async", content="tokio runtime for async rust", priority=8, namespace="dev")
    await post(client, title="python async", content="asyncio in python", namespace="dev", tags=["py"])
    listed = (await client.get("/api/v1/memories", params={"namespace": "dev", "limit": 1})).json()
    assert listed["count"] == 1 and listed["memories"][0]["title"] == "rust async"
    tagged = (await client.get("/api/v1/memories", params={"tags": "py"})).json()
    assert [m["title"] for m in tagged["memories"]] == ["python async"]
    found = (await client.get("/api/v1/search", params={"q": "async tokio"})).json()
    assert found["query"] == "async tokio" and [m["title"] for m in found["results"]] == ["rust async"]
    assert found["memories"] == found["results"] and found["count"] == 1
    assert (await client.get("/api/v1/search", params={"q": " "})).json() == {"error": "query is required"}
    post_recall = (await client.post("/api/v1/recall", json={"context": "async", "limit": 5})).json()
    assert post_recall["mode"] == "hybrid" and post_recall["count"] == 2  # the node has the MiniLM embedder
    assert all(isinstance(m["score"], float) for m in post_recall["memories"])
    assert post_recall["meta"]["recall_mode"] == "hybrid" and post_recall["tokens_used"] > 0
    keyword = (await client.post("/api/v1/recall", json={"context": "async", "mode": "keyword"})).json()
    assert keyword["mode"] == "keyword" and "meta" not in keyword and keyword["count"] == 2
    get_recall = (await client.get("/api/v1/recall", params={"context": "tokio", "budget_tokens": 100})).json()
    assert get_recall["budget_tokens"] == 100 and get_recall["meta"]["budget_overflow"] is False
    assert (await client.get("/api/v1/recall")).status_code == 400


async def test_bulk_forget_gc_stats_namespaces(client: httpx.AsyncClient) -> None:
    items = [{"title": f"b{i}", "content": "bulk item", "namespace": "bulk"} for i in range(5)]
    items.append({"title": "", "content": "bad"})
    r = (await client.post("/api/v1/memories/bulk", json=items)).json()
    assert r["created"] == 5 and len(r["ids"]) == 5
    assert r["errors"] == [{"index": 5, "title": "", "error": "title cannot be empty"}]
    too_many = await client.post("/api/v1/memories/bulk", json=[{"title": "x", "content": "y"}] * 1001)
    assert too_many.status_code == 400 and "limited to 1000" in too_many.json()["error"]
    stats = (await client.get("/api/v1/stats")).json()
    assert stats["total"] == 5 and stats["by_namespace"] == [{"namespace": "bulk", "count": 5}]
    assert stats["projector"]["rejected_events"] == 0
    ns = (await client.get("/api/v1/namespaces")).json()
    assert ns == {"namespaces": [{"namespace": "bulk", "count": 5}]}
    assert (await client.post("/api/v1/forget", json={})).status_code == 400
    assert (await client.post("/api/v1/forget", params={"namespace": "bulk"})).json()["deleted"] == 5
    assert (await client.post("/api/v1/gc")).json()["expired_deleted"] == 0


async def test_export_import_round_trip(client: httpx.AsyncClient) -> None:
    await post(client, title="keep me", content="exported")
    exported = (await client.get("/api/v1/export")).json()
    assert exported["count"] == 1 and exported["links"] == []
    await client.post("/api/v1/forget", json={"namespace": "global"})
    result = (await client.post("/api/v1/import", json={"memories": exported["memories"] + [{"id": "x"}]})).json()
    assert result["imported"] == 1 and result["errors"] == ["x: missing field `tier`"]
    again = (await client.get("/api/v1/export")).json()
    assert again["memories"] == exported["memories"]
    # A deleted memory is tombstoned: importing the backup again does not bring it back, and says so.
    memory_id = exported["memories"][0]["id"]
    await client.delete(f"/api/v1/memories/{memory_id}")
    result = (await client.post("/api/v1/import", json={"memories": exported["memories"]})).json()
    assert result["imported"] == 0
    assert result["errors"] == [f"{memory_id}: deleted on this node (tombstone); a deleted memory is not restored"]
    assert (await client.get("/api/v1/export")).json()["memories"] == []


async def test_api_key(keyed: httpx.AsyncClient) -> None:
    assert (await keyed.get("/api/v1/health")).status_code == 200
    r = await keyed.get("/api/v1/stats")
    assert r.status_code == 401 and r.json() == {"error": "missing or invalid API key"}
    assert (await keyed.get("/api/v1/stats", headers={"X-API-Key": "wrong"})).status_code == 401
    assert (await keyed.get("/api/v1/stats", headers={"X-API-Key": "s3cret"})).status_code == 200
    assert (await keyed.get("/api/v1/stats?api_key=s3cret")).status_code == 200
