"""Vector clocks on the HTTP surface, ``sync/since`` (our clock and the original's timestamp), ``sync/push``."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from infra.confirm import Confirmation, LocalConfirmations
from producers.errors import QuorumNotMetError, ValidationError, reply_for
from producers.http.base import CLOCK_HEADER, WAIT_FOR_HEADER
from producers.runtime.node import Node
from producers.sync.service import format_clock, insert_if_newer, parse_clock
from producers.write.quorum import QuorumConfig, QuorumTracker
from schemas import Memory


def make_memory(*, id: str = "0d6c3a52-6a5e-4b8e-9f5e-3b1f3c1d2e01", title: str = "shared",
                content: str = "c", updated_at: str = "2026-01-01T00:00:00+00:00") -> Memory:
    return Memory(id=id, tier="mid", namespace="global", title=title, content=content, tags=[], priority=5,
                  confidence=1.0, source="api", access_count=0, created_at="2026-01-01T00:00:00+00:00",
                  updated_at=updated_at, metadata={"agent_id": "peer"})


def _memory(**changes: str) -> dict[str, object]:
    return make_memory(**changes).to_api()


def test_clock_forms() -> None:
    assert parse_clock('{"ai-memory": 5}') == {"ai-memory": 5}
    assert parse_clock("ai-memory:5,other:7") == {"ai-memory": 5, "other": 7}
    assert parse_clock(format_clock({"b": 2, "a": 1})) == {"a": 1, "b": 2}
    for bad in ("nope", "p:x", '{"p": -1}', "[1]"):
        with pytest.raises(ValidationError):
            parse_clock(bad)


async def test_responses_carry_the_clock_and_reads_wait_for_one(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/memories", json={"title": "t", "content": "c"})
    assert r.status_code == 201
    clock = r.json()["log_clock"]
    assert parse_clock(r.headers[CLOCK_HEADER]) == clock
    seen = await client.get("/api/v1/memories", headers={WAIT_FOR_HEADER: format_clock(clock)})
    assert seen.status_code == 200 and seen.json()["count"] == 1
    future = {p: o + 100 for p, o in clock.items()}
    slow = await client.get("/api/v1/memories", headers={WAIT_FOR_HEADER: json.dumps(future)}, timeout=30)
    assert slow.status_code == 503  # bounded: the clock is never reached, so the read says so


async def test_sync_since_by_clock_and_by_timestamp(client: httpx.AsyncClient) -> None:
    first = (await client.post("/api/v1/memories", json={"title": "one", "content": "c"})).json()
    await client.post("/api/v1/memories", json={"title": "two", "content": "c"})
    after = format_clock(first["log_clock"])
    body = (await client.get("/api/v1/sync/since", params={"clock": after})).json()
    assert [m["title"] for m in body["memories"]] == ["two"]
    assert next(e["type"] for e in body["events"]) == "memory.stored"  # then memory.embedded with a model
    assert body["clock"] == first["log_clock"] and body["next_clock"] != body["clock"]
    everything = (await client.get("/api/v1/sync/since", params={"since": "2000-01-01T00:00:00Z"})).json()
    assert {m["title"] for m in everything["memories"]} == {"one", "two"}
    assert set(everything) >= {"count", "limit", "updated_since", "earliest_updated_at", "latest_updated_at"}
    bad = await client.get("/api/v1/sync/since", params={"since": "yesterday"})
    assert bad.status_code == 400


async def test_sync_push_applies_newer_copies_and_deletions(client: httpx.AsyncClient, node: Node) -> None:
    old = _memory(title="shared", content="old", updated_at="2026-01-01T00:00:00+00:00")
    r = await client.post("/api/v1/sync/push", json={"sender_agent_id": "peer", "memories": [old]})
    assert r.status_code == 200 and r.json()["applied"] == 1
    stale = {**old, "content": "older", "updated_at": "2025-01-01T00:00:00+00:00"}
    newer = {**old, "content": "newer", "updated_at": "2026-06-01T00:00:00+00:00"}
    r = await client.post("/api/v1/sync/push", json={"sender_agent_id": "peer", "memories": [stale],
                                                      "links": [{}]})
    assert (r.json()["applied"], r.json()["noop"], r.json()["skipped"]) == (0, 1, 1)
    r = await client.post("/api/v1/sync/push", json={"sender_agent_id": "peer", "memories": [newer]})
    assert r.json()["applied"] == 1
    assert node.model.queries.get(str(old["id"])).content == "newer"  # type: ignore[union-attr]
    gone = await client.post("/api/v1/sync/push", json={"sender_agent_id": "peer", "deletions": [old["id"]],
                                                         "dry_run": False})
    body = gone.json()
    assert body["deleted"] == 1 and node.model.queries.get(str(old["id"])) is None
    assert set(body) >= {"applied", "deleted", "archived", "restored", "links_applied", "pendings_applied",
                         "pending_decisions_applied", "namespace_meta_applied", "namespace_meta_cleared", "noop",
                         "skipped", "dry_run", "receiver_agent_id", "receiver_clock"}
    too_many = await client.post("/api/v1/sync/push", json={"sender_agent_id": "p", "deletions": ["x"] * 1001})
    assert too_many.status_code == 400


def test_insert_if_newer_ties_go_to_the_larger_id() -> None:
    base = make_memory(id="b" * 8, updated_at="2026-01-01T00:00:00+00:00")
    assert insert_if_newer(None, base)
    assert not insert_if_newer(base, make_memory(id="a" * 8, updated_at=base.updated_at))
    assert insert_if_newer(base, make_memory(id="c" * 8, updated_at=base.updated_at))


async def test_quorum_tracker_counts_the_writer_and_covering_peers() -> None:
    channel = LocalConfirmations()
    tracker = QuorumTracker("me", channel, QuorumConfig(writes=3, nodes=3, timeout_ms=300))
    tracker.start()
    try:
        await asyncio.sleep(0)
        await channel.publish(Confirmation("me", {"p": 9}))  # its own confirmation is not counted twice
        await channel.publish(Confirmation("peer1", {"p": 5}))
        with pytest.raises(QuorumNotMetError) as failed:
            await tracker.wait({"p": 5})
        assert (failed.value.got, failed.value.needed) == (2, 3)
        reply = reply_for(failed.value)
        assert (reply.status, reply.headers, reply.body["error"]) == (503, {"Retry-After": "2"}, "quorum_not_met")
        await channel.publish(Confirmation("peer2", {"p": 6}))
        assert await tracker.wait({"p": 5}) == 3
        assert QuorumConfig(writes=9, nodes=3).needed == 3 and QuorumConfig(writes=0, nodes=3).needed == 1
    finally:
        await tracker.stop()
        await channel.close()
