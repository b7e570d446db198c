"""GET /api/v1/contradictions: the original's heuristic candidates and links, scoped by as_agent."""

from __future__ import annotations

import httpx

BOTH_READ_MODELS = True


async def _store(client: httpx.AsyncClient, **body: object) -> str:
    r = await client.post("/api/v1/memories", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_topic_candidates_existing_and_synthesized_links(client: httpx.AsyncClient) -> None:
    a = await _store(client, title="db", content="postgres 15", namespace="ops", metadata={"topic": "db"})
    b = await _store(client, title="database", content="postgres 16", namespace="ops", metadata={"topic": "db"})
    c = await _store(client, title="db", content="mysql", namespace="ops/other")
    await _store(client, title="cache", content="redis", namespace="ops")
    assert (await client.post("/api/v1/links", json={"source_id": a, "target_id": b,
                                                       "relation": "contradicts"})).status_code == 201
    body = (await client.get("/api/v1/contradictions", params={"topic": "db", "namespace": "ops"})).json()
    assert {m["id"] for m in body["memories"]} == {a, b}
    assert {"source_id": a, "target_id": b, "relation": "contradicts", "synthesized": False} in body["links"]
    synthesized = [(lk["source_id"], lk["target_id"]) for lk in body["links"] if lk["synthesized"]]
    assert len(synthesized) == 1 and set(synthesized[0]) == {a, b}
    # Across namespaces, by topic: c has the title "db" (the title counts as the topic too).
    across = (await client.get("/api/v1/contradictions", params={"topic": "db"})).json()
    assert {m["id"] for m in across["memories"]} == {a, b, c}
    assert sum(lk["synthesized"] for lk in across["links"]) == 3


async def test_namespace_only_pairs_same_titles_and_visibility(client: httpx.AsyncClient) -> None:
    await _store(client, title="port", content="8080", namespace="team/a", scope="private")
    await _store(client, title="port", content="9090", namespace="team", scope="team")
    body = (await client.get("/api/v1/contradictions", params={"namespace": "team"})).json()
    assert len(body["memories"]) == 1 and body["links"] == []
    seen = (await client.get("/api/v1/contradictions", params={"topic": "port", "as_agent": "team/a"})).json()
    assert len(seen["memories"]) == 2 and [lk["synthesized"] for lk in seen["links"]] == [True]
    other = (await client.get("/api/v1/contradictions", params={"topic": "port", "as_agent": "team/b"})).json()
    assert [m["content"] for m in other["memories"]] == ["9090"]


async def test_topic_or_namespace_is_required(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/contradictions")
    assert r.status_code == 400 and "at least one of `topic` or `namespace`" in r.json()["error"]
    bad = await client.get("/api/v1/contradictions", params={"namespace": "bad ns!"})
    assert bad.status_code == 400
