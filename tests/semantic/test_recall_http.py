"""Hybrid recall, check_duplicate, health and stats through the HTTP API, with the real model."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from infra.embed import MiniLMEmbedder, embedding_text
from producers.http import create_app
from producers.input.commands import parse_recall
from producers.runtime.node import Node
from tests.conftest import TEST_AGENT
from tests.contract.log_contract import read_all
from tests.schemas.test_contract import validate_against_files
from tests.semantic.conftest import open_node

FACTS = [
    ("Pet", "I adopted a golden retriever named Max last spring.", "alice"),
    ("Food", "My favourite dish is mushroom risotto with parmesan.", "alice"),
    ("Deploy order", "Run database migrations before every deploy.", "ops"),
    ("Family", "My sister lives in Lisbon and works as an architect.", "alice"),
    ("Allergy", "The user is allergic to peanuts and shellfish.", "alice"),
]


async def client_for(node: Node) -> httpx.AsyncClient:
    """An agent's client: it stores the facts and recalls its own (private) memories."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://test",
                             headers={"X-Agent-Id": TEST_AGENT})


@pytest.fixture
async def client(snode: Node) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(snode) as c:
        for title, content, ns in FACTS:
            r = await c.post("/api/v1/memories", json={"title": title, "content": content, "namespace": ns,
                                                       "tier": "long"})
            assert r.status_code == 201
        yield c


async def test_health_and_stats_report_the_embedder(client: httpx.AsyncClient) -> None:
    health = (await client.get("/api/v1/health")).json()
    assert health["embedder_ready"] is True and health["model"] == "all-MiniLM-L6-v2" and health["dim"] == 384
    stats = (await client.get("/api/v1/stats")).json()
    assert stats["embedder"]["embedder_ready"] is True and stats["dim_violations"] == 0
    assert stats["vector_index"]["vectors"] == len(FACTS) == stats["vector_index"]["sqlite_vectors"]


