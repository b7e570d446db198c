"""GET /api/v1/status (JSON) and GET /status (the self-refreshing HTML page)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from producers.http import create_app
from producers.http.status import render_page
from producers.memory.model_hash import memories_hash
from producers.runtime.node import Node
from projectors import SQLiteReadModel
from projectors.rebuild import rebuild_sqlite
from projectors.sqlite.queries import SQLiteMemoryQueries


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node, api_key="k"))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers={"x-api-key": "k"}) as c:
        yield c


async def test_status_json_reports_lag_per_read_model(client: httpx.AsyncClient, node: Node) -> None:
    for title in ("a", "b"):
        r = await client.post("/api/v1/memories", json={"title": title, "content": "c", "namespace": "ops"})
        assert r.status_code == 201
    doc = (await client.get("/api/v1/status")).json()
    end = doc["end_offsets"]
    assert sum(end.values()) >= 2
    # Writes return once applied locally: nothing behind on either read model.
    assert all(v == 0 for v in doc["read_models"]["memories"]["lag"].values())
    assert all(v == 0 for v in doc["read_models"]["vectors"]["lag"].values())
    assert doc["memories"]["total"] == 2 and doc["node_id"] == node.key.key_id
    # One region: no title is ever claimed by two, so no memory is kept under a conflict title.
    assert doc["read_models"]["memories"]["title_conflicts"] == {"count": 0, "memories": []}
    # Recall's lexical index, built in the background from the node's start, then kept current from the feed.
    queries = node.service.queries
    assert isinstance(queries, SQLiteMemoryQueries) and queries.lexical_ready(30)
    recalled = await client.post("/api/v1/recall", json={"context": "c"})  # brings it up to the two memories
    assert recalled.status_code == 200
    lexical = (await client.get("/api/v1/status")).json()["lexical_index"]
    assert lexical["state"] == "ready" and lexical["memories"] == 2 and lexical["bytes"] > 0


async def test_status_page_is_html_and_needs_the_key(client: httpx.AsyncClient, node: Node) -> None:
    # Collective: the page is read without X-Agent-Id (a person's browser), which sees no private memory.
    await client.post("/api/v1/memories", json={"title": "t", "content": "c", "namespace": "<script>x</script>",
                                                "scope": "collective"})
    page = await client.get("/status")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and node.key.key_id in page.text
    assert "<script>" not in page.text and "&lt;script&gt;x&lt;/script&gt;" in page.text
    anonymous = await client.get("/status", headers={"x-api-key": "wrong"})
    assert anonymous.status_code == 401


def test_lag_bars_scale_with_the_log_end() -> None:
    doc = {"node_id": "n1", "log": "embedded", "stream": None, "end_offsets": {"p": 100},
           "read_models": {"memories": {"lag": {"p": 50}, "rejected": 0}, "vectors": {"lag": {"p": 0}}},
           "peers": {"n2": {"clock": {"p": 90}, "lag": {"p": 10}}},
           "quorum": {"writes": 2, "cluster_size": 3, "timeout_ms": 2000},
           "embedder": {"embedder_ready": False, "embedder_error": "off"},
           "memories": {"total": 0, "by_tier": [], "by_namespace": []}, "log_chain": {"breaks": 2}}
    page = render_page(doc)
    assert "<th>log chain breaks</th><td>2</td>" in page
    assert 'width="180"' in page  # 50 of 100 behind: half of the 360-pixel bar
    assert 'width="36"' in page  # the peer 10 behind
    assert "W=2 of N=3" in page


async def test_status_reports_the_read_model_hash_on_request(client: httpx.AsyncClient, node: Node,
                                                             tmp_path: Path) -> None:
    assert "read_model_hash" not in (await client.get("/api/v1/status")).json()  # it reads every memory: asked
    first = (await client.get("/api/v1/status", params={"hash": "1"})).json()["read_model_hash"]
    stored = await client.post("/api/v1/memories", json={"title": "hashed", "content": "c"})
    assert stored.status_code == 201
    second = (await client.get("/api/v1/status", params={"hash": "1"})).json()["read_model_hash"]
    assert second["memories"] != first["memories"] and second["position"] == node.runner.position
    # What a rebuild from the same log gives: the hash is of the memories, not of the file or the node.
    await rebuild_sqlite(node.log, node.keyring, tmp_path / "rebuilt.db")
    rebuilt = SQLiteReadModel(tmp_path / "rebuilt.db")
    try:
        assert memories_hash(rebuilt) == second["memories"]
    finally:
        rebuilt.close()
