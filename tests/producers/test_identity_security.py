"""Identity that cannot be squatted or replayed (issue #20): the nonce memory refuses rather than forgets,
signatures bound to a node, operator-only first key enrollment, and keyed agents' registry entries and inboxes
that only their signed requests reach."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey

from producers.errors import ValidationError
from producers.http import create_app
from producers.identity.agent_client import AgentAuth
from producers.identity.agents import ENROLLMENT_ENV, IdentityService
from producers.identity.attestation import NonceCache, ReplayCacheFullError
from producers.mcp import McpApp, McpHttpEndpoint
from producers.runtime.node import Node, NodeConfig
from producers.tools.registry import Profile
from schemas.request_signing import HEADER_NODE, HEADER_NODE_ID, sign_registration, sign_request

ADMIN = {"X-AI-Memory-Admin-Token": "op-secret"}
NOTE = {"title": "t", "content": "c"}


@pytest.fixture
async def http(node: Node, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)),
                                 base_url="http://test") as c:
        yield c


async def enroll(http: httpx.AsyncClient, agent: str) -> SigningKey:
    key = SigningKey.generate()
    done = await http.post("/api/v1/identity/keys", json=sign_registration(key, agent), headers=ADMIN)
    assert done.status_code == 201, done.text
    return key


def signed_store(key: SigningKey, agent: str, *, node: str = "", nonce: str | None = None,
                 timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({**NOTE, "agent_id": agent}).encode()
    headers = sign_request(key, agent, "POST", "/api/v1/memories", "", raw, nonce=nonce, node=node,
                           timestamp=timestamp)
    return raw, {**headers, "content-type": "application/json"}


# -- the nonce memory ------------------------------------------------------------------------------------------


def test_a_flood_of_other_nonces_never_pushes_out_a_victims_nonce() -> None:
    """The old cache was one 200k FIFO for all agents: 201k nonces of an attacker's own key evicted the victim's,
    and the victim's captured request replayed. Now each agent has its own bound, and a full one refuses."""
    cache, now = NonceCache(), 1_000_000.0
    assert cache.first_use("victim", "victim-nonce", now, now)
    accepted = refused = 0
    for i in range(201_000):
        try:
            accepted += cache.first_use(f"attacker-{i % 3}", f"n{i}", now, now + 1)
        except ReplayCacheFullError:
            refused += 1
    assert accepted == 3 * 50_000 and refused == 201_000 - accepted  # each attacker key: its own bound, refused
    assert not cache.first_use("victim", "victim-nonce", now, now + 180)  # still remembered: a replay
    assert cache.first_use("victim", "fresh-nonce", now + 180, now + 180)  # the victim itself is unaffected


def test_nonces_are_kept_exactly_as_long_as_the_window_accepts_their_timestamp() -> None:
    cache = NonceCache(300)
    assert cache.first_use("a", "n1", 1000, 1100)
    assert not cache.first_use("a", "n1", 1000, 1300)  # ts + 300: the window still accepts it, so still known
    assert cache.first_use("a", "n2", 1290, 1301)  # the clock moved on: n1 (ts 1000) is forgotten ...
    assert len(cache) == 1  # ... and only then; n2 is kept until 1590
    assert cache.first_use("b", "n1", 1300, 1300)  # nonces are per agent


def test_a_full_cache_refuses_with_the_time_until_room() -> None:
    cache = NonceCache(300, per_agent=2, total=3)
    cache.first_use("a", "n1", 1000, 1000)
    cache.first_use("a", "n2", 1010, 1010)
    with pytest.raises(ReplayCacheFullError) as per_agent:
        cache.first_use("a", "n3", 1020, 1020)
    assert per_agent.value.status == 429 and per_agent.value.headers() == {"Retry-After": "280"}
    cache.first_use("b", "n1", 1020, 1020)
    with pytest.raises(ReplayCacheFullError, match="on this node"):
        cache.first_use("c", "n1", 1030, 1030)
    assert cache.first_use("a", "n3", 1301, 1301)  # n1 expired: room again


