"""The per-request timeout (the original's H7): 504 ``{"error": "request timed out"}`` for a request that has
not started answering in time, on the real app; streams and started answers are left alone."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from producers.http import create_app
from producers.http.boundary import HttpBoundary
from producers.http.timeout import TIMEOUT_ENV, timeout_from_env
from producers.runtime.node import Node


async def test_a_request_waiting_past_the_limit_is_504(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # Waiting for a log position the node never reaches holds the request (up to 5 s) past the 0.3 s limit.
        slow = await client.get("/api/v1/memories", headers={"X-AI-Memory-Wait-For": "ai-memory:999999"})
        assert slow.status_code == 504 and slow.json() == {"error": "request timed out"}
        assert (await client.get("/api/v1/memories")).status_code == 200


async def _slow(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.2)
    await send({"type": "http.response.body", "body": b"done"})


async def test_started_answers_and_streams_are_not_cut() -> None:
    for path in ("/api/v1/health", "/mcp"):
        transport = httpx.ASGITransport(app=HttpBoundary(_slow, request_timeout=0.05))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get(path)
            assert r.status_code == 200 and r.content == b"done"


async def _stubborn(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        raise RuntimeError("cleanup failed") from None  # what a cancelled request raises on its way out


async def _deaf(scope: Scope, receive: Receive, send: Send) -> None:
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        return  # swallows its cancellation and answers nothing


async def test_a_timed_out_request_is_504_however_it_ends() -> None:
    for app in (_stubborn, _deaf):
        transport = httpx.ASGITransport(app=HttpBoundary(app, request_timeout=0.05))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/api/v1/memories")
            assert r.status_code == 504 and r.json() == {"error": "request timed out"}, app


def test_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert timeout_from_env() == 60.0
    monkeypatch.setenv(TIMEOUT_ENV, "0")
    assert timeout_from_env() == 0.0
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="must be a number of seconds"):
        timeout_from_env()
