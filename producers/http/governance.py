"""HTTP routes of governance, as the original's: namespace standards, agents, pending actions and their
decisions, the HMAC-signed approval API and its SSE feed (``/api/v1/approvals/stream``).

The feed is read from the log (not from an in-process bus), so a decision made on any node reaches every
subscriber; only events whose signature verifies are shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from producers.errors import ValidationError
from producers.governance import REMEMBER, Decision
from producers.http.approval_auth import (
    APPROVAL_MAX_AGE_SECS,
    APPROVAL_MAX_SKEW_SECS,
    ApprovalAuth,
    approval_signature,
)
from producers.http.base import V1, ApiContext, JSONBody, read_body, read_json
from producers.http.operator import is_operator
from producers.http.params import query_flag
from producers.identity.visibility import current_caller
from producers.input.commands import parse_int
from producers.input.jsonbody import parse_json_body
from producers.runtime.node import Node
from producers.tools.meta import check_agent_type
from schemas import SchemaError, decode_payload, verify
from schemas.events import PendingDecided, PendingRequested

__all__ = ["APPROVAL_MAX_AGE_SECS", "APPROVAL_MAX_SKEW_SECS", "GovernanceRoutes", "approval_events",
           "approval_signature", "routes", "visible_to"]

KEEPALIVE_SECS = 15.0


def _decision_reply(decision: Decision) -> Response:
    return JSONBody(decision.body, status_code=202 if decision.collecting else 200)


def _standard_body(body: Any) -> dict[str, Any]:
    """The original's body: ``{id, parent, governance, namespace}``, possibly nested under ``standard``."""
    if not isinstance(body, dict):
        return {}
    inner = body.get("standard")
    if isinstance(inner, dict):
        outer = {k: v for k, v in body.items() if k != "standard"}
        return {**outer, **{k: v for k, v in inner.items() if v is not None}}
    return body


def visible_to(subscriber: str, requested_by: str) -> bool:
    """The original's feed filter: nothing without an agent id; ``host:…`` operators see every event; an agent
    sees the events of its own requests."""
    if not subscriber:
        return False
    return subscriber.startswith("host:") or subscriber == requested_by


