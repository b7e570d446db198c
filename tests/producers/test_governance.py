"""Governance through the HTTP API and MCP, on a SQLite and a Postgres read model: namespace standards and
inheritance, each level (any, registered, owner, approve) and approver (human, agent, consensus), modes,
quotas, the HMAC approval API, expiry, remembered decisions and the approval feed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
import uvicorn
from mcp import Client

from infra.cluster.process import free_port
from producers.cli.main import main as cli_main
from producers.errors import ForbiddenError
from producers.governance import GovernanceConfig
from producers.http import create_app
from producers.http.governance import approval_events, approval_signature
from producers.input.commands import parse_update
from producers.mcp import McpApp
from producers.runtime.node import Node, NodeConfig
from producers.tools.registry import Profile

BOTH_READ_MODELS = True
SECRET = "approval-secret"


@pytest.fixture
def gov_config(request: pytest.FixtureRequest) -> GovernanceConfig:
    config: GovernanceConfig = getattr(request, "param", GovernanceConfig(mode="enforce", hmac_secret=SECRET))
    return config


@pytest.fixture
async def node(tmp_path: Path, read_model: str, gov_config: GovernanceConfig) -> AsyncIterator[Node]:
    n = await Node.open(NodeConfig(data_dir=tmp_path / "node", read_model_url=read_model, embedder="off",
                                   governance=gov_config))
    await n.start()
    yield n
    await n.close()


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def store(client: httpx.AsyncClient, agent: str, title: str, namespace: str, **extra: Any) -> httpx.Response:
    body = {"title": title, "content": f"content of {title}", "namespace": namespace, **extra}
    return await client.post("/api/v1/memories", json=body, headers={"X-Agent-Id": agent})


async def govern(client: httpx.AsyncClient, namespace: str, owner: str, **policy: Any) -> dict[str, Any]:
    r = await client.post(f"/api/v1/namespaces/{namespace}/standard", json={"governance": policy},
                          headers={"X-Agent-Id": owner})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def register(client: httpx.AsyncClient, agent: str) -> None:
    r = await client.post("/api/v1/agents", json={"agent_id": agent, "agent_type": "ai:claude-opus-4.7"})
    assert r.status_code == 201, r.text


def as_agent(agent: str) -> dict[str, str]:
    return {"X-Agent-Id": agent}


# -- standards and inheritance --------------------------------------------------------------------------------


async def test_standard_set_get_clear_and_inheritance(client: httpx.AsyncClient) -> None:
    set_body = await govern(client, "org", "alice", write="registered")
    assert set_body["set"] and set_body["namespace"] == "org" and set_body["governance"] == {"write": "registered"}
    got = (await client.get("/api/v1/namespaces", params={"namespace": "org"})).json()
    assert got["standard_id"] == set_body["standard_id"]
    assert got["governance"] == {"write": "registered", "promote": "any", "delete": "owner", "approver": "human",
                                 "inherit": True}
    chain = (await client.get("/api/v1/namespaces/org/team/standard", params={"inherit": "true"})).json()
    assert chain["chain"] == ["*", "org", "org/team"] and chain["count"] == 1
    # inherited: org/team has no policy of its own, org's gates it
    assert (await store(client, "bob", "t1", "org/team")).status_code == 403
    # the nearest policy governs: org/team's own (inherit: false) lets anyone write
    await govern(client, "org/team", "alice", write="any", inherit=False)
    assert (await store(client, "bob", "t2", "org/team")).status_code == 201
    # only the owner of a governed standard may change or clear it (beyond the original)
    denied = await client.delete("/api/v1/namespaces/org/standard", headers=as_agent("bob"))
    assert denied.status_code == 403
    cleared = await client.delete("/api/v1/namespaces", params={"namespace": "org"}, headers=as_agent("alice"))
    assert cleared.json()["cleared"] is True
    assert (await client.get("/api/v1/namespaces/org/standard")).json() == {"namespace": "org", "standard_id": None}
    assert (await store(client, "bob", "t3", "org")).status_code == 201


async def test_policies_cannot_be_lifted_by_others(client: httpx.AsyncClient, node: Node) -> None:
    std = (await govern(client, "locked", "alice", write="any", delete="any"))["standard_id"]
    # a laxer policy on a child would shadow alice's: refused (beyond the original)
    r = await client.post("/api/v1/namespaces/locked/sub/standard", json={"governance": {"write": "any"}},
                          headers=as_agent("bob"))
    assert r.status_code == 403 and "not the owner ('alice')" in r.json()["error"]
    # the standard memory holds the policy: only its owner may rewrite or delete it
    rewrite = await client.put(f"/api/v1/memories/{std}", json={"metadata": {}}, headers=as_agent("bob"))
    assert rewrite.status_code == 404  # over HTTP: bob may not even read alice's (private) standard, as its GET
    assert (await client.delete(f"/api/v1/memories/{std}", headers=as_agent("bob"))).status_code == 404
    with pytest.raises(ForbiddenError, match="is a namespace standard"):  # governance's, on every surface
        await node.service.update(std, parse_update({"metadata": {}}), agent_id="bob")
    assert (await client.post("/api/v1/namespaces/locked/sub/standard", json={"governance": {"write": "owner"}},
                              headers=as_agent("alice"))).status_code == 201


async def test_explicit_parent_is_inherited(client: httpx.AsyncClient) -> None:
    await govern(client, "acme", "alice", write="registered")
    r = await client.post("/api/v1/namespaces", json={"namespace": "widgets", "parent": "acme"},
                          headers=as_agent("alice"))
    assert r.status_code == 201 and r.json()["parent"] == "acme"
    chain = (await client.get("/api/v1/namespaces/widgets/sub/standard", params={"inherit": "true"})).json()
    assert chain["chain"] == ["*", "acme", "widgets", "widgets/sub"]
    assert (await store(client, "bob", "w", "widgets/sub")).status_code == 403


async def test_invalid_policies_are_refused(client: httpx.AsyncClient) -> None:
    for policy, fragment in (({"write": "sometimes"}, "unknown variant"), ({"promote": "any"}, "missing field"),
                             ({"write": "approve", "approver": {"consensus": 0}}, "must be >= 1")):
        r = await client.post("/api/v1/namespaces/x/standard", json={"governance": policy})
        assert r.status_code == 400 and fragment in r.json()["error"]


# -- levels ---------------------------------------------------------------------------------------------------


async def test_registered_level(client: httpx.AsyncClient) -> None:
    await govern(client, "reg", "alice", write="registered")
    r = await store(client, "bob", "x", "reg")
    assert r.status_code == 403
    assert r.json()["error"] == "store denied by governance: governance: caller 'bob' is not a registered agent"
    await register(client, "bob")
    assert (await store(client, "bob", "x", "reg")).status_code == 201
    agents = (await client.get("/api/v1/agents")).json()
    assert agents["count"] == 1 and agents["agents"][0]["agent_id"] == "bob"


async def test_owner_level_for_store_delete_and_update(client: httpx.AsyncClient, node: Node) -> None:
    await govern(client, "own", "alice", write="owner")
    assert (await store(client, "bob", "b", "own")).status_code == 403
    mine = await store(client, "alice", "a", "own")
    assert mine.status_code == 201
    memory_id = mine.json()["id"]
    # Over HTTP bob may not even read alice's private memory: 404, as its GET (and 403 were it visible).
    assert (await client.delete(f"/api/v1/memories/{memory_id}", headers=as_agent("bob"))).status_code == 404
    assert (await client.put(f"/api/v1/memories/{memory_id}", json={"content": "x"},
                             headers=as_agent("bob"))).status_code == 404
    # Governance's own rule, on every surface: delete defaults to owner, the memory's author.
    with pytest.raises(ForbiddenError, match="delete denied by governance"):
        await node.service.delete(memory_id, agent_id="bob")
    with pytest.raises(ForbiddenError, match="update denied by governance"):
        await node.service.update(memory_id, parse_update({"content": "x"}), agent_id="bob")
    assert (await client.delete(f"/api/v1/memories/{memory_id}", headers=as_agent("alice"))).status_code == 200


async def test_required_scope(client: httpx.AsyncClient) -> None:
    await govern(client, "teamspace", "alice", write="any", required_scope="team")
    assert (await store(client, "bob", "p", "teamspace")).status_code == 403
    assert (await store(client, "bob", "t", "teamspace", scope="team")).status_code == 201


async def test_forget_refused_where_deletes_are_gated(client: httpx.AsyncClient) -> None:
    await govern(client, "keep", "alice", write="any")
    await store(client, "bob", "k", "keep")
    r = await client.post("/api/v1/forget", json={"namespace": "keep"}, headers=as_agent("bob"))
    assert r.status_code == 403 and "forget denied by governance" in r.json()["error"]


# -- approvals ------------------------------------------------------------------------------------------------


async def test_a_pending_action_is_listed_to_those_who_may_see_it(client: httpx.AsyncClient,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What a request would write is listed to its requester, an operator (``host:``, the token) and whoever the
    policy lets decide it; not to other agents or anonymous callers (the original's #958 rule, plus deciders)."""
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    await govern(client, "hushed", "alice", write="approve")  # a human decides
    await govern(client, "judged", "alice", write="approve", approver={"agent": "judge"})
    await govern(client, "council", "alice", write="approve", approver={"consensus": 2})
    await register(client, "voter")
    ids = {ns: (await store(client, "bob", f"secret plan {ns}", ns)).json()["pending_id"]
           for ns in ("hushed", "judged", "council")}

    async def listed(headers: dict[str, str]) -> set[str]:
        r = await client.get("/api/v1/pending", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["count"] == len(r.json()["pending"])
        return {p["id"] for p in r.json()["pending"]}

    everything = set(ids.values())
    assert await listed({}) == set() and await listed(as_agent("carol")) == set()
    assert await listed(as_agent("bob")) == everything and await listed(as_agent("host:ops")) == everything
    assert await listed({"X-AI-Memory-Admin-Token": "op-secret"}) == everything
    assert await listed(as_agent("judge")) == {ids["judged"]}
    assert await listed(as_agent("voter")) == {ids["council"]}
    wrong = await client.get("/api/v1/pending", headers={"X-AI-Memory-Admin-Token": "guess"})
    assert wrong.status_code == 403
    page = await client.get("/api/v1/pending", params={"limit": 1}, headers=as_agent("judge"))
    assert [p["id"] for p in page.json()["pending"]] == [ids["judged"]]  # the limit counts what is shown


async def test_approve_human_store(client: httpx.AsyncClient) -> None:
    await govern(client, "gated", "alice", write="approve")
    r = await store(client, "bob", "needs review", "gated")
    assert r.status_code == 202
    pending = r.json()
    assert pending["status"] == "pending" and pending["action"] == "store" and pending["namespace"] == "gated"
    listed = (await client.get("/api/v1/pending", params={"status": "pending"}, headers=as_agent("bob"))).json()
    assert listed["count"] == 1 and listed["pending"][0]["id"] == pending["pending_id"]
    assert listed["pending"][0]["payload"]["title"] == "needs review"
    # Memories without a scope are private: each is read as its author (alice set the standard, bob stored).
    standard = (await client.get("/api/v1/memories", params={"namespace": "gated"}, headers=as_agent("alice"))).json()
    assert standard["count"] == 1
    own = await client.post(f"/api/v1/pending/{pending['pending_id']}/approve", headers=as_agent("bob"))
    assert own.status_code == 403  # a requester cannot approve its own request
    ok = await client.post(f"/api/v1/pending/{pending['pending_id']}/approve", headers=as_agent("carol"))
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["approved"] and body["executed"] and body["decided_by"] == "carol"
    stored = (await client.get(f"/api/v1/memories/{body['memory_id']}", headers=as_agent("bob"))).json()
    assert stored["title"] == "needs review" and stored["metadata"]["agent_id"] == "bob"
    again = await client.post(f"/api/v1/pending/{pending['pending_id']}/approve", headers=as_agent("carol"))
    assert again.status_code == 403 and "already decided: status=approved" in again.json()["error"]


async def test_reject_and_named_agent_approver(client: httpx.AsyncClient) -> None:
    await govern(client, "named", "alice", write="any", delete="approve", approver={"agent": "judge"})
    memory_id = (await store(client, "bob", "m", "named")).json()["id"]
    r = await client.delete(f"/api/v1/memories/{memory_id}", headers=as_agent("bob"))
    assert r.status_code == 202
    pending_id = r.json()["pending_id"]
    wrong = await client.post(f"/api/v1/pending/{pending_id}/approve", headers=as_agent("carol"))
    assert wrong.status_code == 403 and "designated approver is 'judge'" in wrong.json()["error"]
    rejected = await client.post(f"/api/v1/pending/{pending_id}/reject", headers=as_agent("judge"))
    assert rejected.json() == {"rejected": True, "id": pending_id, "decided_by": "judge", "remember": "once",
                               **{k: rejected.json()[k] for k in ("offset", "log_clock")}}
    assert (await client.get(f"/api/v1/memories/{memory_id}", headers=as_agent("bob"))).status_code == 200  # kept
    gone = await client.post(f"/api/v1/pending/{pending_id}/reject", headers=as_agent("judge"))
    assert gone.status_code == 404
    # a second request, approved by the judge: the delete happens with the decision
    pending_id = (await client.delete(f"/api/v1/memories/{memory_id}", headers=as_agent("bob"))).json()["pending_id"]
    ok = await client.post(f"/api/v1/pending/{pending_id}/approve", headers=as_agent("judge"))
    assert ok.status_code == 200 and ok.json()["memory_id"] == memory_id
    assert (await client.get(f"/api/v1/memories/{memory_id}", headers=as_agent("bob"))).status_code == 404


async def test_consensus_of_registered_agents(client: httpx.AsyncClient) -> None:
    await govern(client, "council", "alice", write="any", promote="approve", approver={"consensus": 2})
    memory_id = (await store(client, "bob", "m", "council", tier="short")).json()["id"]
    pending_id = (await client.post(f"/api/v1/memories/{memory_id}/promote",
                                    headers=as_agent("bob"))).json()["pending_id"]
    for agent in ("Voter-1", "voter-2"):
        await register(client, agent)
    outsider = await client.post(f"/api/v1/pending/{pending_id}/approve", headers=as_agent("stranger"))
    assert outsider.status_code == 403 and "not a registered agent" in outsider.json()["error"]
    first = await client.post(f"/api/v1/pending/{pending_id}/approve", headers=as_agent("Voter-1"))
    assert first.status_code == 202 and first.json()["votes"] == 1 and first.json()["quorum"] == 2
    # the same voter, spelled differently, is one vote
    await register(client, "VOTER-1")
    dup = await client.post(f"/api/v1/pending/{pending_id}/approve", headers=as_agent("VOTER-1"))
    assert dup.status_code == 202 and dup.json()["votes"] == 1
    second = await client.post(f"/api/v1/pending/{pending_id}/approve", headers=as_agent("voter-2"))
    assert second.status_code == 200 and second.json()["executed"]
    assert (await client.get(f"/api/v1/memories/{memory_id}", headers=as_agent("bob"))).json()["tier"] == "long"
    decided = (await client.get("/api/v1/pending", params={"status": "approved"},
                                headers=as_agent("voter-2"))).json()["pending"][0]  # a voter of the consensus
    assert [a["agent_id"] for a in decided["approvals"]] == ["voter-1", "voter-2"]


async def test_remember_forever_decides_the_next_request(client: httpx.AsyncClient, node: Node) -> None:
    await govern(client, "rem", "alice", write="approve")
    first = (await store(client, "bob", "one", "rem")).json()["pending_id"]
    decision = await node.governance.approve(first, agent_id="carol", remember="forever")
    assert decision.body["remember"] == "forever"
    assert (await store(client, "bob", "two", "rem")).status_code == 201  # approved from now on
    assert (await store(client, "dave", "three", "rem")).status_code == 202  # another requester still waits


async def test_expiry_sweeper(node: Node, client: httpx.AsyncClient) -> None:
    await govern(client, "slow", "alice", write="approve")
    pending_id = (await store(client, "bob", "x", "slow")).json()["pending_id"]
    assert await node.governance.expire_due() == 0
    later = node.governance.queries.pending(pending_id)
    assert later is not None and later.status == "pending" and later.expires_at > later.requested_at


@pytest.mark.parametrize("gov_config", [GovernanceConfig(mode="enforce", pending_timeout_secs=0)], indirect=True)
async def test_expired_requests_cannot_be_approved(node: Node, client: httpx.AsyncClient) -> None:
    await govern(client, "slow", "alice", write="approve")
    pending_id = (await store(client, "bob", "x", "slow")).json()["pending_id"]
    await asyncio.sleep(0.01)
    assert await node.governance.expire_due() == 1
    expired = (await client.get("/api/v1/pending", params={"status": "expired"}, headers=as_agent("bob"))).json()
    assert expired["count"] == 1 and expired["pending"][0]["id"] == pending_id
    late = await client.post(f"/api/v1/pending/{pending_id}/approve", headers=as_agent("carol"))
    assert late.status_code == 403 and "status=expired" in late.json()["error"]


# -- modes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gov_config", [GovernanceConfig(mode="advisory"), GovernanceConfig(mode="off")],
                         indirect=True, ids=["advisory", "off"])
