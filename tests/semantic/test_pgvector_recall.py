"""Semantic and hybrid recall on a shared Postgres read model search pgvector (no local HNSW), and answer as the
SQLite node's HNSW path does: one log, one node on each backend, the same questions, with the real model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.embed import MiniLMEmbedder
from producers.runtime.node import Node
from tests.semantic.conftest import open_node
from tests.semantic.test_recall_http import FACTS, client_for

MORE = [
    ("Cat", "The neighbours have a grey cat that sleeps on our porch.", "alice", ["pets"]),
    ("Runbook", "Roll back the deploy if the health check fails twice.", "ops", ["deploy"]),
    ("Holiday", "We spent August hiking in the Dolomites.", "alice", []),
    ("Team lunch", "Friday lunch is pizza for the platform team.", "ops", ["team"]),
]
QUESTIONS = ["what kind of dog do I have", "food allergies", "how do we ship releases", "where does my sister live",
             "mountains", "pets at home"]


@pytest.fixture
async def pair(tmp_path: Path, embedder: MiniLMEmbedder, postgres_url: str) -> AsyncIterator[tuple[Node, Node]]:
    """A SQLite node that wrote the memories, and a Postgres node on the same log (caught up)."""
    lite = await open_node(tmp_path / "lite", embedder)
    pg = await open_node(tmp_path / "pg", embedder, log_url=f"sqlite:///{lite.config.data_dir / 'log.db'}",
                         trusted_keys=(lite.config.data_dir / "keys",), read_model_url=postgres_url)
    try:
        async with await client_for(lite) as c:
            for title, content, ns in FACTS:
                assert (await c.post("/api/v1/memories", json={"title": title, "content": content, "namespace": ns,
                                                                "tier": "long"})).status_code == 201
            for title, content, ns, tags in MORE:
                assert (await c.post("/api/v1/memories", json={
                    "title": title, "content": content, "namespace": ns, "tags": tags,
                    "metadata": {"scope": "collective"}})).status_code == 201
        await pg.service.sync()
        yield lite, pg
    finally:
        await pg.close()
        await lite.close()


async def _recall(node: Node, body: dict[str, object]) -> dict[str, object]:
    async with await client_for(node) as c:
        r = await c.post("/api/v1/recall", json=body)
        assert r.status_code == 200, r.text
        answer: dict[str, object] = r.json()
        return answer


def _hits(answer: dict[str, object]) -> list[tuple[str, float]]:
    memories = answer["memories"]
    assert isinstance(memories, list)
    return [(m["id"], m["score"]) for m in memories]


async def test_the_postgres_node_keeps_no_hnsw_and_searches_pgvector(pair: tuple[Node, Node]) -> None:
    lite, pg = pair
    assert pg.vectors is None and pg.vector_runner is None and not (pg.config.data_dir / "hnsw").exists()
    assert pg.semantic.vectors.kind == "pgvector" and lite.semantic.vectors.kind == "hnsw"
    assert pg.semantic.vectors.count() == lite.semantic.vectors.count() == len(FACTS) + len(MORE)
    assert pg.semantic.vectors.count("ops") == lite.semantic.vectors.count("ops") == 3
    async with await client_for(pg) as c:
        stats = (await c.get("/api/v1/stats")).json()
    assert stats["vector_index"] == {"kind": "pgvector", "vectors": len(FACTS) + len(MORE), "dim": 384}


@pytest.mark.parametrize("extra", [{}, {"namespace": "ops"}, {"as_agent": "bob"}, {"tags": "pets"}])
async def test_semantic_recall_answers_the_same_on_both(pair: tuple[Node, Node], extra: dict[str, str]) -> None:
    lite, pg = pair
    for question in QUESTIONS:
        body = {"context": question, "mode": "semantic", "limit": 5, **extra}
        a, b = _hits(await _recall(lite, body)), _hits(await _recall(pg, body))
        assert [i for i, _ in a] == [i for i, _ in b], (question, extra)
        assert all(abs(x - y) <= 0.002 for (_, x), (_, y) in zip(a, b, strict=True))


async def test_hybrid_recall_finds_the_same_memories_on_both(pair: tuple[Node, Node]) -> None:
    """The semantic half is the same; the keyword half is bm25 on SQLite and ts_rank on Postgres (documented),
    so the same memories come back and the best one agrees, while close scores may swap further down."""
    lite, pg = pair
    for question in QUESTIONS:
        body = {"context": question, "limit": 20}
        a, b = await _recall(lite, body), await _recall(pg, body)
        assert a["mode"] == b["mode"] == "hybrid"
        assert {i for i, _ in _hits(a)} == {i for i, _ in _hits(b)}, question
        assert _hits(a)[0][0] == _hits(b)[0][0], question


async def test_check_duplicate_agrees(pair: tuple[Node, Node]) -> None:
    lite, pg = pair
    probe = {"title": "Pet", "content": "I adopted a golden retriever called Max last spring."}
    for body in (probe, {**probe, "namespace": "ops"}):
        answers = []
        for node in (lite, pg):
            async with await client_for(node) as c:
                answers.append((await c.post("/api/v1/check_duplicate", json=body)).json())
        a, b = answers
        assert (a["is_duplicate"], a["nearest"]["id"], a["candidates_scanned"]) == (
            b["is_duplicate"], b["nearest"]["id"], b["candidates_scanned"])
        assert abs(a["nearest"]["similarity"] - b["nearest"]["similarity"]) <= 0.001
