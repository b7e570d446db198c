"""Archive, restore, purge, GC into the archive, consolidate, session start, notify and inbox through the HTTP
API, with the original's shapes; the events they append are checked in the log, and a rebuild of the read model
from the log gives the same archive."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from infra.tasks import stop_task
from producers.runtime.node import Node
from producers.runtime.serve import _gc_forever
from projectors import HnswReadModel
from projectors.rebuild import rebuild_hnsw, rebuild_sqlite
from projectors.sqlite import SQLiteReadModel
from schemas.events import MemoriesArchived

# Every route behaves the same on a SQLite and on a Postgres read model.
BOTH_READ_MODELS = True


def as_(agent: str) -> dict[str, str]:
    return {"X-Agent-Id": agent}


async def store(client: httpx.AsyncClient, title: str, **body: Any) -> str:
    body.setdefault("content", f"content of {title}")
    r = await client.post("/api/v1/memories", json={"title": title, **body})
    assert r.status_code == 201, r.text
    memory_id: str = r.json()["id"]
    return memory_id


async def events(node: Node) -> list[tuple[str, dict[str, Any]]]:
    records = await node.log.read(after=None, limit=10_000)
    return [(r.event.envelope.type, r.event.envelope.payload) for r in records]


def has_vector(node: Node, memory_id: str) -> bool:
    """In the read model's vectors and, on a node that keeps one, in its HNSW index (a Postgres node searches
    the read model's own vectors with pgvector)."""
    indexed = node.vectors is None or memory_id in node.vectors.index
    return indexed and bool(node.model.queries.vectors([memory_id]))


async def test_archive_and_restore_round_trip(node: Node, client: httpx.AsyncClient) -> None:
    kept = await store(client, "kept", namespace="proj")
    gone = await store(client, "gone", namespace="proj", tier="short", tags=["a", "b"], metadata={"k": 1})
    before = (await client.get(f"/api/v1/memories/{gone}")).json()["memory"]
    assert has_vector(node, gone) == node.semantic.ready
    r = await client.post("/api/v1/archive", json={"ids": [gone, "no-such-id"], "reason": "tidy"})
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("archived", "missing", "count", "reason")} == {
        "archived": [gone], "missing": ["no-such-id"], "count": 1, "reason": "tidy"}
    assert (await client.get(f"/api/v1/memories/{gone}")).status_code == 404
    assert not has_vector(node, gone) and (await client.get(f"/api/v1/memories/{kept}")).status_code == 200
    listed = (await client.get("/api/v1/archive", params={"namespace": "proj"})).json()
    assert listed["count"] == 1
    row = listed["archived"][0]
    assert row["id"] == gone and row["archive_reason"] == "tidy" and row["tags"] == '["a","b"]'
    assert row["tier"] == "short" and row["expires_at"] == before["expires_at"] and row["metadata"]["k"] == 1
    assert (await client.get("/api/v1/archive/stats")).json() == {
        "archived_total": 1, "by_namespace": [{"namespace": "proj", "count": 1}]}

    r = await client.post(f"/api/v1/archive/{gone}/restore")
    assert r.status_code == 200 and r.json()["restored"] is True and r.json()["id"] == gone
    after = (await client.get(f"/api/v1/memories/{gone}")).json()["memory"]
    assert after["tier"] == "short" and after["expires_at"] == before["expires_at"]
    assert after["tags"] == ["a", "b"] and after["updated_at"] > before["updated_at"]
    # The vector comes back from the archive (no model needed): the same bytes as before.
    assert has_vector(node, gone) == node.semantic.ready
    assert (await client.get("/api/v1/archive")).json() == {"archived": [], "count": 0}
    r = await client.post(f"/api/v1/archive/{gone}/restore")
    assert r.status_code == 404 and r.json() == {"error": "not found in archive"}


async def test_restore_refuses_a_taken_title(client: httpx.AsyncClient) -> None:
    first = await store(client, "same")
    await client.post("/api/v1/archive", json={"ids": [first]})
    second = await store(client, "same")
    r = await client.post(f"/api/v1/archive/{first}/restore")
    assert r.status_code == 409 and r.json()["existing_id"] == second
    assert (await client.get("/api/v1/archive/stats")).json()["archived_total"] == 1