async def test_advisory_and_off_allow(client: httpx.AsyncClient, node: Node) -> None:
    await govern(client, "soft", "alice", write="approve", delete="owner")
    r = await store(client, "bob", "x", "soft")
    assert r.status_code == 201
    # Over HTTP only its owner changes a memory whatever the mode (the original's rule; carol may not even read
    # bob's private memory: 404, as its GET); governance's own
    # ``delete: owner`` is what the mode relaxes, for every surface (here the service, as MCP calls it).
    assert (await client.delete(f"/api/v1/memories/{r.json()['id']}", headers=as_agent("carol"))).status_code == 404
    await node.service.delete(r.json()["id"], agent_id="carol")
    assert (await client.get(f"/api/v1/memories/{r.json()['id']}", headers=as_agent("bob"))).status_code == 404


# -- quotas ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gov_config", [GovernanceConfig(max_memories_per_day=2)], indirect=True)
async def test_quota_exceeded(client: httpx.AsyncClient, node: Node) -> None:
    for n in range(2):
        assert (await store(client, "bob", f"m{n}", "q")).status_code == 201
    r = await store(client, "bob", "m2", "q")
    assert r.status_code == 429
    assert r.json()["error"] == "QUOTA_EXCEEDED: agent bob hit memories_per_day (current=2, max=2)"
    assert (await store(client, "carol", "c", "q")).status_code == 201  # quotas are per agent
    status = await node.governance.quota_status("bob")
    assert status["quota"]["current_memories_today"] == 2 and status["quota"]["max_memories_per_day"] == 2
    # bulk is an operator path (as in the original): charged, never refused
    bulk = await client.post("/api/v1/memories/bulk", json=[{"title": "b", "content": "c"}],
                             headers=as_agent("bob"))
    assert bulk.status_code == 200 and bulk.json()["created"] == 1
    assert (await node.governance.quota_status("bob"))["quota"]["current_memories_today"] == 3


