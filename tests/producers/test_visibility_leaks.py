"""Issue #20, "leaks past the visibility rules": each read path the attack found leaking, pinned over HTTP (and
MCP where the tool exists). Every test checks the leak is closed AND that the reader the rule admits still sees
the memory, so none passes by hiding everything.

The setting: alice's private memory in ``corp/hr/alice``, where the operator requires ``as_agent`` (under
``corp``); a public (collective) memory in ``misc`` that links to it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from producers.http import create_app
from producers.mcp import McpApp, McpHttpEndpoint
from producers.runtime.node import Node
from producers.tools.registry import Profile
from tests.producers.test_cli import run
from tests.producers.test_identity_surfaces import _mcp_post, _sse_json

ADMIN = {"X-AI-Memory-Admin-Token": "op-secret"}
SECRET_TITLE = "Alice salary ledger"


@dataclass
class World:
    node: Node
    http: httpx.AsyncClient
    mcp: McpApp
    hidden: str
    public: str

    async def tool(self, name: str, args: dict[str, Any]) -> tuple[str, bool]:
        return await self.mcp.call(name, {"format": "json", **args})

    async def tool_json(self, name: str, args: dict[str, Any]) -> Any:
        text, is_error = await self.tool(name, args)
        assert not is_error, text
        return json.loads(text)


def as_(agent: str) -> dict[str, str]:
    return {"X-Agent-Id": agent}


async def store(http: httpx.AsyncClient, title: str, namespace: str, scope: str | None, agent: str) -> str:
    body: dict[str, Any] = {"title": title, "content": f"{title}: the numbers", "namespace": namespace}
    if scope is not None:
        body["scope"] = scope
    created = await http.post("/api/v1/memories", json=body, headers=as_(agent))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def leaks(answer: Any, *secrets: str) -> bool:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return any(s in text for s in secrets)


@pytest.fixture
async def world(node: Node, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://test") as c:
        hidden = await store(c, SECRET_TITLE, "corp/hr/alice", "private", "alice")
        public = await store(c, "Public handbook", "misc", "collective", "alice")  # she links it to her secret
        linked = await c.post("/api/v1/links", json={"source_id": public, "target_id": hidden,
                                                      "relation": "derived_from"}, headers=as_("alice"))
        assert linked.status_code == 201, linked.text
        required = await c.post("/api/v1/admin/as_agent_required", json={"prefix": "corp"}, headers=ADMIN)
        assert required.status_code == 200, required.text
        yield World(node, c, McpApp(node, Profile.parse("full")), hidden, public)


async def test_session_start_honours_as_agent_and_the_mandatory_rule(world: World) -> None:
    http = world.http
    named = await http.post("/api/v1/session/start", json={"namespace": "corp/hr/alice"})
    assert named.status_code == 403 and "as_agent is required" in named.json()["error"]
    spanning = (await http.post("/api/v1/session/start", json={})).json()
    assert [m["id"] for m in spanning["memories"]] == [world.public]
    as_bob = (await http.post("/api/v1/session/start", json={"namespace": "corp/hr/alice",
                                                              "as_agent": "corp/hr/bob"})).json()
    assert as_bob["count"] == 0 and not leaks(as_bob, world.hidden, SECRET_TITLE)
    # Alice herself (X-Agent-Id): as_agent passes the mandatory rule, and the owner rule admits her own.
    as_alice = (await http.post("/api/v1/session/start", headers=as_("alice"), json={
        "namespace": "corp/hr/alice", "as_agent": "corp/hr/alice"})).json()
    assert [m["id"] for m in as_alice["memories"]] == [world.hidden]
    text, is_error = await world.tool("memory_session_start", {"namespace": "corp/hr/alice"})
    assert is_error and "as_agent is required" in text
    mcp = await world.tool_json("memory_session_start", {})
    assert [m["id"] for m in mcp["memories"]] == [world.public]
    mcp_alice = await world.tool_json("memory_session_start", {"as_agent": "corp/hr/alice"})
    assert world.hidden in {m["id"] for m in mcp_alice["memories"]}


async def test_the_archive_list_and_stats_apply_visibility(world: World) -> None:
    http = world.http
    for memory_id in (world.hidden, world.public):
        archived = await http.post("/api/v1/archive", json={"ids": [memory_id]}, headers=as_("alice"))  # hers
        assert archived.status_code == 200 and archived.json()["archived"] == [memory_id], archived.text
    listed = (await http.get("/api/v1/archive")).json()
    assert [a["id"] for a in listed["archived"]] == [world.public] and not leaks(listed, SECRET_TITLE)
    named = await http.get("/api/v1/archive?namespace=corp/hr/alice")
    assert named.status_code == 403
    as_bob = (await http.get("/api/v1/archive?as_agent=corp/hr/bob")).json()
    assert not leaks(as_bob, world.hidden, SECRET_TITLE)
    as_alice = (await http.get("/api/v1/archive?as_agent=corp/hr/alice", headers=as_("alice"))).json()
    assert world.hidden in {a["id"] for a in as_alice["archived"]}
    stats = (await http.get("/api/v1/archive/stats")).json()
    assert stats == {"archived_total": 1, "by_namespace": [{"namespace": "misc", "count": 1}]}
    # Offsets count what the reader sees: the second visible item, not the second row.
    assert (await http.get("/api/v1/archive?offset=1")).json()["count"] == 0
    mcp = await world.tool_json("memory_archive_list", {})
    assert [a["id"] for a in mcp["archived"]] == [world.public]
    mcp_alice = await world.tool_json("memory_archive_list", {"as_agent": "corp/hr/alice"})
    assert world.hidden in {a["id"] for a in mcp_alice["archived"]}


async def test_graph_reads_show_nothing_of_a_hidden_memory(world: World) -> None:
    http, hidden, public = world.http, world.hidden, world.public
    answers = {
        "kg_query": (await http.post("/api/v1/kg/query", json={"source_id": public, "max_depth": 3})).json(),
        "timeline": (await http.get(f"/api/v1/kg/timeline?source_id={public}")).json(),
        "lineage": (await http.get(f"/api/v1/memories/{public}/lineage")).json(),
        "links": (await http.get(f"/api/v1/links/{public}")).json(),
        "links of the hidden one": (await http.get(f"/api/v1/links/{hidden}")).json(),
        "mcp kg_query": await world.tool_json("memory_kg_query", {"source_id": public, "max_depth": 3}),
        "mcp kg_timeline": await world.tool_json("memory_kg_timeline", {"source_id": public}),
        "mcp get_links": await world.tool_json("memory_get_links", {"id": public}),
    }
    for name, answer in answers.items():
        assert not leaks(answer, hidden, SECRET_TITLE, "corp/hr"), name
    assert (await http.get(f"/api/v1/memories/{hidden}/lineage")).status_code == 404
    from_it = (await http.post("/api/v1/kg/query", json={"source_id": hidden})).json()
    assert from_it["count"] == 0  # (source_id is the request's own, echoed)
    # The reader the rule admits sees the link, the node and its title.
    seen = (await http.post("/api/v1/kg/query", headers=as_("alice"),
                            json={"source_id": public, "as_agent": "corp/hr/alice"})).json()
    assert [m["target_id"] for m in seen["memories"]] == [hidden]
    timeline = (await http.get(f"/api/v1/kg/timeline?source_id={public}&as_agent=corp/hr/alice",
                               headers=as_("alice"))).json()
    assert [e["title"] for e in timeline["events"]] == [SECRET_TITLE]


async def test_a_link_to_a_memory_the_caller_may_not_read_is_not_found(world: World) -> None:
    """A 201 would tell that the hidden memory exists: the answer is the one a missing id gets. (Its owner's
    link, made before the namespace's as_agent rule, is the fixture's.)"""
    bobs = await store(world.http, "Bob's notes", "misc", "collective", "bob")  # a source bob may link from
    nobody = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    body = {"source_id": bobs, "target_id": world.hidden, "relation": "related_to"}
    refused = await world.http.post("/api/v1/links", json=body, headers=as_("bob"))
    absent = await world.http.post("/api/v1/links", json={**body, "target_id": nobody}, headers=as_("bob"))
    assert (refused.status_code, absent.status_code) == (404, 404), refused.text
    assert refused.json()["error"].replace(world.hidden, "ID") == absent.json()["error"].replace(nobody, "ID")
    # An anonymous caller owns no source: refused for that (403) before the target is looked at, alike.
    body = {**body, "source_id": world.public}
    refused = await world.http.post("/api/v1/links", json=body)
    absent = await world.http.post("/api/v1/links", json={**body, "target_id": nobody})
    assert (refused.status_code, absent.status_code) == (403, 403), refused.text
    assert not leaks(refused.json(), world.hidden) and refused.json()["owner"] == absent.json()["owner"] == "alice"


async def test_export_keeps_no_link_that_touches_a_hidden_memory(world: World) -> None:
    exported = (await world.http.get("/api/v1/export")).json()
    assert [m["id"] for m in exported["memories"]] == [world.public]
    assert exported["links"] == [] and not leaks(exported, world.hidden)
    as_alice = (await world.http.get("/api/v1/export?as_agent=corp/hr/alice", headers=as_("alice"))).json()
    assert [(lk["source_id"], lk["target_id"]) for lk in as_alice["links"]] == [(world.public, world.hidden)]


async def _import(http: httpx.AsyncClient, template: dict[str, Any], memory_id: str, namespace: str) -> None:
    item = {**template, "id": memory_id, "title": f"copy {memory_id}", "namespace": namespace}
    # Imported by its own author: the import re-stamps the author with the importer's id.
    answer = await http.post("/api/v1/import", json={"memories": [item]},
                             headers=as_(str(item["metadata"]["agent_id"])))
    assert answer.status_code == 200 and answer.json()["imported"] == 1, answer.text


async def test_an_ambiguous_prefix_names_only_ids_the_reader_may_see(world: World) -> None:
    http = world.http
    template = (await http.get(f"/api/v1/memories/{world.public}")).json()["memory"]
    prefix = "abcdef00-0000-4000-8000-00000000000"
    await _import(http, {**template, "metadata": {"agent_id": "alice", "scope": "private"}}, prefix + "1",
                  "corp/hr/alice")
    await _import(http, template, prefix + "2", "misc")
    # One visible, one hidden: the prefix resolves to the visible one, as if the other did not exist.
    one = await http.get("/api/v1/memories/abcdef00")
    assert one.status_code == 200 and one.json()["id"] == prefix + "2"
    await _import(http, template, prefix + "3", "misc")
    ambiguous = await http.get("/api/v1/memories/abcdef00")
    assert ambiguous.status_code == 400, ambiguous.text
    error = ambiguous.json()["error"]
    assert "2 matches" in error and prefix + "2" in error and prefix + "3" in error and prefix + "1" not in error
    as_alice = await http.get("/api/v1/memories/abcdef00?as_agent=corp/hr/alice",  # she sees all three
                              headers=as_("alice"))
    assert as_alice.status_code == 400 and "3 matches" in as_alice.json()["error"]


async def test_potential_contradictions_list_only_ids_the_writer_may_see(world: World) -> None:
    http = world.http
    bob = await http.post("/api/v1/memories", headers=as_("bob"), json={
        "title": "Alice salary ledger draft", "content": "x", "namespace": "corp/hr/alice"})
    assert bob.status_code == 201 and "potential_contradictions" not in bob.json()
    # Outside the mandatory subtree, the owner rule (X-Agent-Id): alice's private memory is hers alone.
    mine = await store(http, "Team budget plan", "team", "private", "alice")
    theirs = (await http.post("/api/v1/memories", headers=as_("bob"), json={
        "title": "Team budget plan v2", "content": "y", "namespace": "team"})).json()
    assert mine not in theirs.get("potential_contradictions", [])
    own = (await http.post("/api/v1/memories", headers=as_("alice"), json={
        "title": "Team budget plan v3", "content": "z", "namespace": "team"})).json()
    assert mine in own["potential_contradictions"]


@pytest.mark.parametrize("read_model", ["sqlite", "postgres"], indirect=True)
async def test_x_agent_id_hides_other_agents_private_memories(node: Node) -> None:
    """The original's v0.7.0 #910: a reader known by X-Agent-Id does not see another agent's private memory
    (scope private, or unset), on every read path and both read models; its own and its inbox it does."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://test") as c:
        private = await store(c, "Kestrel design notes", "team", None, "alice")
        shared = await store(c, "Kestrel team notes", "team", "team", "alice")
        sent = await c.post("/api/v1/notify", headers=as_("alice"),
                            json={"target_agent_id": "bob", "title": "Kestrel ping", "payload": "look"})
        assert sent.status_code == 201, sent.text
        reads = ("/api/v1/memories?limit=100", "/api/v1/search?q=Kestrel", "/api/v1/recall?context=Kestrel",
                 "/api/v1/export", "/api/v1/sync/since?clock=", "/api/v1/namespaces", "/api/v1/taxonomy",
                 "/api/v1/stats")
        for path in reads:
            as_bob = (await c.get(path, headers=as_("bob"))).json()
            assert not leaks(as_bob, private, "Kestrel design"), path
            as_alice = (await c.get(path, headers=as_("alice"))).json()
            assert path in ("/api/v1/namespaces", "/api/v1/taxonomy", "/api/v1/stats") or leaks(as_alice, private)
        assert (await c.get(f"/api/v1/memories/{private}", headers=as_("bob"))).status_code == 404
        assert (await c.get(f"/api/v1/memories/{private}", headers=as_("alice"))).status_code == 200
        listed = (await c.get("/api/v1/memories?limit=100", headers=as_("bob"))).json()
        assert shared in {m["id"] for m in listed["memories"]}
        # Bob's inbox holds alice's (private) message: its recipient reads it; carol does not.
        inbox = (await c.get("/api/v1/inbox", headers=as_("bob"))).json()
        assert [m["title"] for m in inbox["messages"]] == ["Kestrel ping"]
        carol = (await c.get("/api/v1/memories?namespace=_messages/bob", headers=as_("carol"))).json()
        assert carol["count"] == 0
        counts = {n["namespace"]: n["count"] for n in
                  (await c.get("/api/v1/namespaces", headers=as_("bob"))).json()["namespaces"]}
        assert counts.get("team") == 1
        bad = await c.get("/api/v1/memories", headers={"X-Agent-Id": "bad agent"})
        assert bad.status_code == 400 and "invalid agent_id" in bad.json()["error"]


