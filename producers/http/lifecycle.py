"""HTTP routes of the lifecycle and messaging domains, with the original's paths and bodies:

``GET/POST/DELETE /api/v1/archive``, ``POST /api/v1/archive/{id}/restore``, ``GET /api/v1/archive/stats``,
``POST /api/v1/consolidate``, ``POST /api/v1/session/start``, ``POST /api/v1/notify``, ``GET /api/v1/inbox``.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.errors import ValidationError
from producers.http.base import V1, ApiContext, JSONBody, read_json, written
from producers.http.params import json_object, named_agent
from producers.input.commands import parse_int
from producers.input.validation import check_namespace
from producers.lifecycle.messaging import MAX_INBOX
from producers.memory.taxonomy import as_agent_param

__all__ = ["LifecycleRoutes", "routes"]

MAX_ARCHIVE_LIST = 1000
_TRUE = ("true", "1", "yes")


def _object(body: Any) -> dict[str, Any]:
    return json_object(body, empty_ok=True, error="request body must be a JSON object")


def _namespace(value: Any) -> str | None:
    return check_namespace(value) if value else None


class LifecycleRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.lifecycle = api.node.lifecycle
        self.messaging = api.node.messaging

    # -- archive ----------------------------------------------------------------------------------------

    async def list_archive(self, request: Request) -> Response:
        q = request.query_params
        limit = parse_int(q.get("limit"), "limit", default=50)
        if limit == 0:
            raise ValidationError("limit must be >= 1")
        items = await self.lifecycle.list_archived(namespace=_namespace(q.get("namespace")),
                                                   limit=min(limit or 50, MAX_ARCHIVE_LIST),
                                                   offset=parse_int(q.get("offset"), "offset", default=0) or 0,
                                                   as_agent=as_agent_param(q))
        return JSONBody({"archived": [a.to_api() for a in items], "count": len(items)})

    async def archive(self, request: Request) -> Response:
        body = _object(await read_json(request))
        ids, reason = body.get("ids"), body.get("reason")
        if not isinstance(ids, list):
            raise ValidationError("ids is required (array of memory IDs)")
        if reason is not None and not isinstance(reason, str):
            raise ValidationError("reason must be a string")
        agent = self.api.agent(request, body)
        archived, missing, write = await self.lifecycle.archive(ids, reason=reason or None, agent_id=agent,
                                                                may=self.api.owned(request, agent))
        return JSONBody(written({"archived": archived, "missing": missing, "count": len(archived),
                                 "reason": reason or "archive"}, write))

    async def purge(self, request: Request) -> Response:
        """``?older_than_days=N`` as the original (nothing given: purge all); ``?ids=a,b`` purges those only.
        A caller purges its own archived memories (``owner_scope: caller``); the operator every one (``admin``)."""
        q = request.query_params
        days = q.get("older_than_days")
        older = parse_int(days, "older_than_days", minimum=-(2**31)) if days else None
        ids = [i for i in q["ids"].split(",") if i] if q.get("ids") else None
        agent = self.api.agent(request)
        gate = self.api.owner_gate(request, agent)
        purged, write = await self.lifecycle.purge(older_than_days=older, ids=ids, agent_id=agent,
                                                   may=gate.purges if gate else None)
        return JSONBody(written({"purged": purged, "owner_scope": "caller" if gate else "admin"}, write))

    async def restore(self, request: Request) -> Response:
        agent = self.api.agent(request)
        memory, write = await self.lifecycle.restore(request.path_params["id"], agent_id=agent,
                                                     may=self.api.owned(request, agent))
        return JSONBody(written({"restored": True, "id": memory.id}, write))

    async def stats(self, request: Request) -> Response:
        return JSONBody((await self.lifecycle.archive_stats(as_agent=as_agent_param(request.query_params))).to_api())

    # -- consolidate, session start ---------------------------------------------------------------------

    async def consolidate(self, request: Request) -> Response:
        body = _object(await read_json(request))
        ids = body.get("ids")
        if not isinstance(ids, list):
            raise ValidationError("ids is required (array of memory IDs)")
        for name in ("title", "summary"):
            if not isinstance(body.get(name), str):
                raise ValidationError(f"{name} is required")
        done = await self.lifecycle.consolidate(ids, title=body["title"], summary=body["summary"],
                                                namespace=body.get("namespace") or "global",
                                                tier=body.get("tier") or "long", agent_id=self.api.agent(request, body))
        return JSONBody(written({"id": done.memory.id, "consolidated": len(done.sources)}, done.write),
                        status_code=201)

    async def session_start(self, request: Request) -> Response:
        """The MCP tool's answer plus an advisory ``session_id`` (not stored, as the original) and the
        ``agent_id`` given in the body, if any."""
        body = _object(await read_json(request))
        agent = body.get("agent_id")
        if agent is not None:
            named_agent(agent)
        limit = parse_int(body.get("limit"), "limit", default=10) or 0
        out = await self.lifecycle.session_start(namespace=_namespace(body.get("namespace")), limit=limit,
                                                 as_agent=as_agent_param(body))
        out["session_id"] = str(uuid.uuid4())
        if agent is not None:
            out["agent_id"] = agent
        return JSONBody(out)

    # -- messaging --------------------------------------------------------------------------------------

    async def notify(self, request: Request) -> Response:
        body = _object(await read_json(request))
        payload = body.get("payload") if body.get("payload") is not None else body.get("content")
        if payload is None:
            raise ValidationError("payload or content is required")
        for name in ("target_agent_id", "title"):
            if not isinstance(body.get(name), str):
                raise ValidationError(f"{name} is required")
        priority = parse_int(body.get("priority"), "priority", default=5, minimum=-(2**31))
        out = await self.messaging.notify(target=body["target_agent_id"], title=body["title"], payload=payload,
                                          priority=5 if priority is None else priority,
                                          tier=body.get("tier") or "mid",
                                          sender=self.api.agent(request, body))
        return JSONBody(out, status_code=201)

    async def inbox(self, request: Request) -> Response:
        """The owner is ``?agent_id=``, else the ``X-Agent-Id`` header (as the original); a keyed agent's inbox
        is read only by its signed requests."""
        q = request.query_params
        owner = self.api.agent(request, {"agent_id": q.get("agent_id") or None})
        limit = parse_int(q.get("limit"), "limit", default=50) or 0
        out = await self.messaging.inbox(owner, unread_only=q.get("unread_only", "").lower() in _TRUE,
                                         limit=min(limit, MAX_INBOX))
        return JSONBody(out)


def routes(api: ApiContext) -> list[Route]:
    r, e = LifecycleRoutes(api), api.endpoint
    return [
        Route(f"{V1}/archive", e(r.list_archive), methods=["GET"]),
        Route(f"{V1}/archive", e(r.archive), methods=["POST"]),
        Route(f"{V1}/archive", e(r.purge), methods=["DELETE"]),
        Route(f"{V1}/archive/stats", e(r.stats), methods=["GET"]),
        Route(f"{V1}/archive/{{id}}/restore", e(r.restore), methods=["POST"]),
        Route(f"{V1}/consolidate", e(r.consolidate), methods=["POST"]),
        Route(f"{V1}/session/start", e(r.session_start), methods=["POST"]),
        Route(f"{V1}/notify", e(r.notify), methods=["POST"]),
        Route(f"{V1}/inbox", e(r.inbox), methods=["GET"]),
    ]