@pytest.mark.parametrize("gov_config", [GovernanceConfig(max_links_per_day=1)], indirect=True)
async def test_links_per_day_quota(client: httpx.AsyncClient) -> None:
    ids = [(await store(client, "bob", f"l{n}", "q")).json()["id"] for n in range(3)]
    first = await client.post("/api/v1/links", json={"source_id": ids[0], "target_id": ids[1]},
                              headers=as_agent("bob"))
    assert first.status_code == 201
    second = await client.post("/api/v1/links", json={"source_id": ids[1], "target_id": ids[2]},
                               headers=as_agent("bob"))
    assert second.status_code == 429
    assert second.json()["error"] == "QUOTA_EXCEEDED: agent bob hit links_per_day (current=1, max=1)"
    own = [(await store(client, "carol", f"c{n}", "q")).json()["id"] for n in range(2)]  # bob's are private
    other = await client.post("/api/v1/links", json={"source_id": own[0], "target_id": own[1]},
                              headers=as_agent("carol"))
    assert other.status_code == 201


@pytest.mark.parametrize("gov_config", [GovernanceConfig(max_storage_bytes=200)], indirect=True)
async def test_storage_quota(client: httpx.AsyncClient) -> None:
    assert (await store(client, "bob", "small", "q")).status_code == 201
    r = await store(client, "bob", "big", "q", content="x" * 300)
    assert r.status_code == 429 and "storage_bytes" in r.json()["error"]