async def test_a_full_nonce_memory_refuses_instead_of_forgetting(http: httpx.AsyncClient, node: Node) -> None:
    """Over HTTP with a small bound: the attacker's flood is refused (429), and the victim's captured request
    still cannot be replayed."""
    node.identity.verifier.nonces = NonceCache(per_agent=3, total=5)
    victim, attacker = await enroll(http, "victim"), await enroll(http, "mallory")
    raw, captured = signed_store(victim, "victim")
    assert (await http.post("/api/v1/memories", content=raw, headers=captured)).status_code == 201
    answers = [await http.post("/api/v1/memories", json={**NOTE, "title": f"flood {i}", "agent_id": "mallory"},
                               auth=AgentAuth("mallory", attacker)) for i in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    full = answers[-1].json()
    assert full["code"] == "REPLAY_CACHE_FULL" and "mallory" in full["error"]
    assert int(answers[-1].headers["Retry-After"]) > 0
    replay = await http.post("/api/v1/memories", content=raw, headers=captured)
    assert replay.status_code == 401 and "replay" in replay.json()["error"]


async def test_a_restarted_node_refuses_what_was_signed_before_it_started(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The nonce memory lives in the process: a request accepted before a restart must not replay after it."""
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    config = NodeConfig(data_dir=tmp_path / "node", embedder="off")
    first = await Node.open(config)
    await first.start()
    first.identity.verifier.started_at -= 10  # as if it had been up a while
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(first)),
                                     base_url="http://test") as http:
            key = await enroll(http, "alice")
            raw, captured = signed_store(key, "alice", timestamp=int(time.time()) - 2)
            assert (await http.post("/api/v1/memories", content=raw, headers=captured)).status_code == 201
    finally:
        await first.close()
    second = await Node.open(config)
    await second.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(second)),
                                     base_url="http://test") as http:
            replay = await http.post("/api/v1/memories", content=raw, headers=captured)
            assert replay.status_code == 401 and "before this node started" in replay.json()["error"]
            fresh = await http.post("/api/v1/memories", json={**NOTE, "title": "fresh", "agent_id": "alice"},
                                    auth=AgentAuth("alice", key))
            assert fresh.status_code == 201, fresh.text
    finally:
        await second.close()


# -- signatures bound to a node --------------------------------------------------------------------------------


async def test_a_signature_names_its_node_and_no_other_node_accepts_it(http: httpx.AsyncClient, node: Node) -> None:
    key = await enroll(http, "alice")
    this = node.identity.verifier.node_id
    raw, bound = signed_store(key, "alice", node=this)
    assert (await http.post("/api/v1/memories", content=raw, headers=bound)).status_code == 201
    raw, elsewhere = signed_store(key, "alice", node="node-elsewhere")
    refused = await http.post("/api/v1/memories", content=raw, headers=elsewhere)
    assert refused.status_code == 401 and "made for node 'node-elsewhere'" in refused.json()["error"]
    assert refused.headers[HEADER_NODE_ID] == this
    # Altering the node header breaks the signature: the node is signed.
    raw, moved = signed_store(key, "alice", node="node-elsewhere")
    moved[HEADER_NODE] = this
    assert (await http.post("/api/v1/memories", content=raw, headers=moved)).status_code == 401


async def test_a_node_sharing_its_log_requires_bound_signatures(http: httpx.AsyncClient, node: Node) -> None:
    key = await enroll(http, "alice")
    node.identity.verifier.require_node = True  # as on a NATS or Kafka log
    raw, unbound = signed_store(key, "alice")
    refused = await http.post("/api/v1/memories", content=raw, headers=unbound)
    assert refused.status_code == 401 and HEADER_NODE in refused.json()["error"]
    this = refused.headers[HEADER_NODE_ID]
    auth = AgentAuth("alice", key)  # learns the node from the refusal and signs again for it
    done = await http.post("/api/v1/memories", json={**NOTE, "agent_id": "alice"}, auth=auth)
    assert done.status_code == 201 and auth.node == this
    records = await node.log.read(after={}, limit=100)
    attestation = [r.event.envelope.attestation for r in records if r.event.envelope.type == "memory.stored"][-1]
    assert attestation is not None and attestation["node"] == this
    assert (await http.get(f"/api/v1/memories/{done.json()['id']}", auth=auth)).json()["attest_level"] == "self_signed"


async def test_mcp_over_http_names_the_node_too(http: httpx.AsyncClient, node: Node) -> None:
    key = await enroll(http, "alice")
    node.identity.verifier.require_node = True
    endpoint = McpHttpEndpoint(node, Profile.parse("full"))
    auth = AgentAuth("alice", key)
    transport = httpx.ASGITransport(app=create_app(node, mcp=endpoint))
    async with endpoint.running(), httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9077") as mcp:
        init = await mcp.post("/mcp", auth=auth, headers={"Accept": "application/json, text/event-stream",
                                                          "MCP-Protocol-Version": "2025-06-18"},
                              json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                                  "protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "t", "version": "1"}}})
    assert init.status_code == 200, init.text
    assert auth.node == node.identity.verifier.node_id


# -- key enrollment --------------------------------------------------------------------------------------------


async def test_nobody_but_the_operator_enrolls_a_first_key(http: httpx.AsyncClient, node: Node) -> None:
    """Squatting: a proof made with the attacker's own key for an id that had no key used to answer 201."""
    squat = sign_registration(SigningKey.generate(), "alice")
    refused = await http.post("/api/v1/identity/keys", json=squat)
    assert refused.status_code == 403 and "only the operator" in refused.json()["error"]
    wrong = await http.post("/api/v1/identity/keys", json=squat, headers={"X-AI-Memory-Admin-Token": "guess"})
    assert wrong.status_code == 403
    mcp = McpApp(node, Profile.parse("full"))
    text, is_error = await mcp.call("memory_agent_register", {"agent_type": "ai:claude", **squat})
    assert is_error and "only the operator" in text
    assert (await http.get("/api/v1/identity/keys")).json()["count"] == 0
    assert "alice" not in [a["agent_id"] for a in (await http.get("/api/v1/agents")).json()["agents"]]
    # alice is not locked out: her requests are still unsigned claims, and the operator enrolls her key.
    assert (await http.post("/api/v1/memories", json={**NOTE, "agent_id": "alice"})).status_code == 201
    alice = await enroll(http, "alice")
    assert (await http.post("/api/v1/memories", json={**NOTE, "title": "signed", "agent_id": "alice"},
                            auth=AgentAuth("alice", alice))).status_code == 201


async def test_open_enrollment_is_the_operators_choice(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENROLLMENT_ENV, "open")
    assert IdentityService(node.writer, node.identity.queries).enrollment == "open"
    monkeypatch.setenv(ENROLLMENT_ENV, "anyone")
    with pytest.raises(ValidationError, match=ENROLLMENT_ENV):
        IdentityService(node.writer, node.identity.queries)
    node.identity.enrollment = "open"
    body = sign_registration(SigningKey.generate(), "alice")
    key, write = await node.identity.register_key("alice", body["public_key"], body["timestamp"], body["proof"],
                                                  actor="alice", operator=False)
    assert key.agent_id == "alice" and write.positions


# -- what only a keyed agent's signed requests reach -----------------------------------------------------------


async def test_an_unsigned_registration_cannot_overwrite_a_keyed_agents_entry(http: httpx.AsyncClient,
                                                                              node: Node) -> None:
    key = await enroll(http, "kbob")
    auth = AgentAuth("kbob", key)
    mine = {"agent_id": "kbob", "agent_type": "ai:claude-opus-4.7", "capabilities": ["recall"]}
    assert (await http.post("/api/v1/agents", json=mine, auth=auth)).status_code == 201
    forged = await http.post("/api/v1/agents", json={**mine, "agent_type": "human", "capabilities": ["admin"]})
    assert forged.status_code == 401 and "must be signed" in forged.json()["error"]
    (entry,) = [a for a in (await http.get("/api/v1/agents")).json()["agents"] if a["agent_id"] == "kbob"]
    assert entry["agent_type"] == "ai:claude-opus-4.7" and entry["capabilities"] == ["recall"]
    text, is_error = await McpApp(node, Profile.parse("full")).call(
        "memory_agent_register", {"agent_id": "kbob", "agent_type": "human", "capabilities": ["admin"]})
    assert is_error and "must be signed" in text


async def test_a_keyed_agents_inbox_is_read_only_by_its_signed_requests(http: httpx.AsyncClient,
                                                                          node: Node) -> None:
    key = await enroll(http, "kbob")
    sent = await http.post("/api/v1/notify", json={"target_agent_id": "kbob", "title": "secret",
                                                   "payload": "the launch code"}, headers={"X-Agent-Id": "carol"})
    assert sent.status_code == 201, sent.text
    for unsigned in (await http.get("/api/v1/inbox?agent_id=kbob"),
                     await http.get("/api/v1/inbox", headers={"X-Agent-Id": "kbob"})):
        assert unsigned.status_code == 401 and "must be signed" in unsigned.json()["error"]
        assert "launch code" not in unsigned.text
    mine = await http.get("/api/v1/inbox?agent_id=kbob", auth=AgentAuth("kbob", key))
    assert mine.status_code == 200 and [m["payload"] for m in mine.json()["messages"]] == ["the launch code"]
    text, is_error = await McpApp(node, Profile.parse("full")).call("memory_inbox", {"agent_id": "kbob"})
    assert is_error and "must be signed" in text and "launch code" not in text


async def test_a_timestamp_that_is_not_ascii_digits_is_refused_cleanly(http: httpx.AsyncClient) -> None:
    key = await enroll(http, "alice")
    for stamp in ("²³".encode(), b"9" * 5000, f"{int(time.time())}x".encode()):
        raw, headers = signed_store(key, "alice")
        raw_headers = [(k.encode(), v.encode()) for k, v in headers.items() if k != "X-Agent-Timestamp"]
        answer = await http.post("/api/v1/memories", content=raw,
                                 headers=[*raw_headers, (b"X-Agent-Timestamp", stamp)])
        assert answer.status_code == 401 and "bad timestamp" in answer.json()["error"]
