"""The original's per-request wall-clock timeout (its H7): a request that has not started answering within the
limit gets ``504 {"error": "request timed out"}``. The limit is ``AI_MEMORY_REQUEST_TIMEOUT_SECS`` (default 60,
as the original's ``request_timeout_secs``; 0 turns it off). Streams are exempt (``/mcp`` and the approvals
event stream), since their answer is meant to stay open; a response that has started is never cut.

A write cancelled by the timeout is either in the log or not (appends are atomic), as in the original.
"""

from __future__ import annotations

import asyncio
import json
import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_TIMEOUT_SECS", "TIMEOUT_ENV", "RequestTimeout", "timeout_from_env"]

TIMEOUT_ENV = "AI_MEMORY_REQUEST_TIMEOUT_SECS"
DEFAULT_TIMEOUT_SECS = 60.0
_STREAMS = ("/mcp", "/api/v1/approvals/stream")
_BODY = json.dumps({"error": "request timed out"}).encode()


def timeout_from_env() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_SECS
    except ValueError:
        msg = f"{TIMEOUT_ENV} must be a number of seconds, not {raw!r}"
        raise ValueError(msg) from None
    if value < 0:
        msg = f"{TIMEOUT_ENV} must not be negative, not {raw!r}"
        raise ValueError(msg)
    return value


class RequestTimeout:
    """ASGI middleware: 504 for a request whose answer has not started within ``seconds``."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.seconds or scope["path"].startswith(_STREAMS):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, tracked))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if task in done:
            task.result()
            return
        if started:  # already answering (a large body): let it finish
            await task
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await send({"type": "http.response.start", "status": 504,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]})
        await send({"type": "http.response.body", "body": _BODY})
