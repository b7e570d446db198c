"""The API's outermost layer: whatever a request does, the caller gets a status and JSON ``{"error": ...}``,
and an answer that has not started within the request timeout is a 504 (:mod:`producers.http.timeout`).

Each route's own boundary (:meth:`producers.http.base.ApiContext.endpoint`) translates the errors of its
handler; this layer covers what no route sees:

- a request body that does not arrive within ``body_timeout`` seconds (a client that sends part of it and
  stops would otherwise hold the connection, and a task, forever): the body read fails with
  :class:`RequestTimeoutError`, answered 408;
- a NUL (``%00``) in the path or the query string: 400 (the JSON body's strings are held to the same rule
  by :mod:`producers.input.jsonbody`);
- unknown paths and methods (Starlette's plain-text 404 and 405): JSON, with the ``Allow`` header on a 405;
- anything raised outside a route's boundary (the MCP endpoint, a response that failed to render): translated
  by the same table, ``producers.errors.reply_for``, as long as the response has not started.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.errors import RequestTimeoutError, reply_for
from producers.http.base import JSONBody
from producers.http.timeout import limited, send_timed_out

__all__ = ["BODY_TIMEOUT", "HttpBoundary", "http_exception"]

log = logging.getLogger("ai_memory.http")

#: Seconds from the first read of a request body to its last byte; 2 MiB (the limit) at ~70 KiB/s.
BODY_TIMEOUT = 30.0


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors (404 no such path, 405 no such method there) as JSON."""
    assert isinstance(exc, HTTPException)
    message = f"{exc.detail.lower()}: {request.method} {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; a path served by several routes
        # (GET and POST /memories) allows the methods of all of them.
        headers["Allow"] = ", ".join(sorted(_allowed(request)))
    return JSONBody({"error": message}, status_code=exc.status_code, headers=headers)


def _allowed(request: Request) -> set[str]:
    allowed: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            allowed |= route.methods
    return allowed


class HttpBoundary:
    """ASGI middleware, the only one: the body-read deadline, the request timeout (the original's 504, see
    :mod:`producers.http.timeout`) and the last-resort JSON error reply. One layer, so a request pays for one
    wrapped ``send`` and one timer, and its app runs in the request's own task (no task per request)."""

    def __init__(self, app: ASGIApp, *, body_timeout: float = BODY_TIMEOUT, request_timeout: float = 0.0) -> None:
        self._app = app
        self._body_timeout = body_timeout
        self._request_timeout = request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            # Postgres stores no NUL and SQLite's FTS ends a query at one: refused here, once for every route.
            await JSONBody({"error": "NUL (%00) is not allowed in a URL"}, status_code=400)(scope, receive, send)
            return
        started = False
        timer: asyncio.Timeout | None = None

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if not started and message["type"] == "http.response.start":
                started = True
                if timer is not None and not timer.expired():
                    timer.reschedule(None)  # an answer that has started is never cut
            await send(message)

        app_receive = _deadline_receive(receive, self._body_timeout)
        try:
            if limited(scope, self._request_timeout):
                async with asyncio.timeout(self._request_timeout) as timer:
                    await self._app(scope, app_receive, tracked_send)
            else:
                await self._app(scope, app_receive, tracked_send)
        except Exception as exc:
            if started:
                raise  # headers are on the wire: nothing left to say but to drop the connection
            if timer is not None and timer.expired():
                await send_timed_out(send)  # whatever the cancelled request raised on its way out
                return
            reply = reply_for(exc)
            if reply.status >= 500:
                log.error("%s %s failed: %r", scope.get("method"), scope.get("path"), exc)
            await JSONBody(reply.body, status_code=reply.status, headers=reply.headers)(scope, receive, send)
        else:
            if timer is not None and timer.expired() and not started:
                await send_timed_out(send)  # the request ignored its cancellation and answered nothing


def _deadline_receive(receive: Receive, timeout: float) -> Receive:
    """``receive`` with one deadline over the whole body, counted from its first read; once the last body
    chunk arrived, later reads (a streaming response waiting for the disconnect) wait as long as they like."""
    deadline: float | None = None
    complete = False

    async def read() -> Message:
        nonlocal deadline, complete
        if complete:
            return await receive()
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeoutError(f"request body not received within {timeout:g} s") from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return read