# -- the HMAC approval API and its feed -----------------------------------------------------------------------


def signed(body: dict[str, Any], pending_id: str, *, secret: str = SECRET, ts: int | None = None,
           approver: str = "carol") -> tuple[bytes, dict[str, str]]:
    """An approval signed as the HMAC API requires: ``<ts>.POST.<pending_id>@<approver>.<body>``."""
    raw = json.dumps(body).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    headers = {"X-AI-Memory-Timestamp": stamp, "content-type": "application/json",
               "X-AI-Memory-Signature": approval_signature(secret, stamp, pending_id, approver, raw)}
    return raw, {**headers, "X-Agent-Id": approver} if approver else headers


async def test_hmac_approval_api(client: httpx.AsyncClient) -> None:
    await govern(client, "hm", "alice", write="approve")
    pending_id = (await store(client, "bob", "x", "hm")).json()["pending_id"]
    url = f"/api/v1/approvals/{pending_id}"
    # Well outside the window (300 s old, 60 s ahead): the requests reach the node a while after they are signed
    # on a loaded machine, and the exact bounds are checked with a fixed clock in test_approval_auth.
    for raw, headers in (signed({"decision": "approve"}, pending_id, secret="wrong"),
                         signed({"decision": "approve"}, pending_id, ts=int(time.time()) - 330),
                         signed({"decision": "approve"}, pending_id, ts=int(time.time()) + 90)):
        r = await client.post(url, content=raw, headers=headers)
        assert r.status_code == 401 and r.json() == {"error": "invalid or missing X-AI-Memory-Signature"}
    assert (await client.post(url, json={"decision": "approve"})).status_code == 401
    raw, headers = signed({"decision": "approve", "remember": "once"}, pending_id)
    tampered = await client.post(url, content=raw.replace(b"approve", b"deny!!!"), headers=headers)
    assert tampered.status_code == 401
    ok = await client.post(url, content=raw, headers=headers)
    assert ok.status_code == 200 and ok.json()["approved"] and ok.json()["decided_by"] == "carol"


