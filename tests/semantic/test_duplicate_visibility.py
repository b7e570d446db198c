"""Issue #20: check_duplicate, with the real model, shows a reader nothing of what it may not see: not the
nearest memory, and not, through ``candidates_scanned``, how many memories the namespace holds."""

from __future__ import annotations

from pathlib import Path

import httpx

from infra.embed import MiniLMEmbedder
from producers.http import create_app
from producers.runtime.node import Node
from tests.semantic.conftest import open_node


async def test_check_duplicate_counts_and_finds_only_visible_memories(snode: Node) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(snode)), base_url="http://test") as c:
        for title, scope in (("Pet", None), ("Garden", "collective")):
            stored = await c.post("/api/v1/memories", headers={"X-Agent-Id": "alice"}, json={
                "title": title, "content": f"{title}: I adopted a golden retriever called Max last spring.",
                "namespace": "home", **({"scope": scope} if scope else {})})
            assert stored.status_code == 201, stored.text
        ask = {"title": "Pet", "content": "I adopted a golden retriever called Max last spring.", "namespace": "home"}
        alice = (await c.post("/api/v1/check_duplicate", json=ask, headers={"X-Agent-Id": "alice"})).json()
        bob = (await c.post("/api/v1/check_duplicate", json=ask, headers={"X-Agent-Id": "bob"})).json()
    assert alice["nearest"]["title"] == "Pet" and alice["candidates_scanned"] == 2
    assert bob["nearest"]["title"] == "Garden" and bob["candidates_scanned"] == 1



async def test_identical_text_is_a_duplicate_even_without_a_vector(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    """The original v0.7.0's F18: byte-identical title and content are a duplicate at similarity 1.0 whatever the
    vectors say; here the memory was stored without a vector (no embedder then), so only the text can find it.
    The reader rule still holds."""
    text = {"title": "Pet", "content": "I adopted a golden retriever called Max last spring.", "namespace": "home"}
    keyword = await open_node(tmp_path / "node", None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(keyword)), base_url="http://t") as c:
        assert (await c.post("/api/v1/memories", json=text, headers={"X-Agent-Id": "alice"})).status_code == 201
    await keyword.close()
    node = await open_node(tmp_path / "node", embedder)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url="http://t") as c:
            same = (await c.post("/api/v1/check_duplicate", json=text, headers={"X-Agent-Id": "alice"})).json()
            assert same["is_duplicate"] is True and same["nearest"]["similarity"] == 1.0, same
            almost = {**text, "content": text["content"] + "!"}
            other = (await c.post("/api/v1/check_duplicate", json=almost, headers={"X-Agent-Id": "alice"})).json()
            assert other["is_duplicate"] is False, other
            hidden = (await c.post("/api/v1/check_duplicate", json=text, headers={"X-Agent-Id": "bob"})).json()
            assert hidden["is_duplicate"] is False and hidden["nearest"] is None
    finally:
        await node.close()