def test_the_cli_archive_and_namespaces_follow_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, tmp_path, "store", "-T", SECRET_TITLE, "-c", "x", "-n", "corp/hr/alice",
                       "--scope", "private", "--json")
    assert code == 0
    hidden = json.loads(out)["id"]
    for args in (("forget", "-n", "corp/hr/alice"), ("store", "-T", "Public", "-c", "y", "-n", "misc"),
                 ("store", "-T", "Kept", "-c", "z", "-n", "corp/hr/alice"), ("visibility", "require", "corp")):
        assert run(capsys, tmp_path, *args)[0] == 0, args
    code, out, _ = run(capsys, tmp_path, "namespaces", "--json")
    assert code == 0 and json.loads(out)["namespaces"] == [{"namespace": "misc", "count": 1}]
    code, out, _ = run(capsys, tmp_path, "archive", "list", "--json")
    assert code == 0 and json.loads(out)["count"] == 0 and not leaks(out, hidden, SECRET_TITLE)
    code, out, _ = run(capsys, tmp_path, "archive", "stats", "--json")
    assert code == 0 and json.loads(out) == {"archived_total": 0, "by_namespace": []}
    code, out, _ = run(capsys, tmp_path, "archive", "list", "--as-agent", "corp/hr/alice", "--json")
    assert code == 0 and [a["id"] for a in json.loads(out)["archived"]] == [hidden]


