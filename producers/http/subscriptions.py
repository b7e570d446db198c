"""Webhook subscriptions over HTTP: ``POST``/``GET``/``DELETE /api/v1/subscriptions`` (the original's routes,
DELETE with ``?id=`` or its S33 ``?agent_id=&namespace=``), the dead-letter list and replay
(``GET /api/v1/subscriptions/dlq``, ``GET /api/v1/subscriptions/replay``, and the original's
``POST /api/v1/memory_subscription_dlq_list`` and ``POST /api/v1/memory_subscription_replay``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.errors import ForbiddenError, ValidationError
from producers.http.base import V1, ApiContext, JSONBody, read_json, written
from producers.http.params import json_object
from producers.webhooks.subscriptions import SubscribeCommand
from producers.webhooks.wire import dead_letter_body, dlq_limit, subscription_body

__all__ = ["SubscriptionRoutes", "routes"]


def _str(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string")
    return value


class SubscriptionRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.service = api.node.subscriptions

    def _caller(self, request: Request, claimed: Any, where: str) -> str:
        """The caller from ``X-Agent-Id``; an ``agent_id`` in the body or query is a refinement that must agree
        (the original's #874/#901 rule: 403 otherwise), and names the caller only when no header is sent."""
        header = request.headers.get("x-agent-id")
        agent = self.api.agent(request, None if header else ({"agent_id": claimed} if claimed else None))
        if isinstance(claimed, str) and claimed and claimed != agent:
            raise ForbiddenError(f"agent_id {where} parameter does not match authenticated caller")
        return agent

    async def subscribe(self, request: Request) -> Response:
        body = await read_json(request)
        agent = self._caller(request, body.get("agent_id") if isinstance(body, dict) else None, "body")
        row, write = await self.service.subscribe(SubscribeCommand.parse(body, agent_id=agent), agent_id=agent)
        out = {"id": row.id, "url": row.url, "events": row.events, "namespace_filter": row.namespace_filter,
               "agent_filter": row.agent_filter, "created_by": row.created_by, "agent_id": agent}
        if row.namespace_filter:
            out["namespace"] = row.namespace_filter
        return JSONBody(written(out, write), status_code=201)

    async def list_(self, request: Request) -> Response:
        counts = self.service.dispatch_counts()
        agent = self._caller(request, request.query_params.get("agent_id"), "query")
        rows = [subscription_body(r, dispatch_count=counts.get(r.id, 0)) for r in self.service.owned(agent_id=agent)]
        return JSONBody({"count": len(rows), "subscriptions": rows})

    async def unsubscribe(self, request: Request) -> Response:
        params = dict(request.query_params)
        agent = self._caller(request, params.get("agent_id"), "query")
        sub_id, namespace = _str(params, "id"), _str(params, "namespace")
        if sub_id is None:
            if namespace is None:
                raise ValidationError("id or (agent_id, namespace) required")
            sub_id, removed, write = await self.service.unsubscribe_namespace(namespace, agent_id=agent)
        else:
            removed, write = await self.service.unsubscribe(sub_id, agent_id=agent)
        return JSONBody(written({"id": sub_id, "removed": removed}, write))

    async def _dead_letters(self, params: dict[str, Any], agent: str) -> Response:
        sub_id, limit = _str(params, "subscription_id"), dlq_limit(params.get("limit"))
        rows = [dead_letter_body(d) for d in self.service.dead_letters(agent_id=agent, subscription_id=sub_id,
                                                                       limit=limit)]
        return JSONBody({"count": len(rows), "subscription_id": sub_id, "limit": limit, "entries": rows})

    async def _replay(self, params: dict[str, Any], agent: str) -> Response:
        sub_id = _str(params, "subscription_id", required=True)
        since = params.get("since")
        if isinstance(since, int) and not isinstance(since, bool):
            since = str(since)
        since = _str({"since": since}, "since", required=True)
        assert sub_id is not None and since is not None
        result = await self.service.replay(sub_id, since, agent_id=agent)
        return JSONBody({"subscription_id": result.subscription_id, "since": result.since,
                         "count": len(result.events), "events": result.events, "truncated": result.truncated})

    async def dlq_get(self, request: Request) -> Response:
        return await self._dead_letters(dict(request.query_params), self.api.agent(request))

    async def replay_get(self, request: Request) -> Response:
        return await self._replay(dict(request.query_params), self.api.agent(request))

    async def dlq_post(self, request: Request) -> Response:
        body = await read_json(request) or {}
        return await self._dead_letters(json_object(body), self.api.agent(request, body))

    async def replay_post(self, request: Request) -> Response:
        body = await read_json(request) or {}
        return await self._replay(json_object(body), self.api.agent(request, body))


def routes(api: ApiContext) -> list[Route]:
    s, e = SubscriptionRoutes(api), api.endpoint
    return [
        Route(f"{V1}/subscriptions", e(s.subscribe), methods=["POST"]),
        Route(f"{V1}/subscriptions", e(s.list_), methods=["GET"]),
        Route(f"{V1}/subscriptions", e(s.unsubscribe), methods=["DELETE"]),
        Route(f"{V1}/subscriptions/dlq", e(s.dlq_get), methods=["GET"]),
        Route(f"{V1}/subscriptions/replay", e(s.replay_get), methods=["GET"]),
        Route(f"{V1}/memory_subscription_dlq_list", e(s.dlq_post), methods=["POST"]),
        Route(f"{V1}/memory_subscription_replay", e(s.replay_post), methods=["POST"]),
    ]
