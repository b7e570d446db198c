"""``ai-memory serve`` delivers webhooks: a real server process, a real receiver, /metrics showing the delivery
projector's lag, and a stop and start of the server in between (nothing resent, nothing missed)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from tests.servers import ServerProcess
from tests.webhook_receiver import running_receiver

ENV = {"AI_MEMORY_EMBEDDER": "off"}


async def _store(client: httpx.AsyncClient, title: str) -> None:
    r = await client.post("/api/v1/memories", json={"title": title, "content": "c"})
    assert r.status_code == 201, r.text


async def test_serve_delivers_and_resumes_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_receiver("s3") as receiver:
        server = await asyncio.to_thread(ServerProcess(data, env=ENV).start)
        try:
            async with httpx.AsyncClient(base_url=server.url, headers={"x-agent-id": "ops"}) as client:
                r = await client.post("/api/v1/subscriptions", json={"url": receiver.url(), "secret": "s3"})
                assert r.status_code == 201, r.text
                await _store(client, "first")
                await receiver.wait_for(1)
                metrics = (await client.get("/metrics")).text
            assert 'ai_memory_webhook_lag{partition="ai-memory"} 0' in metrics
            assert "ai_memory_webhook_offset" in metrics
        finally:
            await asyncio.to_thread(server.stop)

        # The CLI writes while no server runs; the next server delivers it, and only it.
        cli = await asyncio.create_subprocess_exec(sys.executable, "-m", "producers.cli.main", "store", "--data-dir",
                                                   str(data), "-T", "while down", "-c", "c", "--agent-id", "ops",
                                                   env={**os.environ, **ENV})  # ops's own: its hook may read it
        assert await cli.wait() == 0
        server = await asyncio.to_thread(ServerProcess(data, env=ENV).start)
        try:
            got = await receiver.wait_for(2)
            await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(server.stop)
    assert [r.body["title"] for r in got] == ["first", "while down"] and len(receiver.requests) == 2
    assert all(r.signature_ok for r in receiver.requests)