async def test_hybrid_recall_finds_by_meaning_with_the_meta_block(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/recall", json={"context": "what kind of dog do I have", "limit": 3})
    body = r.json()
    assert r.status_code == 200 and body["mode"] == "hybrid"
    assert body["memories"][0]["title"] == "Pet"
    meta = body["meta"]
    assert meta["recall_mode"] == "hybrid" and meta["reranker_used"] is False and meta["ranking"] == "ours"
    assert meta["candidate_counts"]["hnsw"] >= 1 and 0.0 < meta["blend_weight"] <= 1.0
    assert all(m["score"] == round(m["score"], 3) for m in body["memories"])
    scores = [m["score"] for m in body["memories"]]
    assert scores == sorted(scores, reverse=True)


async def test_recall_filters_apply_to_semantic_hits(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/recall", params={"context": "dog", "namespace": "ops"})).json()
    assert [m["title"] for m in body["memories"]] in ([], ["Deploy order"])
    private = (await client.get("/api/v1/recall", params={"context": "pet dog", "as_agent": "bob"})).json()
    assert private["memories"] == [], "alice's private memories are invisible to bob"


async def test_limit_is_capped_at_50_and_budget_fields_are_in_meta(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/recall", params={"context": "food", "limit": 80, "budget_tokens": 5})).json()
    assert body["count"] <= 5 and body["budget_tokens"] == 5
    assert {"budget_overflow", "budget_tokens_remaining", "budget_tokens_used", "memories_dropped"} <= set(body["meta"])


async def test_empty_and_huge_queries(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/recall", json={"context": "   "})).status_code == 400
    huge = "risotto parmesan " * 100_000
    r = await client.post("/api/v1/recall", json={"context": huge[:1_900_000]})
    assert r.status_code == 200 and r.json()["memories"][0]["title"] == "Food"
    bad_mode = await client.post("/api/v1/recall", json={"context": "x", "mode": "telepathy"})
    assert bad_mode.status_code == 400


async def test_check_duplicate(client: httpx.AsyncClient) -> None:
    near = await client.post("/api/v1/check_duplicate", json={
        "title": "Pet", "content": "I adopted a golden retriever called Max last spring."})
    body = near.json()
    assert near.status_code == 200 and body["is_duplicate"] is True and body["threshold"] == 0.85
    assert body["nearest"]["title"] == "Pet" and body["suggested_merge"] == body["nearest"]["id"]
    assert body["candidates_scanned"] == len(FACTS)
    far = (await client.post("/api/v1/check_duplicate", json={
        "title": "Kubernetes", "content": "pod stuck in CrashLoopBackOff", "threshold": 0.1})).json()
    assert far["is_duplicate"] is False and far["threshold"] == 0.5
    scoped = (await client.post("/api/v1/check_duplicate", json={
        "title": "Pet", "content": "golden retriever Max", "namespace": "ops"})).json()
    assert scoped["nearest"]["namespace"] == "ops" and scoped["candidates_scanned"] == 1
    missing = await client.post("/api/v1/check_duplicate", json={"title": "x"})
    assert missing.status_code == 400


async def test_vectors_travel_in_the_log_and_match_the_model(snode: Node, client: httpx.AsyncClient,
                                                             embedder: MiniLMEmbedder) -> None:
    records = await read_all(snode.log)
    embedded = [r.event.envelope for r in records if r.event.envelope.type == "memory.embedded"]
    stored = [r.event.envelope for r in records if r.event.envelope.type == "memory.stored"]
    assert len(embedded) == len(stored) == len(FACTS)
    for env in embedded:
        validate_against_files(env)
        assert env.payload["model"] == "all-MiniLM-L6-v2" and env.payload["dim"] == 384
    first = stored[0].payload["memory"]
    vector = np.frombuffer(base64.b64decode(embedded[0].payload["vector"]), dtype="<f4")
    expected = embedder.embed([embedding_text(first["title"], first["content"])])[0]
    assert embedded[0].payload["id"] == first["id"] and float(vector @ expected) > 0.99999


async def test_an_update_of_the_text_re_embeds(client: httpx.AsyncClient, snode: Node) -> None:
    pet = (await client.post("/api/v1/recall", json={"context": "dog"})).json()["memories"][0]
    r = await client.put(f"/api/v1/memories/{pet['id']}", json={"content": "I own a tabby cat called Luna."})
    assert r.status_code == 200
    body = (await client.post("/api/v1/recall", json={"context": "kitten", "mode": "semantic"})).json()
    assert body["mode"] == "semantic" and body["memories"][0]["id"] == pet["id"]
    assert len(snode.hnsw.index) == len(FACTS)


async def test_rebuild_without_the_model_gives_the_same_vectors(snode: Node, client: httpx.AsyncClient,
                                                                tmp_path: Path) -> None:
    """Replay the same log on a node with no model: SQLite and HNSW get every vector from the events."""
    await client.delete(f"/api/v1/memories/{(await client.get('/api/v1/memories')).json()['memories'][0]['id']}")
    replica = await open_node(tmp_path / "replica", None, log_url=f"sqlite:///{snode.config.data_dir / 'log.db'}",
                              trusted_keys=(snode.config.data_dir / "keys",))
    try:
        await replica.service.sync()
        ids = [m.id for m in replica.service.queries.all_memories()]
        assert replica.service.queries.vectors(ids) == snode.service.queries.vectors(ids)
        assert len(ids) == len(FACTS) - 1 == len(replica.hnsw.index)
        q = snode.semantic.embedder.embed(["dog"])[0]  # type: ignore[union-attr]
        assert replica.hnsw.index.search(q, 3) == snode.hnsw.index.search(q, 3)
        r = await replica.service.recall(parse_recall(
            {"context": "dog"}), agent_id="r")
        assert r.mode == "keyword" and r.fallback is not None
    finally:
        await replica.close()


async def test_keyword_mode_when_no_model_loads(tmp_path: Path) -> None:
    node = await open_node(tmp_path / "kw", None)
    try:
        async with await client_for(node) as c:
            await c.post("/api/v1/memories", json={"title": "Deploy", "content": "run migrations first"})
            health = (await c.get("/api/v1/health")).json()
            assert health["embedder_ready"] is False and "off" in health["embedder_error"]
            body = (await c.post("/api/v1/recall", json={"context": "migrations"})).json()
            assert body["mode"] == "keyword" and body["meta"]["recall_mode"] == "keyword"
            assert "off" in body["meta"]["semantic_unavailable"] and body["count"] == 1
            dup = await c.post("/api/v1/check_duplicate", json={"title": "Deploy", "content": "x"})
            assert dup.status_code == 503 and "embedder" in dup.json()["error"]
    finally:
        await node.close()


async def test_another_models_vector_is_never_mixed_in_and_a_wrong_dimension_is_counted(
        snode: Node, client: httpx.AsyncClient) -> None:
    from schemas import SCHEMA_VERSION, Envelope, encode_vector, new_event_id, now_ts, sign

    memory_id = (await client.get("/api/v1/memories")).json()["memories"][0]["id"]
    before = snode.service.queries.vectors([memory_id])[memory_id]

    async def append(model: str, dim: int) -> None:
        payload = {"id": memory_id, "model": model, "dim": dim, "vector": encode_vector([0.1] * dim)}
        envelope = Envelope(event_id=new_event_id(), type="memory.embedded", schema_version=SCHEMA_VERSION,
                            namespace="alice", actor="tester", origin=snode.key.key_id, ts=now_ts(),
                            payload=payload, key_id=snode.key.key_id)
        await snode.log.append([sign(envelope, snode.key)])

    # A 768-dimension model's vector (a node of the fleet embedding with another model): SQLite keeps it under
    # its model's name, the MiniLM index skips it; this node's searches never see it.
    await append("nomic-embed-text", 768)
    stats = (await client.get("/api/v1/stats")).json()
    assert stats["vector_index"]["other_model_vectors"] == 1 and stats["vector_index"]["dim_violations"] == 0
    assert stats["projector"]["rejected_events"] == 0 and stats["dim_violations"] == 0
    assert snode.service.queries.vectors([memory_id], model="all-MiniLM-L6-v2") == {}
    assert snode.service.queries.vectors([memory_id], model="nomic-embed-text")[memory_id] != before
    assert len(snode.hnsw.index) == len(FACTS), "the index keeps the memory's MiniLM vector"
    # The node's own model at the wrong dimension: refused by the index and counted.
    await append("all-MiniLM-L6-v2", 768)
    stats = (await client.get("/api/v1/stats")).json()
    assert stats["vector_index"]["dim_violations"] == 1 and len(snode.hnsw.index) == len(FACTS)


async def test_one_replay_rebuilds_both_read_models(snode: Node, client: httpx.AsyncClient, tmp_path: Path) -> None:
    """``rebuild_sqlite(vectors=...)`` (what ``ai-memory rebuild`` runs) builds the vector index in the same pass:
    the same index as a replay of its own, the same memories as the live model."""
    from projectors import HnswReadModel, SQLiteReadModel
    from projectors.rebuild import rebuild_hnsw, rebuild_sqlite

    position = await rebuild_sqlite(snode.log, snode.keyring, tmp_path / "rm.db", vectors=tmp_path / "both")
    await rebuild_hnsw(snode.log, snode.keyring, tmp_path / "alone")
    both, alone = HnswReadModel.open(tmp_path / "both"), HnswReadModel.open(tmp_path / "alone")
    sqlite = SQLiteReadModel(tmp_path / "rm.db")
    try:
        assert both.position() == alone.position() == position == snode.model.position()
        assert len(both.index) == len(alone.index) == len(snode.hnsw.index) == len(FACTS)
        q = snode.semantic.embedder.embed(["a pet animal"])[0]  # type: ignore[union-attr]
        assert both.index.search(q, 5) == alone.index.search(q, 5) == snode.hnsw.index.search(q, 5)
        assert sqlite.queries.all_memories() == snode.model.queries.all_memories()
    finally:
        both.close()
        alone.close()
        sqlite.close()
