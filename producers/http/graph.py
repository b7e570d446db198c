"""The original's link, knowledge-graph and entity routes (paths and bodies as its ``/api/v1``), over
:class:`producers.graph.service.GraphService`. Every read also takes ``as_of`` (a log offset: the graph as it was then)
and ``as_agent`` (only memories that agent may see)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.errors import NotFoundError, ValidationError
from producers.graph.service import GraphService, check_as_of, invalidation_body, kg_body, link_json
from producers.http.base import V1, ApiContext, JSONBody, read_json, written
from producers.http.params import json_object
from producers.input.commands import MAX_INT64, parse_int
from producers.input.validation import check_agent_id
from projectors import AmbiguousIdError
from schemas import Memory

__all__ = ["GraphRoutes", "routes"]


def _int(value: Any, name: str) -> int | None:
    """An integer (a JSON number or a query string's digits), any sign, within 64 bits; the graph service
    checks the range."""
    if isinstance(value, bool) or not isinstance(value, int | str | None):
        raise ValidationError(f"{name} must be an integer")
    return parse_int(value, name, minimum=-MAX_INT64)


def _as_agent(value: Any) -> str | None:
    return None if value in (None, "") else check_agent_id(value)


class GraphRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.graph: GraphService = api.node.graph

    async def _memory(self, memory_id: Any) -> Memory | None:
        """The memory a link names, for the ownership rule; None when there is none (the link's own checks
        then answer, with their words)."""
        if not isinstance(memory_id, str) or not memory_id:
            return None
        try:
            return await self.api.node.service.get(memory_id)  # one the caller may not read: the link's 404
        except (NotFoundError, ValidationError, AmbiguousIdError):
            return None

    async def _source_owner(self, request: Request, body: dict[str, Any]) -> str:
        """The caller, once the ownership rule let it make or end a link from ``source_id`` (the original's)."""
        agent = self.api.agent(request, body)
        gate = self.api.owner_gate(request, agent)
        if gate is not None and (source := await self._memory(body.get("source_id"))) is not None:
            gate.source(source)
        return agent

    async def create_link(self, request: Request) -> Response:
        body = json_object(await read_json(request))
        agent = await self._source_owner(request, body)
        link, write = await self.graph.link(body.get("source_id"), body.get("target_id"),
                                            body.get("relation") or "related_to", agent_id=agent, any_relation=True)
        return JSONBody(written({"linked": True, "attest_level": link.attest_level}, write), status_code=201)

    async def delete_link(self, request: Request) -> Response:
        body = json_object(await read_json(request))
        agent = self.api.agent(request, body)
        gate = self.api.owner_gate(request, agent)
        if gate is not None and (source := await self._memory(body.get("source_id"))) is not None:
            gate.link_ends(source, await self._memory(body.get("target_id")))
        deleted, write = await self.graph.unlink(body.get("source_id"), body.get("target_id"), body.get("relation"),
                                                 agent_id=agent)
        return JSONBody(written({"deleted": deleted}, write))

    async def get_links(self, request: Request) -> Response:
        q = request.query_params
        links = await self.graph.get_links(request.path_params["id"], as_of=check_as_of(q.get("as_of")),
                                           as_agent=_as_agent(q.get("as_agent")))
        return JSONBody({"links": [link_json(lk) for lk in links]})

    async def lineage(self, request: Request) -> Response:
        q = request.query_params
        node, rows = await self.graph.lineage(request.path_params["id"],
                                              max_depth=_int(q.get("max_depth"), "max_depth"),
                                              as_of=check_as_of(q.get("as_of")), as_agent=_as_agent(q.get("as_agent")))
        return JSONBody({"id": node.id, "title": node.title, "namespace": node.namespace,
                         "lineage": [r.to_json() for r in rows], "count": len(rows)})

    async def kg_query(self, request: Request) -> Response:
        body = json_object(await read_json(request))
        agents = body.get("allowed_agents")
        if agents is not None and not isinstance(agents, list):
            raise ValidationError("allowed_agents must be an array of agent ids")
        # ``from``/``to``: the original's alias for ``source_id`` and its find-path projection (scenario S82).
        source_id = body.get("source_id") if body.get("source_id") is not None else body.get("from")
        to = body.get("to")
        if to is not None and not isinstance(to, str):
            raise ValidationError("to must be a memory id")
        depth, rows = await self.graph.kg_query(
            source_id, max_depth=_int(body.get("max_depth"), "max_depth"), valid_at=body.get("valid_at"),
            allowed_agents=agents, limit=_int(body.get("limit"), "limit"), as_of=check_as_of(body.get("as_of")),
            as_agent=_as_agent(body.get("as_agent")))
        return JSONBody(kg_body(source_id, depth, rows, to=to))

    async def kg_timeline(self, request: Request) -> Response:
        """The original v0.7.0's (#944): a named caller reads the timeline of a memory it owns (or was sent, or
        that has no owner), 403 otherwise; a source that does not exist, or that the caller may not see, is 404."""
        q = request.query_params
        source_id = q.get("source_id")
        caller = self.api.reader_id(request)
        gate = self.api.owner_gate(request, caller) if caller is not None else None
        if gate is not None and (source := await self._memory(source_id)) is not None:
            gate.source(source)
        events = await self.graph.timeline(source_id, since=q.get("since"), until=q.get("until"),
                                           limit=_int(q.get("limit"), "limit"), as_of=check_as_of(q.get("as_of")),
                                           as_agent=_as_agent(q.get("as_agent")))
        return JSONBody({"source_id": source_id, "events": events, "count": len(events)})

    async def kg_invalidate(self, request: Request) -> Response:
        body = json_object(await read_json(request))
        agent = await self._source_owner(request, body)  # as a new link
        result = await self.graph.invalidate(body.get("source_id"), body.get("target_id"), body.get("relation"),
                                             body.get("valid_until"), agent_id=agent)
        out = invalidation_body(body, result)
        return JSONBody(written(out, result.write) if result.write is not None else out)

    async def entity_register(self, request: Request) -> Response:
        body = json_object(await read_json(request))
        aliases = body.get("aliases") or []
        if not isinstance(aliases, list):
            raise ValidationError("aliases must be an array of strings")
        reg = await self.graph.entity_register(body.get("canonical_name"), body.get("namespace"), aliases,
                                               body.get("metadata"), agent_id=self.api.agent(request, body))
        return JSONBody(written({"entity_id": reg.entity_id, "canonical_name": reg.canonical_name,
                                 "namespace": reg.namespace, "aliases": reg.aliases, "created": reg.created},
                                reg.write), status_code=201 if reg.created else 200)

    async def entity_by_alias(self, request: Request) -> Response:
        q = request.query_params
        return JSONBody(await self.graph.entity_by_alias(q.get("alias"), q.get("namespace"),
                                                         as_of=check_as_of(q.get("as_of")),
                                                         as_agent=_as_agent(q.get("as_agent"))))


def routes(api: ApiContext) -> list[Route]:
    g, e = GraphRoutes(api), api.endpoint
    return [
        Route(f"{V1}/links", e(g.create_link), methods=["POST"]),
        Route(f"{V1}/links", e(g.delete_link), methods=["DELETE"]),
        Route(f"{V1}/links/{{id}}", e(g.get_links), methods=["GET"]),
        Route(f"{V1}/memories/{{id}}/lineage", e(g.lineage), methods=["GET"]),
        Route(f"{V1}/kg/query", e(g.kg_query), methods=["POST"]),
        Route(f"{V1}/kg/timeline", e(g.kg_timeline), methods=["GET"]),
        Route(f"{V1}/kg/invalidate", e(g.kg_invalidate), methods=["POST"]),
        Route(f"{V1}/entities", e(g.entity_register), methods=["POST"]),
        Route(f"{V1}/entities/by_alias", e(g.entity_by_alias), methods=["GET"]),
        Route(f"{V1}/entities/by-alias", e(g.entity_by_alias), methods=["GET"]),
    ]
