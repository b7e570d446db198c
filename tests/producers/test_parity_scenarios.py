"""The original's A2A scenarios that our surface used to fail (issue #17, part 6), over the HTTP API in-process:
the S33 namespace subscription, the governance decision counters, the 1000-row list clamp, and kg_query's
validation order and ``{from, to}`` shape."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from producers.runtime.node import Node

# Every scenario behaves the same on a SQLite and on a Postgres read model.
BOTH_READ_MODELS = True
BOB = {"X-Agent-Id": "ai:bob"}


async def _namespaces(client: httpx.AsyncClient) -> list[str | None]:
    r = await client.get("/api/v1/subscriptions?agent_id=ai:bob", headers=BOB)
    assert r.status_code == 200, r.text
    return [s["namespace"] for s in r.json()["subscriptions"]]


@pytest.mark.parametrize("extra", [{}, {"namespace_filter": "s33-pubsub", "url": "http://localhost:9/hook",
                                        "events": "memory_store"}])
async def test_s33_namespace_subscription_listed_and_removed(client: httpx.AsyncClient, node: Node,
                                                             extra: dict[str, str]) -> None:
    body = {"agent_id": "ai:bob", "namespace": "s33-pubsub", **extra}
    r = await client.post("/api/v1/subscriptions", json=body, headers=BOB)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["namespace"] == "s33-pubsub" and created["agent_id"] == "ai:bob"
    assert created["url"] == extra.get("url", "http://localhost/_ns/ai:bob/s33-pubsub")
    assert await _namespaces(client) == ["s33-pubsub"]
    # Keyless: nothing can sign a delivery, so this node's delivery store never takes it (a keyed one it does).
    await node.webhooks.start()
    try:
        keyed = (await client.post("/api/v1/subscriptions", json={"url": "http://localhost:9/k", "secret": "s"},
                                   headers=BOB)).json()["id"]
        async with asyncio.timeout(20):
            while not node.webhooks.store.subscriptions():
                await asyncio.sleep(0.02)
        assert [s.id for s in node.webhooks.store.subscriptions()] == [keyed]
    finally:
        await node.webhooks.stop()
    assert (await client.delete(f"/api/v1/subscriptions?id={keyed}", headers=BOB)).json()["removed"]

    r = await client.delete("/api/v1/subscriptions?agent_id=ai:bob&namespace=s33-pubsub", headers=BOB)
    assert r.status_code == 200 and r.json()["removed"] is True and r.json()["id"] == created["id"]
    assert await _namespaces(client) == []
    again = await client.delete("/api/v1/subscriptions?agent_id=ai:bob&namespace=s33-pubsub", headers=BOB)
    assert again.json()["removed"] is False and again.json()["id"] == ""


async def test_subscription_caller_rules(client: httpx.AsyncClient) -> None:
    spoof = await client.get("/api/v1/subscriptions?agent_id=ai:alice", headers=BOB)
    assert spoof.status_code == 403
    assert spoof.json() == {"error": "agent_id query parameter does not match authenticated caller"}
    body = await client.post("/api/v1/subscriptions", json={"agent_id": "ai:alice", "namespace": "x"}, headers=BOB)
    assert body.status_code == 403
    neither = await client.delete("/api/v1/subscriptions", headers=BOB)
    assert neither.status_code == 400 and neither.json() == {"error": "id or (agent_id, namespace) required"}
    # The webhook shape (no namespace) still needs a secret: its deliveries are signed.
    hook = await client.post("/api/v1/subscriptions", json={"url": "http://localhost:9/h"}, headers=BOB)
    assert hook.status_code == 400 and hook.json()["error"].startswith("HMAC secret required")


async def test_decision_counts_rise_on_a_denial(client: httpx.AsyncClient) -> None:
    async def enforce_count() -> int:
        caps = (await client.get("/api/v1/capabilities")).json()
        value: int = caps["permissions"]["decision_counts"]["enforce"]
        return value

    policy = {"write": "registered", "promote": "any", "delete": "owner", "approver": "human"}
    r = await client.post("/api/v1/namespaces/gov/standard", json={"governance": policy}, headers={"X-Agent-Id": "al"})
    assert r.status_code in (200, 201), r.text
    before = await enforce_count()
    denied = await client.post("/api/v1/memories", json={"title": "t", "content": "c", "namespace": "gov"},
                               headers={"X-Agent-Id": "stranger"})
    assert denied.status_code == 403
    assert await enforce_count() > before


async def test_list_limit_clamps_at_1000(client: httpx.AsyncClient) -> None:
    items = [{"title": f"m{i}", "content": "bulk", "namespace": "bulk550"} for i in range(500)]
    r = await client.post("/api/v1/memories/bulk", json=items)
    assert r.status_code == 200 and r.json()["created"] == 500
    listed = await client.get("/api/v1/memories?namespace=bulk550&limit=550")
    assert listed.json()["count"] == 500
    found = await client.get("/api/v1/search?q=bulk&namespace=bulk550&limit=550")
    assert found.json()["count"] == 500


async def test_kg_query_validation_order_and_from_to(client: httpx.AsyncClient) -> None:
    ids = [(await client.post("/api/v1/memories", json={"title": f"n{i}", "content": "c"})).json()["id"]
           for i in range(3)]
    for a, b in itertools.pairwise(ids):
        assert (await client.post("/api/v1/links", json={"source_id": a, "target_id": b})).status_code == 201
    too_deep = await client.post("/api/v1/kg/query", json={"source_id": ids[0], "max_depth": 6})
    assert too_deep.status_code == 422
    # The id, valid_at and allowed_agents are checked first (400), as the original's handler does.
    for bad in ({"source_id": "../x"}, {"source_id": ids[0], "valid_at": "yesterday"},
                {"source_id": ids[0], "allowed_agents": ["bad agent"]}, {}):
        r = await client.post("/api/v1/kg/query", json={**bad, "max_depth": 6})
        assert r.status_code == 400, (bad, r.text)
    empty = await client.post("/api/v1/kg/query", json={"max_depth": 6})
    assert empty.json() == {"error": "invalid source_id: id cannot be empty"}
    chain = await client.post("/api/v1/kg/query", json={"from": ids[0], "to": ids[2], "max_depth": 4})
    assert chain.status_code == 200 and chain.json()["paths"] == [ids]