async def test_archive_validation(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/archive", json={"reason": "x"})).status_code == 400
    r = await client.post("/api/v1/archive", json={"ids": ["ok", ""]})
    assert r.status_code == 400 and r.json()["error"].startswith("invalid id")
    r = await client.post("/api/v1/archive", json={"ids": ["x"] * 1001})
    assert r.status_code == 400 and "limited to 1000" in r.json()["error"]
    r = await client.get("/api/v1/archive", params={"limit": 0})
    assert r.status_code == 400 and r.json() == {"error": "limit must be >= 1"}


async def test_purge_by_age_by_ids_and_all(node: Node, client: httpx.AsyncClient) -> None:
    ids = [await store(client, f"m{i}") for i in range(3)]
    await client.post("/api/v1/archive", json={"ids": ids})
    assert (await client.delete("/api/v1/archive", params={"older_than_days": 1})).json()["purged"] == 0
    r = await client.delete("/api/v1/archive", params={"older_than_days": -1})
    assert r.status_code == 400 and "must be non-negative" in r.json()["error"]
    assert (await client.delete("/api/v1/archive", params={"ids": f"{ids[0]},nope"})).json()["purged"] == 1
    assert (await client.delete("/api/v1/archive")).json()["purged"] == 2
    assert (await client.get("/api/v1/archive/stats")).json() == {"archived_total": 0, "by_namespace": []}
    purges = [p for t, p in await events(node) if t == "archive.purged"]
    assert [sorted(p["ids"]) for p in purges] == [[ids[0]], sorted(ids[1:])]


async def test_gc_archives_expired_memories(node: Node, client: httpx.AsyncClient) -> None:
    doomed = await store(client, "doomed", tier="short", ttl_secs=1)
    await store(client, "lasting", tier="long")
    expires = (await client.get(f"/api/v1/memories/{doomed}")).json()["memory"]["expires_at"]
    await asyncio.sleep(1.1)
    assert (await client.post("/api/v1/gc")).json()["expired_deleted"] == 1
    row = (await client.get("/api/v1/archive")).json()["archived"][0]
    assert row["id"] == doomed and row["archive_reason"] == "ttl_expired" and row["expires_at"] == expires
    archived = [p for t, p in await events(node) if t == "archive.archived"]
    assert archived[0]["ids"] == [doomed] and archived[0]["expired_only"] is True
    assert not has_vector(node, doomed)


async def test_the_sweeper_archives_expired_memories(node: Node, client: httpx.AsyncClient) -> None:
    """``serve`` runs GC on a timer: expired memories reach the archive through events the sweeper appends."""
    doomed = await store(client, "swept", tier="short", ttl_secs=1)
    sweeper = asyncio.create_task(_gc_forever(node, 0.2))
    try:
        for _ in range(50):
            if node.model.archive.get(doomed) is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        await stop_task(sweeper)
    archived = node.model.archive.get(doomed)
    assert archived is not None and archived.archive_reason == "ttl_expired"
    records = await node.log.read(after=None, limit=10_000)
    assert [r.event.envelope.actor for r in records if r.event.envelope.type == "archive.archived"] == ["system:gc"]


async def test_the_sweeper_purges_old_archives(node: Node, client: httpx.AsyncClient) -> None:
    """With ``archive_max_days``, each sweep also purges what was archived longer ago than that."""
    recent, old = await store(client, "recent"), await store(client, "old")
    await client.post("/api/v1/archive", json={"ids": [recent]})
    # An archive event decided long ago (events carry their time): what a node down for a while would replay.
    await node.writer.append([(MemoriesArchived([old], "archive", "2020-01-01T00:00:00+00:00"), "global")],
                             actor="test")
    sweeper = asyncio.create_task(_gc_forever(node, 0.05, archive_max_days=1))
    try:
        for _ in range(50):
            if node.model.archive.get(old) is None:
                break
            await asyncio.sleep(0.1)
    finally:
        await stop_task(sweeper)
    assert node.model.archive.get(old) is None and node.model.archive.get(recent) is not None
    purges = [r.event.envelope for r in await node.log.read(after=None, limit=10_000)
              if r.event.envelope.type == "archive.purged"]
    assert [(e.payload["ids"], e.payload["older_than_days"], e.actor) for e in purges] == [([old], 1, "system:gc")]


async def test_forget_archives(client: httpx.AsyncClient) -> None:
    await store(client, "f1", namespace="scratch")
    assert (await client.post("/api/v1/forget", json={"namespace": "scratch"})).json()["deleted"] == 1
    row = (await client.get("/api/v1/archive")).json()["archived"][0]
    assert row["title"] == "f1" and row["archive_reason"] == "forget"


async def test_consolidate(node: Node, client: httpx.AsyncClient) -> None:
    a = await store(client, "a", namespace="team", tags=["x"], priority=7, agent_id="alice",
                    metadata={"k": 1, "keep": "a"})
    b = await store(client, "b", namespace="other", tags=["y", "x"], priority=3, agent_id="bob",
                    metadata={"k": 2})
    start = await node.log.end_offsets()
    r = await client.post("/api/v1/consolidate", json={"ids": [a, b], "title": "ab", "summary": "a and b",
                                                       "namespace": "team", "agent_id": "carol"})
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    assert r.json()["consolidated"] == 2
    # Each memory here is private (no scope) to its author: each is read as its author.
    m = (await client.get(f"/api/v1/memories/{new_id}", headers=as_("carol"))).json()["memory"]
    assert (m["tier"], m["priority"], m["tags"], m["source"], m["confidence"]) == ("long", 7, ["x", "y"],
                                                                                 "consolidation", 1.0)
    assert m["metadata"] == {"k": 2, "keep": "a", "derived_from": [a, b], "agent_id": "carol",
                             "consolidated_from_agents": ["alice", "bob"]}
    assert "expires_at" not in m
    reasons: dict[str, str] = {}
    for source, author in ((a, "alice"), (b, "bob")):
        assert (await client.get(f"/api/v1/memories/{source}", headers=as_(author))).status_code == 404
        archived = (await client.get("/api/v1/archive", headers=as_(author))).json()["archived"]
        reasons.update({row["id"]: row["archive_reason"] for row in archived})
    assert reasons == {a: "consolidated", b: "consolidated"}
    # One append: the new memory (and its vector), a derived_from link to each source, the sources archived.
    appended = [(r.event.envelope.type, r.event.envelope.payload) for r in await node.log.read(after=start)]
    types = [t for t, _ in appended]
    assert types == ["memory.stored", *(["memory.embedded"] if node.semantic.ready else []), "link.created",
                     "link.created", "archive.archived", "archive.archived"]
    links = [p["link"] for t, p in appended if t == "link.created"]
    assert [(x["source_id"], x["target_id"], x["relation"]) for x in links] == [(new_id, a, "derived_from"),
                                                                                (new_id, b, "derived_from")]
    assert has_vector(node, new_id) == node.semantic.ready


async def test_consolidate_errors(client: httpx.AsyncClient) -> None:
    a = await store(client, "a")
    b = await store(client, "b")
    cases = [({"ids": [a], "title": "t", "summary": "s"}, 400, "need at least 2 memory IDs to consolidate"),
             ({"ids": [a, a], "title": "t", "summary": "s"}, 400, "duplicate memory ID"),
             ({"ids": [a, "nope"], "title": "t", "summary": "s"}, 404, "memory not found: nope"),
             ({"ids": [a, b], "title": "t"}, 400, "summary is required"),
             ({"ids": [a, b], "title": "a", "summary": "s"}, 409, "already exists")]
    for body, status, fragment in cases:
        r = await client.post("/api/v1/consolidate", json=body)
        assert r.status_code == status and fragment in r.json()["error"], (body, r.text)
    assert (await client.get(f"/api/v1/memories/{a}")).status_code == 200  # nothing was written


async def test_session_start(client: httpx.AsyncClient) -> None:
    await store(client, "s1", namespace="proj", priority=9)
    await store(client, "s2", namespace="proj")
    await store(client, "elsewhere")
    r = await client.post("/api/v1/session/start", json={"namespace": "proj", "limit": 1, "agent_id": "me"})
    body = r.json()
    assert r.status_code == 200 and body["mode"] == "session_start" and body["count"] == 1
    assert body["memories"][0]["title"] == "s1" and body["memories"][0]["score"] == 0.0
    assert body["agent_id"] == "me" and len(body["session_id"]) == 36
    r = await client.post("/api/v1/session/start", json={"agent_id": "bad id"})
    assert r.status_code == 400 and r.json()["error"].startswith("invalid agent_id")


async def test_notify_and_inbox_unread_until_recalled(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/notify", json={"target_agent_id": "bob", "title": "deploy window",
                                                  "content": "friday 5pm"}, headers={"X-Agent-Id": "alice"})
    assert r.status_code == 201
    sent = r.json()
    assert (sent["from"], sent["to"], sent["namespace"], sent["tier"]) == ("alice", "bob", "_messages/bob", "mid")
    inbox = (await client.get("/api/v1/inbox", headers=as_("bob"))).json()
    assert inbox["agent_id"] == "bob" and inbox["count"] == 1 and inbox["unread_only"] is False
    message = inbox["messages"][0]
    assert (message["from"], message["payload"], message["read"]) == ("alice", "friday 5pm", False)
    # Reading the inbox marks nothing read; a recall that returns the message does (bob reads as himself: the
    # client's own agent does not see his messages).
    bob = as_("bob")
    unread_only = {"agent_id": "bob", "unread_only": "true"}
    assert (await client.get("/api/v1/inbox", params=unread_only, headers=bob)).json()["count"] == 1
    await client.get("/api/v1/recall", params={"context": "deploy window", "namespace": "_messages/bob"}, headers=bob)
    unread = (await client.get("/api/v1/inbox", params=unread_only, headers=bob)).json()
    assert unread["count"] == 0 and unread["unread_only"] is True
    read = (await client.get("/api/v1/inbox", params={"agent_id": "bob"}, headers=bob)).json()["messages"][0]
    assert read["read"] is True and read["access_count"] == 1
    r = await client.post("/api/v1/notify", json={"target_agent_id": "bob", "title": "t"})
    assert r.status_code == 400 and r.json() == {"error": "payload or content is required"}
    r = await client.get("/api/v1/inbox", params={"agent_id": "bad id"})
    assert r.status_code == 400


