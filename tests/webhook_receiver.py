"""A real webhook receiver for the tests: a Starlette app served by uvicorn on a free loopback port, in the
test's own event loop. It checks every request's signature itself (plain ``hmac``/``hashlib``, not the code
under test), records what it got, and answers as told: acknowledge, fail N times first, or stay down."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.cluster.process import free_port

__all__ = ["Received", "Receiver", "running_receiver"]


@dataclass(frozen=True)
class Received:
    path: str
    body: dict[str, Any]
    correlation_header: str
    timestamp: str
    #: The signature verified with the receiver's copy of the secret, and the timestamp was fresh.
    signature_ok: bool


@dataclass
class Receiver:
    secret: str
    port: int = 0
    #: Answer 503 to this many requests before acknowledging.
    fail_first: int = 0
    #: Answer 500 to everything.
    down: bool = False
    requests: list[Received] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def acked(self) -> list[Received]:
        """Requests that were acknowledged (answered with a matching ack)."""
        return [r for r in self.requests if r.body.get("_acked")]

    def verify(self, raw: bytes, timestamp: str, header: str) -> bool:
        key = hashlib.sha256(self.secret.encode()).digest()
        expected = "sha256=" + hmac.new(key, f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
        return abs(time.time() - int(timestamp)) < 300 and hmac.compare_digest(expected, header)

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        timestamp = request.headers.get("x-ai-memory-timestamp", "0")
        ok = self.verify(raw, timestamp, request.headers.get("x-ai-memory-signature", ""))
        failing = self.down or self.fail_first > 0
        if self.fail_first > 0:
            self.fail_first -= 1
        if not failing:
            body["_acked"] = True
        self.requests.append(Received(request.url.path, body, request.headers.get("x-ai-memory-correlation-id", ""),
                                      timestamp, ok))
        self._arrived.set()
        if failing:
            return Response("unavailable", status_code=500 if self.down else 503)
        return JSONResponse({"status": "ack", "correlation_id": body["correlation_id"]})

    async def wait_for(self, count: int, *, acked: bool = True, timeout: float = 20.0) -> list[Received]:
        """Until ``count`` requests (acknowledged ones, by default) have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.acked() if acked else self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.acked() if acked else list(self.requests)


@asynccontextmanager
async def running_receiver(secret: str) -> AsyncIterator[Receiver]:
    receiver = Receiver(secret=secret, port=free_port())
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=receiver.port, log_level="warning",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield receiver
    finally:
        server.should_exit = True
        await task