async def test_an_approval_hmac_is_bound_to_its_pending_action_and_approver(client: httpx.AsyncClient) -> None:
    """The HMAC used to cover only "<ts>.<body>": a signed approval of A, replayed to B, decided B."""
    await govern(client, "hb", "alice", write="approve")
    a, b = [(await store(client, "bob", title, "hb")).json()["pending_id"] for title in ("a", "b")]
    raw, for_a = signed({"decision": "approve"}, a)
    moved = await client.post(f"/api/v1/approvals/{b}", content=raw, headers=for_a)
    assert moved.status_code == 401 and moved.json() == {"error": "invalid or missing X-AI-Memory-Signature"}
    as_other = await client.post(f"/api/v1/approvals/{a}", content=raw, headers={**for_a, "X-Agent-Id": "dave"})
    assert as_other.status_code == 401  # the approver is signed too: no second voter from one signature
    assert (await client.post(f"/api/v1/approvals/{a}", content=raw, headers=for_a)).status_code == 200
    again = await client.post(f"/api/v1/approvals/{a}", content=raw, headers=for_a)
    assert again.status_code == 401  # each signature is accepted once
    listed = await client.get("/api/v1/pending", headers=as_agent("host:ops"))  # an operator sees every request
    pending = {p["id"]: p["status"] for p in listed.json()["pending"]}
    assert pending == {a: "approved", b: "pending"}
    # The original's canonical "<ts>.POST.<pending_id>.<body>" holds too, with or without X-Agent-Id (its
    # clients sign it when they name the approver), still bound to the pending action.
    raw, unnamed = signed({"decision": "deny"}, b, approver="")
    assert (await client.post(f"/api/v1/approvals/{a}", content=raw, headers=unnamed)).status_code == 401
    denied = await client.post(f"/api/v1/approvals/{b}", content=raw, headers={**unnamed, "X-Agent-Id": "carol"})
    assert denied.status_code == 200 and denied.json()["decided_by"] == "carol"
    c = (await store(client, "bob", "c", "hb")).json()["pending_id"]
    raw, unnamed = signed({"decision": "deny"}, c, approver="")
    denied = await client.post(f"/api/v1/approvals/{c}", content=raw, headers=unnamed)
    assert denied.status_code == 200 and denied.json()["decided_by"].startswith("anonymous:")