async def approval_events(node: Node, subscriber: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` for every approval requested or decided from now on that ``subscriber`` may see."""
    async for record in node.log.subscribe(after=await node.log.end_offsets()):
        envelope = record.event.envelope
        if envelope.type not in (PendingRequested.TYPE, PendingDecided.TYPE):
            continue
        try:
            verify(record.event, node.keyring)
            payload = decode_payload(envelope.type, envelope.payload)
        except SchemaError:
            continue
        if isinstance(payload, PendingRequested):
            p = payload.pending
            if visible_to(subscriber, p.requested_by):
                yield "approval_requested", {"event": "approval_requested", "pending_id": p.id,
                                             "action_type": p.action_type, "namespace": p.namespace,
                                             "requested_by": p.requested_by, "requested_at": p.requested_at}
        elif visible_to(subscriber, payload.requested_by):
            yield "approval_decided", {"event": "approval_decided", "pending_id": payload.id,
                                       "decision": "approve" if payload.status == "approved" else "deny",
                                       "decided_by": payload.decided_by, "remember": payload.remember,
                                       "namespace": payload.namespace, "requested_by": payload.requested_by}


async def _sse(node: Node, subscriber: str) -> AsyncIterator[bytes]:
    """Server-sent events with a keep-alive comment every 15 s; the log is read by a task of its own, so a quiet
    log never holds up the keep-alives."""
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=1024)

    async def pump() -> None:
        async for item in approval_events(node, subscriber):
            await queue.put(item)

    task = asyncio.create_task(pump())
    try:
        yield b": connected\n\n"
        while True:
            try:
                name, data = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECS)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            yield f"event: {name}\ndata: {json.dumps(data, sort_keys=True)}\n\n".encode()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class GovernanceRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.node = api.node
        self.gov = api.node.governance
        self.approval_auth = ApprovalAuth(api.node.config.governance.hmac_secret)

    # -- namespace standards ----------------------------------------------------------------------------

    async def _set_standard(self, request: Request, namespace: str | None) -> Response:
        body = _standard_body(await read_json(request))
        ns = namespace or body.get("namespace")
        if not isinstance(ns, str):
            raise ValidationError("namespace is required")
        out = await self.gov.set_standard(ns, standard_id=body.get("id"), parent=body.get("parent"),
                                          governance=body.get("governance"), agent_id=self.api.agent(request, body))
        return JSONBody(out, status_code=201)

    async def set_standard_qs(self, request: Request) -> Response:
        return await self._set_standard(request, None)

    async def set_standard_path(self, request: Request) -> Response:
        return await self._set_standard(request, request.path_params["ns"])

    async def get_standard_path(self, request: Request) -> Response:
        return JSONBody(await self.gov.get_standard(request.path_params["ns"],
                                                    inherit=query_flag(request.query_params, "inherit")))

    async def clear_standard_qs(self, request: Request) -> Response:
        ns = request.query_params.get("namespace")
        if ns is None:
            raise ValidationError("namespace is required")
        return JSONBody(await self.gov.clear_standard(ns, agent_id=self.api.agent(request)))

    async def clear_standard_path(self, request: Request) -> Response:
        return JSONBody(await self.gov.clear_standard(request.path_params["ns"], agent_id=self.api.agent(request)))

    # -- agents and quotas ------------------------------------------------------------------------------

    async def list_agents(self, request: Request) -> Response:
        agents = [a.to_api() for a in await self.gov.list_agents()]
        return JSONBody({"count": len(agents), "agents": agents})

    async def register_agent(self, request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("agent_id"), str):
            raise ValidationError("agent_id is required")
        agent_type = check_agent_type(str(body.get("agent_type") or ""))
        # A keyed agent's registry entry (type, capabilities) is changed only by its signed requests.
        out = await self.gov.register_agent(self.api.agent(request, body), agent_type, body.get("capabilities"))
        return JSONBody(out, status_code=201)

    async def quotas(self, request: Request) -> Response:
        return JSONBody(await self.gov.quota_status(request.query_params.get("agent_id") or None))

    # -- pending actions and approvals ------------------------------------------------------------------

    async def list_pending(self, request: Request) -> Response:
        params = request.query_params
        limit = parse_int(params.get("limit"), "limit", default=100) or 0
        # What a pending action would write is shown to those who may see it; the operator's token shows all.
        reader = None if is_operator(request) else current_caller()
        found = await self.gov.list_pending(status=params.get("status") or None, limit=limit, reader=reader)
        return JSONBody({"count": len(found), "pending": [p.to_api() for p in found]})

    async def approve(self, request: Request) -> Response:
        return _decision_reply(await self.gov.approve(request.path_params["id"], agent_id=self.api.agent(request)))

    async def reject(self, request: Request) -> Response:
        return _decision_reply(await self.gov.reject(request.path_params["id"], agent_id=self.api.agent(request)))

    async def approval(self, request: Request) -> Response:
        raw = await read_body(request)
        # The signature binds the pending id and the approver as named (the header, before resolution).
        self.approval_auth.check(request.headers, request.path_params["id"], request.headers.get("x-agent-id", ""),
                                 raw)
        body = parse_json_body(raw)
        decision = body.get("decision") if isinstance(body, dict) else None
        remember = body.get("remember", "once") if isinstance(body, dict) else "once"
        if decision not in ("approve", "deny") or remember not in REMEMBER:
            raise ValidationError('invalid body: decision must be "approve" or "deny", remember once|session|forever')
        agent, pending_id = self.api.agent(request), request.path_params["id"]
        if decision == "approve":
            return _decision_reply(await self.gov.approve(pending_id, agent_id=agent, remember=remember))
        return _decision_reply(await self.gov.reject(pending_id, agent_id=agent, remember=remember))

    async def approvals_stream(self, request: Request) -> Response:
        subscriber = request.headers.get("x-agent-id", "")
        return StreamingResponse(_sse(self.node, subscriber), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def routes(api: ApiContext) -> list[Route]:
    g, e = GovernanceRoutes(api), api.endpoint
    return [
        Route(f"{V1}/namespaces", e(g.set_standard_qs), methods=["POST"]),
        Route(f"{V1}/namespaces", e(g.clear_standard_qs), methods=["DELETE"]),
        Route(f"{V1}/namespaces/{{ns:path}}/standard", e(g.get_standard_path), methods=["GET"]),
        Route(f"{V1}/namespaces/{{ns:path}}/standard", e(g.set_standard_path), methods=["POST"]),
        Route(f"{V1}/namespaces/{{ns:path}}/standard", e(g.clear_standard_path), methods=["DELETE"]),
        Route(f"{V1}/agents", e(g.list_agents), methods=["GET"]),
        Route(f"{V1}/agents", e(g.register_agent), methods=["POST"]),
        Route(f"{V1}/pending", e(g.list_pending), methods=["GET"]),
        Route(f"{V1}/pending/{{id}}/approve", e(g.approve), methods=["POST"]),
        Route(f"{V1}/pending/{{id}}/reject", e(g.reject), methods=["POST"]),
        Route(f"{V1}/approvals/stream", e(g.approvals_stream), methods=["GET"]),
        Route(f"{V1}/approvals/{{id}}", e(g.approval), methods=["POST"]),
        Route(f"{V1}/quotas", e(g.quotas), methods=["GET"]),
    ]
