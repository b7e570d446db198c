"""Issue #20: check_duplicate, with the real model, shows a reader nothing of what it may not see: not the
nearest memory, and not, through ``candidates_scanned``, how many memories the namespace holds."""

from __future__ import annotations

import httpx

from producers.http import create_app
from producers.node import Node


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