@pytest.mark.parametrize("gov_config", [GovernanceConfig(hmac_secret=None)], indirect=True)
async def test_hmac_without_a_secret_refuses_everything(client: httpx.AsyncClient) -> None:
    raw, headers = signed({"decision": "approve"}, "x")
    assert (await client.post("/api/v1/approvals/x", content=raw, headers=headers)).status_code == 401


async def test_approval_feed(node: Node, client: httpx.AsyncClient) -> None:
    await govern(client, "feed", "alice", write="approve")
    seen: list[tuple[str, dict[str, Any]]] = []

    async def watch(agent: str) -> None:
        async for item in approval_events(node, agent):
            seen.append(item)
            if len(seen) == 2:
                return

    watcher = asyncio.create_task(watch("bob"))
    await asyncio.sleep(0.1)
    pending_id = (await store(client, "bob", "x", "feed")).json()["pending_id"]
    await store(client, "dave", "y", "feed")  # not bob's: not in bob's feed
    await client.post(f"/api/v1/pending/{pending_id}/reject", headers=as_agent("carol"))
    await asyncio.wait_for(watcher, timeout=10)
    assert [name for name, _ in seen] == ["approval_requested", "approval_decided"]
    assert seen[0][1]["pending_id"] == pending_id and seen[0][1]["requested_by"] == "bob"
    assert seen[1][1]["decision"] == "deny" and seen[1][1]["decided_by"] == "carol"