async def test_mcp_over_http_reads_as_the_x_agent_id(node: Node) -> None:
    endpoint = McpHttpEndpoint(node, Profile.parse("full"))
    transport = httpx.ASGITransport(app=create_app(node, mcp=endpoint))
    async with endpoint.running(), httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9077") as http:
        private = await store(http, "Kestrel design notes", "team", None, "alice")

        async def listed(agent: str, tool: str = "memory_list", key: str = "memories") -> set[str]:
            auth = _Header(agent)
            init = await _mcp_post(http, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
                None, auth)
            session = init.headers.get("mcp-session-id")
            await _mcp_post(http, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session, auth)
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": tool, "arguments": {"format": "json"}}}
            answer = _sse_json(await _mcp_post(http, call, session, auth))["result"]
            assert answer["isError"] is False, answer
            return {m["id"] for m in json.loads(answer["content"][0]["text"])[key]}

        assert private not in await listed("bob")
        assert private in await listed("alice")
        # A pending action carries what it would write: listed to its requester, not to another agent.
        await node.governance.set_standard("gated", standard_id=None, parent=None, governance={"write": "approve"},
                                           agent_id="alice")
        held = await http.post("/api/v1/memories", json={"title": "Kestrel budget", "content": "the numbers",
                                                         "namespace": "gated"}, headers={"X-Agent-Id": "alice"})
        assert held.status_code == 202, held.text
        assert await listed("bob", "memory_pending_list", "pending") == set()
        assert await listed("alice", "memory_pending_list", "pending") == {held.json()["pending_id"]}


class _Header(httpx.Auth):
    """Just ``X-Agent-Id`` (an unsigned claim, for an agent without a registered key)."""

    def __init__(self, agent: str) -> None:
        self.agent = agent

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["X-Agent-Id"] = self.agent
        yield request
