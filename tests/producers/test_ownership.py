"""Only its owner changes a memory over HTTP: the original v0.7.0's ownership gate (#930, #941, #954) on update,
promote, delete and links, with its carve-outs (an unowned memory, ``daemon``, an inbox message's recipient for
delete and link), the operator's token, anonymous callers as fresh agents (unless anonymous reads are ``all``),
and a memory the caller may not read answering 404 as its GET does (never 403 naming its owner)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from producers.http import create_app
from producers.input.commands import parse_update
from producers.runtime.node import Node

BOTH_READ_MODELS = True
V1 = "/api/v1"


def as_(agent: str) -> dict[str, str]:
    return {"X-Agent-Id": agent}


@pytest.fixture
async def http(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://t") as c:
        yield c


async def store(http: httpx.AsyncClient, title: str, agent: str | None, scope: str = "collective") -> str:
    headers = as_(agent) if agent else {}
    r = await http.post(f"{V1}/memories", json={"title": title, "content": f"{title} body", "scope": scope},
                        headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def changes(http: httpx.AsyncClient, memory_id: str, headers: dict[str, str]) -> list[httpx.Response]:
    """An update, a promotion and a deletion of the memory, in that order."""
    return [await http.put(f"{V1}/memories/{memory_id}", json={"content": "rewritten"}, headers=headers),
            await http.post(f"{V1}/memories/{memory_id}/promote", headers=headers),
            await http.delete(f"{V1}/memories/{memory_id}", headers=headers)]


async def test_another_agent_cannot_change_a_memory_it_can_read(http: httpx.AsyncClient) -> None:
    shared = await store(http, "Runbook", "alice")
    refused = await changes(http, shared, as_("bob"))
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert all(r.json() == {"error": "caller does not own this memory", "owner": "alice", "caller": "bob"}
               for r in refused)
    kept = (await http.get(f"{V1}/memories/{shared}", headers=as_("alice"))).json()
    assert (kept["content"], kept["tier"]) == ("Runbook body", "mid")
    assert [r.status_code for r in await changes(http, shared, as_("alice"))] == [200, 200, 200]


async def test_a_memory_the_caller_may_not_read_is_not_found(http: httpx.AsyncClient) -> None:
    secret = await store(http, "Salary bands", "alice", scope="private")
    refused = await changes(http, secret, as_("bob"))
    assert [r.status_code for r in refused] == [404, 404, 404]
    assert not any("alice" in r.text or "Salary" in r.text for r in refused)  # neither its owner nor its text
    link = await http.post(f"{V1}/links", json={"source_id": secret, "target_id": await store(http, "x", "bob")},
                           headers=as_("bob"))
    assert link.status_code == 404 and "alice" not in link.text


async def test_links_start_at_what_the_caller_owns_and_end_with_either_owner(http: httpx.AsyncClient) -> None:
    alices, bobs = await store(http, "Alice's", "alice"), await store(http, "Bob's", "bob")
    refused = await http.post(f"{V1}/links", json={"source_id": alices, "target_id": bobs}, headers=as_("bob"))
    assert refused.status_code == 403 and refused.json() == {
        "error": "caller does not own this source memory", "owner": "alice", "caller": "bob", "source_id": alices}
    made = await http.post(f"{V1}/links", json={"source_id": alices, "target_id": bobs}, headers=as_("alice"))
    assert made.status_code == 201
    body = {"source_id": alices, "target_id": bobs}
    carol = await http.request("DELETE", f"{V1}/links", json=body, headers=as_("carol"))
    assert carol.status_code == 403 and carol.json() == {
        "error": "caller does not own either endpoint of this link", "source_owner": "alice",
        "target_owner": "bob", "caller": "carol", "source_id": alices, "target_id": bobs}
    invalidate = {**body, "relation": "related_to"}
    ended = await http.post(f"{V1}/kg/invalidate", json=invalidate, headers=as_("bob"))
    assert ended.status_code == 403 and ended.json()["owner"] == "alice"
    assert (await http.post(f"{V1}/kg/invalidate", json=invalidate, headers=as_("alice"))).json()["found"] is True
    removed = await http.request("DELETE", f"{V1}/links", json=body, headers=as_("bob"))  # he owns the target
    assert removed.status_code == 200 and removed.json()["deleted"] is True


async def test_an_inbox_message_is_deleted_by_its_recipient_not_rewritten(http: httpx.AsyncClient) -> None:
    sent = await http.post(f"{V1}/notify", headers=as_("alice"),
                           json={"target_agent_id": "bob", "title": "ping", "payload": "look"})
    assert sent.status_code == 201, sent.text
    message = (await http.get(f"{V1}/inbox", headers=as_("bob"))).json()["messages"][0]["id"]
    rewrite = await http.put(f"{V1}/memories/{message}", json={"content": "forged"}, headers=as_("bob"))
    assert rewrite.status_code == 403 and rewrite.json()["owner"] == "alice"
    assert (await http.delete(f"{V1}/memories/{message}", headers=as_("bob"))).status_code == 200


async def test_carve_outs_daemon_operator_and_the_service(http: httpx.AsyncClient, node: Node,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = await store(http, "first", "alice"), await store(http, "second", "alice")
    daemon = await http.put(f"{V1}/memories/{first}", json={"content": "by daemon"}, headers=as_("daemon"))
    assert daemon.status_code == 200
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    operator = {**as_("bob"), "X-AI-Memory-Admin-Token": "op-secret"}
    assert (await http.put(f"{V1}/memories/{second}", json={"content": "by operator"}, headers=operator)
            ).status_code == 200
    wrong = {**as_("bob"), "X-AI-Memory-Admin-Token": "guess"}
    assert (await http.put(f"{V1}/memories/{second}", json={"content": "x"}, headers=wrong)).status_code == 403
    # MCP and the CLI act as the node's agent through the service, which the HTTP rule does not gate.
    updated, _ = await node.service.update(second, parse_update({"content": "by the node"}), agent_id="bob")
    assert updated.content == "by the node"


@pytest.mark.parametrize("reads", ["private-hidden", "all"])
async def test_anonymous_callers_follow_the_anonymous_reads(node: Node, monkeypatch: pytest.MonkeyPatch,
                                                            reads: str) -> None:
    monkeypatch.setenv("AI_MEMORY_ANONYMOUS_READS", reads)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://t") as c:
        mine = await store(c, "anonymous note", None)
        got: dict[str, Any] = (await c.put(f"{V1}/memories/{mine}", json={"content": "again"})).json()
        if reads == "private-hidden":  # as the original: each anonymous request is a fresh agent, owning nothing
            assert got["error"] == "caller does not own this memory" and got["caller"].startswith("anonymous:req-")
        else:
            assert got["content"] == "again"


async def test_archive_restore_and_purge_touch_only_the_callers_own(http: httpx.AsyncClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The original v0.7.0's #940 and #936: another agent's memory reads as absent to archiving and restoring
    by id (so its ids cannot be probed), a purge removes the caller's own, and the operator's purges all."""
    alices, bobs, spare = (await store(http, "Alice's", "alice"), await store(http, "Bob's", "bob"),
                           await store(http, "Alice's spare", "alice"))
    by_bob = (await http.post(f"{V1}/archive", json={"ids": [alices, bobs]}, headers=as_("bob"))).json()
    assert (by_bob["archived"], by_bob["missing"]) == ([bobs], [alices])
    for memory_id in (alices, spare):
        assert (await http.post(f"{V1}/archive", json={"ids": [memory_id]}, headers=as_("alice"))
                ).json()["archived"] == [memory_id]
    restore = await http.post(f"{V1}/archive/{alices}/restore", headers=as_("bob"))
    assert restore.status_code == 404 and restore.json() == {"error": "not found in archive"}
    purge = (await http.delete(f"{V1}/archive", headers=as_("bob"))).json()
    assert (purge["purged"], purge["owner_scope"]) == (1, "caller")
    assert (await http.post(f"{V1}/archive/{alices}/restore", headers=as_("alice"))).status_code == 200
    monkeypatch.setenv("AI_MEMORY_ADMIN_TOKEN", "op-secret")
    operator = (await http.delete(f"{V1}/archive", headers={**as_("carol"), "X-AI-Memory-Admin-Token": "op-secret"})
                ).json()
    assert (operator["purged"], operator["owner_scope"]) == (1, "admin")  # alice's spare
    assert (await http.get(f"{V1}/archive", headers=as_("alice"))).json()["archived"] == []