# -- MCP ------------------------------------------------------------------------------------------------------


async def mcp_call(client: Client, name: str, args: dict[str, Any]) -> tuple[Any, bool]:
    result = await client.call_tool(name, args)
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    try:
        return json.loads(block.text), bool(result.is_error)
    except json.JSONDecodeError:
        return block.text, bool(result.is_error)


def mcp_client(node: Node, name: str) -> Client:
    return Client(McpApp(node, Profile.parse("full")).build(), client_info=types.Implementation(name=name, version="1"))


async def test_mcp_levels_and_approvers(node: Node) -> None:
    async with mcp_client(node, "mcp") as c:
        standard, _ = await mcp_call(c, "memory_store", {"title": "std", "content": "policy", "namespace": "mcp",
                                                         "agent_id": "alice"})
        out, err = await mcp_call(c, "memory_namespace_set_standard", {
            "namespace": "mcp", "id": standard["id"], "agent_id": "alice",
            "governance": {"write": "approve", "delete": "registered", "approver": {"consensus": 1}}})
        assert not err and out["set"]
        held, err = await mcp_call(c, "memory_store", {"title": "t", "content": "c", "namespace": "mcp",
                                                       "agent_id": "bob"})
        assert not err and held["status"] == "pending" and held["action"] == "store"
        listed, _ = await mcp_call(c, "memory_pending_list", {"status": "pending"})
        assert listed["count"] == 1
        refused, err = await mcp_call(c, "memory_pending_approve", {"id": held["pending_id"], "agent_id": "carol"})
        assert err and "not a registered agent" in refused
        await mcp_call(c, "memory_agent_register", {"agent_id": "carol", "agent_type": "human"})
        approved, err = await mcp_call(c, "memory_pending_approve", {"id": held["pending_id"], "agent_id": "carol",
                                                                     "remember": "session"})
        assert not err and approved["approved"] and approved["remember"] == "session"
        denied, err = await mcp_call(c, "memory_delete", {"id": approved["memory_id"], "agent_id": "bob"})
        assert err and "is not a registered agent" in denied
        second, _ = await mcp_call(c, "memory_store", {"title": "t2", "content": "c", "namespace": "mcp",
                                                       "agent_id": "bob"})
        assert "id" in second and "status" not in second  # remembered for this session
        agents, _ = await mcp_call(c, "memory_agent_list", {})
        assert [a["agent_id"] for a in agents["agents"]] == ["carol"]
        quota, _ = await mcp_call(c, "memory_quota_status", {"agent_id": "bob"})
        assert quota["quota"]["current_memories_today"] == 2
        rejected, err = await mcp_call(c, "memory_pending_reject", {"id": "no-such", "agent_id": "carol"})
        assert err and rejected == "pending action not found or already decided"
        cleared, _ = await mcp_call(c, "memory_namespace_clear_standard", {"namespace": "mcp", "agent_id": "alice"})
        assert cleared["cleared"] is True


