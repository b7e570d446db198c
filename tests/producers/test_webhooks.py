"""Webhook subscriptions end to end: the HTTP routes, the delivery projector and its sender against a REAL
receiver on a loopback port (signatures checked on the receiver side), retries then success, the dead-letter
list, restarts in between (nothing missed, nothing sent twice), two nodes on one log, and the owner scoping."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client

from infra.cluster.process import free_port
from producers.http import create_app
from producers.mcp import McpApp
from producers.runtime.node import Node, NodeConfig
from producers.tools.registry import Profile
from producers.webhooks import WebhookConfig
from schemas import load_or_create_node_key
from tests.webhook_receiver import Receiver, running_receiver

# Every test using the ``node`` fixture runs on a SQLite and on a Postgres read model.
BOTH_READ_MODELS = True

SECRET = "receiver-shared-secret"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver(SECRET) as r:
        yield r


@asynccontextmanager
async def http(node: Node, agent: str = "alice") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers={"x-agent-id": agent}) as c:
        yield c


async def subscribe(client: httpx.AsyncClient, url: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/subscriptions", json={"url": url, "secret": SECRET, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def store(client: httpx.AsyncClient, title: str, namespace: str = "global", scope: str | None = None) -> str:
    body = {"title": title, "content": f"about {title}", "namespace": namespace}
    r = await client.post("/api/v1/memories", json=body if scope is None else {**body, "scope": scope})
    assert r.status_code == 201, r.text
    memory_id: str = r.json()["id"]
    return memory_id


async def wait_until(condition: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.fixture
async def delivering(node: Node) -> AsyncIterator[Node]:
    await node.webhooks.start()
    yield node
    await node.webhooks.stop()


async def test_delivery_is_signed_acknowledged_and_counted(delivering: Node, receiver: Receiver) -> None:
    async with http(delivering) as client:
        sub = await subscribe(client, receiver.url())
        assert sub["created_by"] == "alice" and sub["events"] == "*" and "offset" in sub
        memory_id = await store(client, "Deploy order", "ops")
        (got,) = await receiver.wait_for(1)
        assert got.signature_ok and got.path == "/hook"
        assert got.correlation_header == got.body["correlation_id"]
        assert abs(int(got.timestamp) - time.time()) < 60
        assert {k: got.body[k] for k in ("event", "memory_id", "namespace", "agent_id", "title")} == {
            "event": "memory_store", "memory_id": memory_id, "namespace": "ops", "agent_id": "alice",
            "title": "Deploy order"}
        assert "delivered_at" in got.body
        await wait_until(lambda: delivering.webhooks.store.counts().get("ack") == 1)
        listed = (await client.get("/api/v1/subscriptions")).json()
        caps = (await client.get("/api/v1/capabilities", headers={"accept-capabilities": "v2"})).json()
    assert caps["hooks"]["registered_count"] == 1 and "memory_store" in caps["hooks"]["webhook_events"]
    assert listed["count"] == 1
    row = listed["subscriptions"][0]
    assert row["id"] == sub["id"] and row["dispatch_count"] == 1 and row["failure_count"] == 0
    assert "secret" not in row and len(row["secret_fingerprint"]) == 16


async def test_the_secret_never_enters_the_log_in_clear(delivering: Node) -> None:
    async with http(delivering) as client:
        await subscribe(client, "https://hooks.example.com/in")
    raw = b"".join(r.event.body for r in await delivering.log.read(after={}, limit=100))
    key_hex = __import__("hashlib").sha256(SECRET.encode()).hexdigest()
    assert SECRET.encode() not in raw and key_hex.encode() not in raw


async def test_filters_choose_the_events(delivering: Node, receiver: Receiver) -> None:
    async with http(delivering) as client:
        await subscribe(client, receiver.url("/deletes"), events="memory_delete,memory_promote",
                        namespace_filter="a")
        await subscribe(client, receiver.url("/bob"), agent_filter="bob")
        in_a, in_b = await store(client, "in a", "a"), await store(client, "in b", "b")
        assert (await client.delete(f"/api/v1/memories/{in_b}")).status_code == 200
        assert (await client.post(f"/api/v1/memories/{in_a}/promote")).status_code == 200
        assert (await client.delete(f"/api/v1/memories/{in_a}")).status_code == 200
        async with http(delivering, "bob") as bob:
            await store(bob, "bob's", "b", scope="collective")  # alice may see it (not bob's private memory)
        got = await receiver.wait_for(3)
    by_path = sorted((r.path, r.body["event"], r.body["memory_id"]) for r in got)
    assert by_path[0][0] == "/bob" and by_path[0][1] == "memory_store"
    assert by_path[1:] == [("/deletes", "memory_delete", in_a), ("/deletes", "memory_promote", in_a)]
    promote = next(r for r in got if r.body["event"] == "memory_promote")
    assert promote.body["mode"] == "tier" and promote.body["tier"] == "long"


async def test_a_failing_receiver_that_recovers_gets_it_after_retries(delivering: Node, receiver: Receiver) -> None:
    receiver.fail_first = 2
    async with http(delivering) as client:
        await subscribe(client, receiver.url())
        started = time.monotonic()
        await store(client, "flaky")
        (acked,) = await receiver.wait_for(1)
        elapsed = time.monotonic() - started
        await wait_until(lambda: delivering.webhooks.store.counts().get("ack") == 1)
        dlq = (await client.get("/api/v1/subscriptions/dlq")).json()
    assert len(receiver.requests) == 3 and elapsed >= 1.2  # first try, then after 200 ms and 1 s
    assert {r.body["correlation_id"] for r in receiver.requests} == {acked.body["correlation_id"]}
    assert all(r.signature_ok for r in receiver.requests)
    (delivery,) = delivering.webhooks.store.deliveries()
    assert delivery.status == "ack" and delivery.attempts == 3
    assert dlq == {"count": 0, "subscription_id": None, "limit": 100, "entries": []}


async def test_a_receiver_that_stays_down_ends_in_the_dead_letter_list(delivering: Node, receiver: Receiver) -> None:
    receiver.down = True
    async with http(delivering) as client:
        sub = await subscribe(client, receiver.url())
        memory_id = await store(client, "lost")
        await wait_until(lambda: delivering.webhooks.store.counts().get("dead") == 1, timeout=30)
        dlq = (await client.get(f"/api/v1/subscriptions/dlq?subscription_id={sub['id']}")).json()
        posted = (await client.post("/api/v1/memory_subscription_dlq_list", json={"limit": 5})).json()
        listed = (await client.get("/api/v1/subscriptions")).json()["subscriptions"][0]
        async with http(delivering, "mallory") as other:
            theirs = (await other.get("/api/v1/subscriptions/dlq")).json()
    assert len(receiver.requests) == 4  # the first attempt and three retries
    (entry,) = dlq["entries"]
    assert entry["retry_count"] == 4 and entry["last_error"] == "http-500" and entry["event_type"] == "memory_store"
    assert entry["correlation_id"] == receiver.requests[0].body["correlation_id"]
    assert memory_id in entry["payload"]
    assert posted["entries"] == dlq["entries"] and posted["limit"] == 5
    assert listed["failure_count"] == 1
    assert theirs["count"] == 0  # another agent never sees these payloads


async def test_unsubscribe_stops_deliveries_and_is_owner_only(delivering: Node, receiver: Receiver) -> None:
    async with http(delivering) as client, http(delivering, "mallory") as other:
        sub = await subscribe(client, receiver.url("/first"))
        refused = (await other.delete(f"/api/v1/subscriptions?id={sub['id']}")).json()
        assert refused["removed"] is False and (await other.get("/api/v1/subscriptions")).json()["count"] == 0
        removed = await client.delete(f"/api/v1/subscriptions?id={sub['id']}")
        assert removed.status_code == 200 and removed.json()["removed"] is True
        assert (await client.delete("/api/v1/subscriptions")).status_code == 400
        await subscribe(client, receiver.url("/second"))
        await store(client, "after unsubscribe")
        (got,) = await receiver.wait_for(1)
    assert got.path == "/second"  # the same event was not sent to the removed subscription


async def test_replay_since_an_offset_or_a_time(delivering: Node, receiver: Receiver) -> None:
    async with http(delivering) as client:
        sub = await subscribe(client, receiver.url())
        first = await store(client, "one")
        await receiver.wait_for(1)
        await asyncio.sleep(0.01)
        middle = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".999999Z"
        await asyncio.sleep(1.0)
        second = await store(client, "two")
        await receiver.wait_for(2)
        await wait_until(lambda: delivering.webhooks.store.counts().get("ack") == 2)
        everything = (await client.get(f"/api/v1/subscriptions/replay?subscription_id={sub['id']}&since=0")).json()
        later = (await client.post("/api/v1/memory_subscription_replay",
                                   json={"subscription_id": sub["id"], "since": middle})).json()
        async with http(delivering, "mallory") as other:
            hidden = await other.get(f"/api/v1/subscriptions/replay?subscription_id={sub['id']}&since=0")
        bad = await client.get(f"/api/v1/subscriptions/replay?subscription_id={sub['id']}&since=yesterday")
    assert [e["payload"]["memory_id"] for e in everything["events"]] == [first, second]
    assert [e["delivery_status"] for e in everything["events"]] == ["ack", "ack"]
    sent = {r.body["correlation_id"] for r in receiver.requests}
    assert {e["correlation_id"] for e in everything["events"]} == sent
    assert [e["payload"]["memory_id"] for e in later["events"]] == [second]
    assert hidden.status_code == 404 and bad.status_code == 400


async def test_subscribe_validation_and_ssrf_refusals(node: Node) -> None:
    async with http(node) as client:
        cases = {
            "http://hooks.example.com/in": "must be https",
            "https://10.1.2.3/in": "private",
            "https://169.254.169.254/latest": "private",
            "https://[fd00::1]/in": "private",
            "https://[::ffff:192.168.1.1]/in": "private",
            "ftp://example.com/x": "scheme",
        }
        for url, fragment in cases.items():
            r = await client.post("/api/v1/subscriptions", json={"url": url, "secret": "s"})
            assert r.status_code == 400 and fragment in r.json()["error"], (url, r.text)
        no_secret = await client.post("/api/v1/subscriptions", json={"url": "https://hooks.example.com/in"})
        assert no_secret.status_code == 400 and "HMAC secret required" in no_secret.json()["error"]
        unknown = await client.post("/api/v1/subscriptions",
                                    json={"url": "https://hooks.example.com/in", "secret": "s", "events": "nope"})
        assert unknown.status_code == 400 and "unknown webhook event type 'nope'" in unknown.json()["error"]
        assert (await client.post("/api/v1/subscriptions", json={"secret": "s"})).status_code == 400


# -- restarts: a node is closed and opened again on the same data dir ---------------------------------------


async def _open(data_dir: Path, read_model: str, **config: Any) -> Node:
    node = await Node.open(NodeConfig(data_dir=data_dir, read_model_url=read_model, **config))
    await node.start()
    return node


async def test_restart_misses_nothing_and_resends_nothing(tmp_path: Path, read_model: str,
                                                          receiver: Receiver) -> None:
    data = tmp_path / "node"
    node = await _open(data, read_model)
    await node.webhooks.start()
    async with http(node) as client:
        await subscribe(client, receiver.url())
        await store(client, "before")
        await receiver.wait_for(1)
    await node.webhooks.stop()
    await node.close()

    # While no delivery runs (the CLI writes on the same data dir, say), two more memories arrive.
    node = await _open(data, read_model)
    async with http(node) as client:
        await store(client, "while stopped 1")
        await store(client, "while stopped 2")
    await node.close()

    node = await _open(data, read_model)
    await node.webhooks.start()
    try:
        got = await receiver.wait_for(3)
        await asyncio.sleep(0.5)  # time for a wrong resend to show up
    finally:
        await node.webhooks.stop()
        await node.close()
    titles = [r.body["title"] for r in receiver.requests]
    assert sorted(titles) == ["before", "while stopped 1", "while stopped 2"] and len(got) == 3


async def test_a_delivery_interrupted_by_a_stop_resumes_after_the_restart(tmp_path: Path, read_model: str,
                                                                         receiver: Receiver) -> None:
    data = tmp_path / "node"
    receiver.down = True
    node = await _open(data, read_model)
    await node.webhooks.start()
    async with http(node) as client:
        await subscribe(client, receiver.url())
        await store(client, "interrupted")
        await receiver.wait_for(1, acked=False)
    await node.webhooks.stop()  # in the middle of the retry ladder
    await node.close()
    receiver.down = False
    node = await _open(data, read_model)
    await node.webhooks.start()
    try:
        (acked,) = await receiver.wait_for(1)
        await wait_until(lambda: node.webhooks.store.counts().get("ack") == 1)
    finally:
        await node.webhooks.stop()
        await node.close()
    assert acked.body["title"] == "interrupted"
    assert {r.body["correlation_id"] for r in receiver.requests} == {acked.body["correlation_id"]}


async def test_a_new_delivery_store_does_not_resend_history(tmp_path: Path, read_model: str,
                                                            receiver: Receiver) -> None:
    data = tmp_path / "node"
    node = await _open(data, read_model)
    await node.webhooks.start()
    async with http(node) as client:
        sub = await subscribe(client, receiver.url())
        await store(client, "old")
        await receiver.wait_for(1)
    await node.webhooks.stop()
    await node.close()
    (data / "deliveries.db").unlink()  # lost or deleted: rebuilt from the log, history is not resent
    node = await _open(data, read_model)
    await node.webhooks.start()
    try:
        assert node.webhooks.store.subscription(sub["id"]) is not None  # subscriptions came back from the log
        async with http(node) as client:
            await store(client, "new")
        got = await receiver.wait_for(2)
    finally:
        await node.webhooks.stop()
        await node.close()
    assert [r.body["title"] for r in got] == ["old", "new"] and len(receiver.requests) == 2


# -- two nodes on one log: each event is delivered once, by the node that wrote it --------------------------


async def test_two_nodes_deliver_each_event_once(tmp_path: Path, receiver: Receiver) -> None:
    log_url = f"sqlite://{tmp_path / 'shared-log.db'}"
    dirs = {name: tmp_path / name for name in ("a", "b")}
    for name, directory in dirs.items():
        load_or_create_node_key(directory / "keys", f"node-{name}")
    a = await _open(dirs["a"], "", log_url=log_url, node_id="node-a", trusted_keys=(dirs["b"] / "keys",))
    b = await _open(dirs["b"], "", log_url=log_url, node_id="node-b", trusted_keys=(dirs["a"] / "keys",))
    try:
        await a.webhooks.start()
        await b.webhooks.start()
        async with http(a) as on_a, http(b) as on_b:
            await subscribe(on_a, receiver.url())  # made on a, its key sealed to both nodes
            await b.service.wait_for(await a.log.end_offsets(), timeout=10)
            from_a, from_b = await store(on_a, "from a"), await store(on_b, "from b")
            got = await receiver.wait_for(2)
            await asyncio.sleep(1.0)  # time for a second delivery by the other node to show up
    finally:
        for n in (a, b):
            await n.webhooks.stop()
            await n.close()
    assert sorted(r.body["memory_id"] for r in got) == sorted([from_a, from_b])
    assert len(receiver.requests) == 2 and all(r.signature_ok for r in receiver.requests)


# -- the MCP tools: the same service, the original's shapes ---------------------------------------------------


async def _tool(client: Client, name: str, args: dict[str, Any]) -> Any:
    result = await client.call_tool(name, args)
    block = result.content[0]
    assert isinstance(block, types.TextContent) and not result.is_error, block
    return json.loads(block.text)


async def test_the_mcp_tools_end_to_end(delivering: Node, receiver: Receiver) -> None:
    server = McpApp(delivering, Profile.parse("full")).build()
    async with Client(server, client_info=types.Implementation(name="pytest-agent", version="1")) as client:
        sub = await _tool(client, "memory_subscribe", {"url": receiver.url(), "secret": SECRET,
                                                       "events": "memory_store", "agent_id": "carol"})
        stored = await _tool(client, "memory_store", {"title": "via mcp", "content": "c", "agent_id": "carol"})
        await receiver.wait_for(1)
        listed = await _tool(client, "memory_list_subscriptions", {"agent_id": "carol"})
        replayed = await _tool(client, "memory_subscription_replay",
                               {"subscription_id": sub["id"], "since": 0, "agent_id": "carol"})
        dlq = await _tool(client, "memory_subscription_dlq_list", {"subscription_id": sub["id"], "agent_id": "carol"})
        removed = await _tool(client, "memory_unsubscribe", {"id": sub["id"], "agent_id": "carol"})
        again = await _tool(client, "memory_unsubscribe", {"id": sub["id"], "agent_id": "carol"})
    assert listed["count"] == 1 and listed["subscriptions"][0]["events"] == "memory_store"
    assert [e["payload"]["memory_id"] for e in replayed["events"]] == [stored["id"]]
    assert replayed["events"][0]["correlation_id"] == receiver.requests[0].body["correlation_id"]
    assert dlq["count"] == 0 and removed["removed"] is True and again["removed"] is False


async def test_a_refused_connection_is_a_network_failure(tmp_path: Path, read_model: str) -> None:
    closed = free_port()  # nothing listens there
    node = await _open(tmp_path / "node", read_model, webhooks=WebhookConfig(retry_backoffs=(0.01, 0.01, 0.01)))
    await node.webhooks.start()
    try:
        async with http(node) as client:
            await subscribe(client, f"http://127.0.0.1:{closed}/hook")
            await store(client, "nobody home")
            await wait_until(lambda: node.webhooks.store.counts().get("dead") == 1)
            (entry,) = (await client.get("/api/v1/subscriptions/dlq")).json()["entries"]
    finally:
        await node.webhooks.stop()
        await node.close()
    assert entry["retry_count"] == 4 and entry["last_error"].startswith("network: ConnectError")