async def test_rebuild_gives_the_same_archive(node: Node, client: httpx.AsyncClient, tmp_path: Path) -> None:
    ids = [await store(client, f"r{i}", namespace=f"ns{i % 2}", tags=[f"t{i}"]) for i in range(5)]
    await client.post("/api/v1/archive", json={"ids": ids[:3], "reason": "old"})
    await client.post(f"/api/v1/archive/{ids[1]}/restore")
    await client.post("/api/v1/consolidate", json={"ids": ids[3:], "title": "both", "summary": "s"})
    await client.delete("/api/v1/archive", params={"ids": ids[0]})
    live = node.model.archive
    target = tmp_path / "rebuilt.db"
    await rebuild_sqlite(node.log, node.keyring, target)
    rebuilt = SQLiteReadModel(target)
    try:
        assert rebuilt.archive.list_archived(limit=100) == live.list_archived(limit=100)
        assert rebuilt.archive.stats() == live.stats() and live.stats().total == 3
        for memory_id in ids:
            assert rebuilt.archive.vector(memory_id) == live.vector(memory_id)
        assert rebuilt.queries.get_many(ids) == node.model.queries.get_many(ids)
        assert rebuilt.rejected_count() == 0
    finally:
        rebuilt.close()
    await rebuild_hnsw(node.log, node.keyring, tmp_path / "hnsw")
    vectors = HnswReadModel.open(tmp_path / "hnsw")
    try:
        live_ids = (_vector_ids(node.vectors) if node.vectors is not None
                    else set(node.model.queries.vectors(ids + [m.id for m in node.model.queries.all_memories()])))
        assert _vector_ids(vectors) == live_ids
        assert (ids[1] in _vector_ids(vectors)) == node.semantic.ready  # restored, with its archived vector
    finally:
        vectors.close()


def _vector_ids(model: HnswReadModel) -> set[str]:
    return {entry.id for entry in model.index.entries.values()}


async def test_sync_push_archives_and_restores(client: httpx.AsyncClient) -> None:
    """A peer's push (the original's ``archives``/``restores`` id arrays) moves memories the same way."""
    memory_id = await store(client, "federated")

    async def push(**arrays: Any) -> dict[str, Any]:
        r = await client.post("/api/v1/sync/push", json={"sender_agent_id": "peer", **arrays})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    dry = await push(archives=[memory_id], dry_run=True)
    assert dry["archived"] == 1 and (await client.get(f"/api/v1/memories/{memory_id}")).status_code == 200
    body = await push(archives=[memory_id, "unknown"])
    assert (body["archived"], body["noop"], body["skipped"]) == (1, 1, 0)
    assert (await client.get("/api/v1/archive")).json()["archived"][0]["id"] == memory_id
    body = await push(restores=[memory_id, "unknown"])
    assert (body["restored"], body["noop"]) == (1, 1)
    assert (await client.get(f"/api/v1/memories/{memory_id}")).status_code == 200