async def test_approval_stream_over_a_real_server(node: Node) -> None:
    """GET /api/v1/approvals/stream is a live SSE feed (served by uvicorn: the in-process transport buffers)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(node), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            while not server.started:
                await asyncio.sleep(0.02)
            await govern(c, "live", "alice", write="approve")
            async with c.stream("GET", "/api/v1/approvals/stream", headers=as_agent("bob")) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.aiter_lines()
                assert await anext(lines) == ": connected"
                pending_id = (await store(c, "bob", "x", "live")).json()["pending_id"]
                received = [await asyncio.wait_for(anext(lines), timeout=10) for _ in range(3)]
        assert received[1] == "event: approval_requested"
        assert json.loads(received[2].removeprefix("data: "))["pending_id"] == pending_id
    finally:
        server.should_exit = True
        await serving


async def test_cli_pending_and_agents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cli"
    async with await Node.open(NodeConfig(data_dir=data, embedder="off")) as n:
        await n.start()
        await n.governance.set_standard("ops", standard_id=None, parent=None, governance={"write": "approve"},
                                        agent_id="alice")

    def run(*args: str) -> tuple[int, str]:
        code = cli_main([args[0], "--data-dir", str(data), *args[1:]])
        return code, capsys.readouterr().out

    code, out = await asyncio.to_thread(run, "store", "-T", "t", "-c", "c", "-n", "ops", "--agent-id", "bob",
                                        "--json")
    assert code == 0 and json.loads(out)["status"] == "pending"
    pending_id = json.loads(out)["pending_id"]
    code, out = await asyncio.to_thread(run, "pending", "list", "--json")
    assert code == 0 and json.loads(out)["pending"][0]["id"] == pending_id
    code, out = await asyncio.to_thread(run, "pending", "approve", pending_id, "--agent-id", "carol", "--json")
    assert code == 0 and json.loads(out)["executed"] is True
    code, out = await asyncio.to_thread(run, "agents", "register", "--agent-id", "bob", "--agent-type", "human",
                                        "--capabilities", "recall,store")
    assert code == 0 and "registered bob" in out
    code, out = await asyncio.to_thread(run, "agents", "--json")
    assert json.loads(out)["agents"][0]["capabilities"] == ["recall", "store"]


async def test_mcp_recall_and_session_start_carry_the_standards(node: Node, client: httpx.AsyncClient) -> None:
    org = (await govern(client, "corp", "alice", write="any"))["standard_id"]
    team = (await govern(client, "corp/team", "alice", write="any"))["standard_id"]
    await store(client, "bob", "deploy notes", "corp/team")
    async with mcp_client(node, "mcp") as c:
        one, _ = await mcp_call(c, "memory_recall", {"context": "deploy standard", "namespace": "corp",
                                                     "format": "json"})
        assert one["standard"]["id"] == org and "standards" not in one
        assert org not in [m["id"] for m in one["memories"]]
        both, _ = await mcp_call(c, "memory_session_start", {"namespace": "corp/team", "format": "json"})
        assert [s["id"] for s in both["standards"]] == [org, team]
        assert {m["title"] for m in both["memories"]} == {"deploy notes"} and both["count"] == 1
        none, _ = await mcp_call(c, "memory_recall", {"context": "deploy", "namespace": "elsewhere", "format": "json"})
        assert "standard" not in none and "standards" not in none
