"""Issue #20: a webhook subscription reads as its owner. Deliveries, the replay and the dead-letter list carry
only events about memories the owner may read (the mandatory-as_agent subtrees and other agents' private
memories are left out), against a REAL receiver on a loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from producers.http import create_app
from producers.runtime.node import Node, NodeConfig
from producers.webhooks import WebhookConfig
from tests.webhook_receiver import Receiver, running_receiver

SECRET = "receiver-shared-secret"
ADMIN = {"X-AI-Memory-Admin-Token": "op-secret"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver(SECRET) as r:
        yield r


@pytest.fixture
async def delivering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Node]:
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    node = await Node.open(NodeConfig(data_dir=tmp_path / "node",
                                      webhooks=WebhookConfig(retry_backoffs=(0.01, 0.01, 0.01))))
    await node.start()
    await node.webhooks.start()
    try:
        yield node
    finally:
        await node.close()


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def store(c: httpx.AsyncClient, title: str, namespace: str, scope: str | None) -> str:
    body: dict[str, Any] = {"title": title, "content": "c", "namespace": namespace}
    if scope is not None:
        body["scope"] = scope
    created = await c.post("/api/v1/memories", json=body, headers={"X-Agent-Id": "alice"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_a_subscription_gets_only_what_its_owner_may_read(delivering: Node, receiver: Receiver) -> None:
    bob = {"X-Agent-Id": "bob"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(delivering)),
                                 base_url="http://test") as c:
        sub = (await c.post("/api/v1/subscriptions", headers=bob,
                            json={"url": receiver.url(), "secret": SECRET})).json()
        receiver.down = True
        merger = await store(c, "Merger plan", "corp/deals", "collective")  # bob may read it, for now
        await wait_until(lambda: delivering.webhooks.store.counts().get("dead") == 1)
        before = (await c.get("/api/v1/subscriptions/dlq", headers=bob)).json()
        assert [merger in e["payload"] for e in before["entries"]] == [True]
        diary = await store(c, "Alice diary", "team", None)  # alice's private memory: never bob's
        await wait_until(lambda: delivering.webhooks.store.counts().get("cancelled") == 1)
        required = await c.post("/api/v1/admin/as_agent_required", json={"prefix": "corp"}, headers=ADMIN)
        assert required.status_code == 200
        dlq = (await c.get("/api/v1/subscriptions/dlq", headers=bob)).json()
        posted = (await c.post("/api/v1/memory_subscription_dlq_list", headers=bob, json={})).json()
        receiver.down = False
        public = await store(c, "Lunch menu", "misc", "collective")
        (got,) = await receiver.wait_for(1)
        replay = (await c.get(f"/api/v1/subscriptions/replay?subscription_id={sub['id']}&since=0",
                              headers=bob)).json()
    assert dlq["count"] == 0 and posted["count"] == 0
    assert [e["payload"]["memory_id"] for e in replay["events"]] == [public]
    assert got.body["memory_id"] == public
    sent = [r.body for r in receiver.requests]
    assert all(r["memory_id"] != diary and r.get("title") != "Alice diary" for r in sent)
