"""Mandatory as_agent, taxonomy and attested identity through HTTP and MCP (stdio-style calls and MCP over
HTTP with the signed-request headers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from producers.http import create_app
from producers.identity.agent_client import AgentAuth
from producers.mcp import McpApp, McpHttpEndpoint
from producers.runtime.node import Node
from producers.tools.registry import Profile
from schemas.request_signing import sign_registration
from tests.conftest import TEST_AGENT

BOTH_READ_MODELS = True
ADMIN = {"X-AI-Memory-Admin-Token": "op-secret"}


@pytest.fixture
async def http(node: Node, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://test",
                                 headers={"X-Agent-Id": TEST_AGENT}) as c:
        yield c


async def store(http: httpx.AsyncClient, title: str, namespace: str, scope: str | None = None) -> str:
    body: dict[str, Any] = {"title": title, "content": f"{title} notes", "namespace": namespace}
    if scope:
        body["scope"] = scope
    created = await http.post("/api/v1/memories", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_mandatory_as_agent_over_http(http: httpx.AsyncClient) -> None:
    secret = await store(http, "s", "corp/hr/alice", "team")
    public = await store(http, "p", "misc", "collective")
    refused = await http.post("/api/v1/admin/as_agent_required", json={"prefix": "corp/hr"})
    assert refused.status_code == 403
    done = await http.post("/api/v1/admin/as_agent_required", json={"prefix": "corp/hr"}, headers=ADMIN)
    assert done.status_code == 200 and done.json()["required"] is True
    assert (await http.get("/api/v1/admin/as_agent_required")).json()["prefixes"] == ["corp/hr"]
    # Naming the namespace without as_agent: a clear 403.
    for path in ("/api/v1/memories?namespace=corp/hr/alice", f"/api/v1/memories/{secret}",
                 "/api/v1/search?q=notes&namespace=corp/hr", "/api/v1/recall?context=notes&namespace=corp/hr/alice",
                 "/api/v1/taxonomy?prefix=corp/hr"):
        answer = await http.get(path)
        assert answer.status_code == 403, path
        assert "as_agent is required" in answer.json()["error"]
    # Spanning namespaces without as_agent: those memories are left out.
    listed = (await http.get("/api/v1/memories")).json()
    assert [m["id"] for m in listed["memories"]] == [public]
    exported = (await http.get("/api/v1/export")).json()
    assert [m["id"] for m in exported["memories"]] == [public]
    since = (await http.get("/api/v1/sync/since?clock=")).json()
    assert [m["id"] for m in since["memories"]] == [public]
    names = (await http.get("/api/v1/namespaces")).json()["namespaces"]
    assert names == [{"namespace": "misc", "count": 1}]
    as_bob = (await http.get("/api/v1/namespaces?as_agent=corp/hr/bob")).json()["namespaces"]
    assert {n["namespace"] for n in as_bob} == {"misc", "corp/hr/alice"}
    # Stats name namespaces too: the same rule for by_namespace (the totals stay the node's).
    stats = (await http.get("/api/v1/stats")).json()
    assert stats["by_namespace"] == [{"namespace": "misc", "count": 1}] and stats["total"] == 2
    stats_bob = (await http.get("/api/v1/stats?as_agent=corp/hr/bob")).json()["by_namespace"]
    assert {n["namespace"] for n in stats_bob} == {"misc", "corp/hr/alice"}
    stats_it = (await http.get("/api/v1/stats?as_agent=corp/it/bob")).json()["by_namespace"]
    assert stats_it == [{"namespace": "misc", "count": 1}]
    # With as_agent, the scope rule decides: a team memory is visible from a sibling namespace.
    sibling = await http.get(f"/api/v1/memories/{secret}?as_agent=corp/hr/bob")
    assert sibling.status_code == 200 and sibling.json()["id"] == secret
    assert (await http.get(f"/api/v1/memories/{secret}?as_agent=corp/it/bob")).status_code == 404
    assert (await http.get("/api/v1/memories?namespace=corp/hr/alice&as_agent=corp/hr/bob")).json()["count"] == 1
    lifted = await http.post("/api/v1/admin/as_agent_required", json={"prefix": "corp/hr", "required": False},
                             headers=ADMIN)
    assert lifted.status_code == 200
    assert (await http.get(f"/api/v1/memories/{secret}")).status_code == 200


async def test_taxonomy_route_counts_what_the_caller_may_see(http: httpx.AsyncClient) -> None:
    await store(http, "a1", "org/eng/alice", "private")
    await store(http, "a2", "org/eng/alice", "team")
    await store(http, "b1", "org/eng/bob", "private")
    await store(http, "s1", "org/sales", "collective")
    full = (await http.get("/api/v1/taxonomy")).json()
    assert full["total_count"] == 4 and full["tree"]["children"][0]["subtree_count"] == 4
    eng = (await http.get("/api/v1/taxonomy?prefix=org/eng&depth=1")).json()
    assert eng["tree"]["namespace"] == "org/eng" and eng["tree"]["subtree_count"] == 3
    assert [(c["name"], c["count"]) for c in eng["tree"]["children"]] == [("alice", 2), ("bob", 1)]
    as_bob = (await http.get("/api/v1/taxonomy?as_agent=org/eng/bob")).json()
    assert as_bob["total_count"] == 3  # bob's own, alice's team memory, the collective one; not alice's private
    limited = (await http.get("/api/v1/taxonomy?limit=1")).json()
    assert limited["truncated"] is True and limited["tree"]["subtree_count"] == 2
    assert (await http.get("/api/v1/taxonomy?depth=x")).status_code == 400


def _text(answer: tuple[str, bool]) -> Any:
    text, is_error = answer
    assert not is_error, text
    return json.loads(text)


async def test_mcp_tools_apply_visibility_and_refuse_keyed_claims(node: Node) -> None:
    app = McpApp(node, Profile.parse("full"))
    stored = _text(await app.call("memory_store", {"title": "t", "content": "c", "namespace": "corp/hr/alice",
                                                   "scope": "private", "agent_id": "alice"}))
    await node.identity.set_as_agent_required("corp/hr", True, actor="operator:test")
    text, is_error = await app.call("memory_list", {"namespace": "corp/hr/alice", "format": "json"})
    assert is_error and "as_agent is required" in text
    text, is_error = await app.call("memory_get", {"id": stored["id"]})
    assert is_error and "as_agent is required" in text
    assert _text(await app.call("memory_get", {"id": stored["id"], "as_agent": "corp/hr/alice"}))["id"] == stored["id"]
    text, is_error = await app.call("memory_get", {"id": stored["id"], "as_agent": "corp/hr/bob"})
    assert is_error and text == "memory not found"
    tree = _text(await app.call("memory_get_taxonomy", {"as_agent": "corp/hr/alice"}))
    assert tree["total_count"] == 1
    # memory_agent_register with a key: MCP carries no operator credential, so only where enrollment is open;
    # afterwards a plain (stdio-like) call cannot claim alice.
    key = SigningKey.generate()
    text, is_error = await app.call("memory_agent_register", {"agent_type": "ai:claude", **sign_registration(
        key, "alice")})
    assert is_error and "only the operator enrolls" in text
    node.identity.enrollment = "open"
    registered = _text(await app.call("memory_agent_register", {"agent_type": "ai:claude", **sign_registration(
        key, "alice")}))
    assert registered["key"]["agent_id"] == "alice"
    text, is_error = await app.call("memory_store", {"title": "u", "content": "c", "agent_id": "alice"})
    assert is_error and "must be signed" in text


async def _mcp_post(http: httpx.AsyncClient, body: dict[str, Any], session: str | None,
                    auth: httpx.Auth | None) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    if session:
        headers["mcp-session-id"] = session
    return await http.post("/mcp", json=body, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT)


def _sse_json(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    return json.loads(data[-1])


async def test_mcp_over_http_uses_the_signed_request_headers(node: Node) -> None:
    key = SigningKey.generate()
    await node.identity.register_key("alice", **_registration(key), actor="alice", operator=True)
    endpoint = McpHttpEndpoint(node, Profile.parse("full"))
    auth = AgentAuth("alice", key)
    transport = httpx.ASGITransport(app=create_app(node, mcp=endpoint))
    async with endpoint.running(), httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9077") as http:
        init = await _mcp_post(http, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
            None, auth)
        assert init.status_code == 200, init.text
        session = init.headers.get("mcp-session-id")
        await _mcp_post(http, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session, auth)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "memory_store", "arguments": {"title": "via mcp", "content": "c", "agent_id": "alice"}}}
        unsigned = _sse_json(await _mcp_post(http, call, session, None))
        assert unsigned["result"]["isError"] is True and "must be signed" in unsigned["result"]["content"][0]["text"]
        signed = _sse_json(await _mcp_post(http, {**call, "id": 3}, session, auth))
        assert signed["result"]["isError"] is False, signed
        memory_id = json.loads(signed["result"]["content"][0]["text"])["id"]
        forged = await _mcp_post(http, {**call, "id": 4}, session, AgentAuth("alice", SigningKey.generate()))
        assert forged.status_code == 401
    memory = await node.service.get(memory_id)
    assert memory.metadata["attest_level"] == "self_signed"


def _registration(key: SigningKey) -> dict[str, Any]:
    body = sign_registration(key, "alice")
    return {"public_key": body["public_key"], "timestamp": body["timestamp"], "proof": body["proof"]}
