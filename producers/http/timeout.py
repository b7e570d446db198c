"""The original's per-request wall-clock timeout (its H7): a request that has not started answering within the
limit gets ``504 {"error": "request timed out"}``. The limit is ``AI_MEMORY_REQUEST_TIMEOUT_SECS`` (default 60,
as the original's ``request_timeout_secs``; 0 turns it off). Streams are exempt (``/mcp`` and the approvals
event stream), since their answer is meant to stay open; a response that has started is never cut.

A write cancelled by the timeout is either in the log or not (appends are atomic), as in the original.
The limit is enforced by :class:`producers.http.boundary.HttpBoundary` (one middleware, one timer per request);
this module holds the setting and the answer.
"""

from __future__ import annotations

import json
import os

from starlette.types import Scope, Send

__all__ = ["DEFAULT_TIMEOUT_SECS", "TIMEOUT_ENV", "limited", "send_timed_out", "timeout_from_env"]

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


def limited(scope: Scope, seconds: float) -> bool:
    """Whether the request of ``scope`` is held to ``seconds``: not when 0 (off), not for the streams."""
    return bool(seconds) and not scope["path"].startswith(_STREAMS)


async def send_timed_out(send: Send) -> None:
    """The 504 answer, sent as the original sends it."""
    await send({"type": "http.response.start", "status": 504,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]})
    await send({"type": "http.response.body", "body": _BODY})
