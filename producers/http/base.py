"""What every HTTP route module shares: the JSON response, body reading, the write answer, and
:class:`ApiContext` with the one error boundary (:meth:`ApiContext.endpoint`, through
``producers.errors.reply_for``) every handler is wrapped in.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from producers.errors import AuthError, PayloadTooLargeError, ValidationError, reply_for
from producers.http.operator import is_operator
from producers.http.params import named_agent
from producers.identity.agents import resolve_http_agent
from producers.identity.attestation import attested
from producers.identity.ownership import OwnerGate
from producers.identity.visibility import anonymous_reader, anonymous_reads_hidden, reading_as
from producers.input.jsonbody import parse_json_body
from producers.input.validation import MAX_BULK
from producers.memory.service import Gate, MemoryService
from producers.runtime.node import Node
from producers.sync.service import check_partitions, format_clock, parse_clock
from producers.tools.registry import Profile
from producers.write.writer import WriteResult
from schemas import Memory
from schemas.request_signing import HEADER_AGENT, Attestation

__all__ = ["CLOCK_HEADER", "MAX_BODY_BYTES", "MAX_WAIT_FOR", "V1", "VERSION", "WAIT_FOR_HEADER", "ApiContext",
           "Handler", "JSONBody", "body_items", "read_body", "read_json", "supplied_api_key", "written"]

log = logging.getLogger("ai_memory.http")

VERSION = "0.1.0"
#: The prefix of the original's API routes.
V1 = "/api/v1"
MAX_BODY_BYTES = 2 * 1024 * 1024
#: The node's vector clock on every response; a request's clock to wait for (read-your-writes across nodes).
CLOCK_HEADER = "X-AI-Memory-Clock"
WAIT_FOR_HEADER = "X-AI-Memory-Wait-For"
#: The longest a request waits for ``X-AI-Memory-Wait-For`` before answering 503.
MAX_WAIT_FOR = 5.0
#: The unsigned request's claimed agent (``X-Agent-Id``) that :meth:`ApiContext.attest` found keyless, in its scope.
_CLAIM_CHECKED = "ai_memory.claim_checked"
Handler = Callable[[Request], Awaitable[Response]]


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate echoed from input cannot be UTF-8: escape it (\ud800) rather than fail the reply.
            return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("ascii")


async def read_body(request: Request) -> bytes:
    """The raw body, at most 2 MiB. Kept on the request, so reading it again (read_json) costs nothing."""
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLargeError("request body exceeds the 2 MiB limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLargeError("request body exceeds the 2 MiB limit")
        chunks.append(chunk)
    raw = b"".join(chunks)
    request._body = raw  # Starlette's own cache: request.body() and request.stream() replay it
    return raw


async def read_json(request: Request) -> Any:
    """The body as strict JSON (:func:`producers.input.jsonbody.parse_json_body`); None when it is empty."""
    raw = await read_body(request)
    if not raw.strip():
        return None
    return parse_json_body(raw)


def body_items(body: Any, *, shape: str, limit: str) -> list[Any]:
    """The memories of a bulk or import body (an array, or an object with "memories"), at most MAX_BULK."""
    items = body.get("memories") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ValidationError(shape)
    if len(items) > MAX_BULK:
        raise ValidationError(limit)
    return items


def written(body: dict[str, Any], write: WriteResult) -> dict[str, Any]:
    """Every write answers with the log position of its event (read-your-writes tokens)."""
    if write.positions:
        body["offset"] = write.offset
        body["log_clock"] = write.clock()
    if write.quorum_acks is not None:
        body["quorum_acks"] = write.quorum_acks
    return body


def supplied_api_key(request: Request) -> str | None:
    """The API key a request presents: the ``X-API-Key`` header, else the ``api_key`` query parameter."""
    supplied = request.headers.get("x-api-key")
    if supplied is None:
        for pair in request.url.query.split("&"):
            name, _, value = pair.partition("=")
            if name == "api_key":
                return unquote(value)
    return supplied


class ApiContext:
    """What every route module gets: the node, its memory service, authorization, the error boundary and the
    caller's agent id. A route module (one per domain) has one ``<Domain>Routes`` class built from it, whose
    methods ``async def name(self, request) -> Response`` are the handlers, and ends with the table
    ``routes(api: ApiContext) -> list[Route]`` wrapping each in :meth:`endpoint` (``tests/test_structure.py``)."""

    def __init__(self, node: Node, *, api_key: str | None, profile: Profile | None = None) -> None:
        self.node = node
        self.service: MemoryService = node.service
        self._api_key = api_key
        self.profile = profile or Profile()
        self.anonymous_private_hidden = anonymous_reads_hidden()

    def _authorize(self, request: Request) -> None:
        if request.url.path == "/api/v1/health":
            return
        self.check_api_key(supplied_api_key(request))

    def check_api_key(self, supplied: str | None) -> None:
        """Accept ``supplied`` when it is the node's API key (compared in constant time) or the node has none.

        Raises:
            AuthError: a key is configured and ``supplied`` is missing or another.
        """
        if not self._api_key:
            return
        if supplied is None or not hmac.compare_digest(supplied.encode(), self._api_key.encode()):
            raise AuthError("missing or invalid API key")

    async def attest(self, request: Request) -> Attestation | None:
        """The verified agent signature of a signed request (401 when it does not verify); None when unsigned,
        after refusing an ``X-Agent-Id`` that names an agent with a registered key."""
        verifier = self.node.identity.verifier
        if not verifier.is_signed(request.headers):
            if claimed := request.headers.get(HEADER_AGENT):
                verifier.require(claimed)
                request.scope[_CLAIM_CHECKED] = claimed  # agent() need not look the same key up again
            return None
        body = await read_body(request)
        return verifier.verify(request.method, request.url.path, request.url.query, body, request.headers)

    def endpoint(self, handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                self._authorize(request)
                if wanted := request.headers.get(WAIT_FOR_HEADER):
                    clock = parse_clock(wanted)
                    await check_partitions(self.service.log, clock)
                    await self.service.wait_for(clock, timeout=MAX_WAIT_FOR)
                with attested(await self.attest(request)), reading_as(self.reader_id(request)):
                    response = await handler(request)
            except Exception as exc:
                reply = reply_for(exc)
                if reply.status >= 500:
                    log.error("%s %s failed: %r", request.method, request.url.path, exc)
                response = JSONBody({**reply.body}, status_code=reply.status, headers=reply.headers)
            response.headers[CLOCK_HEADER] = format_clock(self.service.runner.position)
            self.node.metrics.inc("ai_memory_http_requests_total", code=f"{response.status_code // 100}xx")
            return response

        return wrapped

    def reader_id(self, request: Request) -> str | None:
        """Who reads (the original's v0.7.0 #910): the ``X-Agent-Id`` header; reads then leave out other agents'
        private memories. Without it the read is anonymous: by default not filtered by author (as before
        v0.7.0); with ``AI_MEMORY_ANONYMOUS_READS=private-hidden`` it reads, as the original's, as a fresh
        ``anonymous:req-…`` agent that owns nothing, so private memories (scope private or unset) are left out."""
        claimed = request.headers.get(HEADER_AGENT)
        if not claimed:
            return anonymous_reader() if self.anonymous_private_hidden else None
        return named_agent(claimed)

    def owner_gate(self, request: Request, agent: str) -> OwnerGate | None:
        """The ownership rule for a change this request makes (:mod:`producers.identity.ownership`). A named
        caller (``X-Agent-Id``) changes only what it owns. An anonymous one follows the anonymous reads: by
        default (``private-hidden``), as in the original, it is a fresh agent that owns nothing; with the
        operator's opt-out ``AI_MEMORY_ANONYMOUS_READS=all`` it reads and changes anything (as before v0.7.0).
        The operator's token lifts the rule."""
        if is_operator(request) or (not request.headers.get(HEADER_AGENT) and not self.anonymous_private_hidden):
            return None
        return OwnerGate(agent)

    def memory_gate(self, request: Request, agent: str, *, inbox: bool = False) -> Gate | None:
        """:meth:`owner_gate`'s check for a change of one memory (``inbox``: its recipient may make it)."""
        gate = self.owner_gate(request, agent)
        return gate.memory(inbox=inbox) if gate is not None else None

    def owned(self, request: Request, agent: str) -> Callable[[Memory], bool] | None:
        """:meth:`owner_gate` as a filter, for a command by ids where another's memory reads as absent (archive,
        restore: the original's #940); None when the rule does not apply."""
        gate = self.owner_gate(request, agent)
        return partial(gate.owns, inbox=True) if gate is not None else None

    def agent(self, request: Request, body: Any = None) -> str:
        body_agent = body.get("agent_id") if isinstance(body, dict) else None
        agent = resolve_http_agent(body_agent, request.headers.get("x-agent-id"))
        if request.scope.get(_CLAIM_CHECKED) != agent:
            self.node.identity.verifier.require(agent)  # a keyed agent id is only claimed by its signed requests
        return agent
