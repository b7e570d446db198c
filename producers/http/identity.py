"""HTTP routes of the identity domain: agent keys, the operator's mandatory-``as_agent`` namespaces, taxonomy.

``/api/v1/identity/…`` and ``/api/v1/admin/…`` go beyond the original; ``/api/v1/taxonomy`` is its route.
Admin routes need the operator token: ``AI_MEMORY_ADMIN_TOKEN`` in the server's environment, sent as
``X-AI-Memory-Admin-Token``; without a configured token they answer 403 (the CLI verbs work locally instead).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.errors import ValidationError
from producers.http.base import V1, ApiContext, JSONBody, read_json, written
from producers.http.operator import is_operator, require_operator
from producers.http.params import json_object
from producers.input.commands import parse_int
from producers.memory.taxonomy import as_agent_param, visible_taxonomy

__all__ = ["IdentityRoutes", "routes"]

OPERATOR_ACTOR = "operator:http"


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{name} is required (a string)")
    return value


class IdentityRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.identity = api.node.identity

    async def register_key(self, request: Request) -> Response:
        body = json_object(await read_json(request))
        agent_id = _string(body, "agent_id")
        timestamp = parse_int(body.get("timestamp"), "timestamp")
        if timestamp is None:
            raise ValidationError("timestamp is required (unix seconds, as signed in the proof)")
        key, write = await self.identity.register_key(agent_id, _string(body, "public_key"), timestamp,
                                                      _string(body, "proof"), actor=agent_id,
                                                      operator=is_operator(request))
        return JSONBody(written(key.to_api(), write), status_code=201 if write.positions else 200)

    async def list_keys(self, request: Request) -> Response:
        keys = [k.to_api() for k in await self.identity.keys()]
        return JSONBody({"keys": keys, "count": len(keys)})

    async def revoke_key(self, request: Request) -> Response:
        require_operator(request)
        write = await self.identity.revoke_key(request.path_params["agent_id"], actor=OPERATOR_ACTOR,
                                               reason=request.query_params.get("reason", ""))
        return JSONBody(written({"revoked": True, "agent_id": request.path_params["agent_id"]}, write))

    async def list_required(self, request: Request) -> Response:
        prefixes = await self.identity.required_prefixes()
        return JSONBody({"prefixes": prefixes, "count": len(prefixes)})

    async def set_required(self, request: Request) -> Response:
        require_operator(request)
        body = json_object(await read_json(request))
        required = body.get("required", True)
        if not isinstance(required, bool):
            raise ValidationError("required must be a boolean")
        reason = body.get("reason", "")
        write = await self.identity.set_as_agent_required(_string(body, "prefix"), required, actor=OPERATOR_ACTOR,
                                                          reason=reason if isinstance(reason, str) else "")
        return JSONBody(written({"prefix": body["prefix"], "required": required}, write))

    async def taxonomy(self, request: Request) -> Response:
        params = request.query_params
        tree = await visible_taxonomy(
            self.api.node, prefix=params.get("prefix") or params.get("namespace_prefix") or "",
            depth=parse_int(params.get("depth"), "depth", default=8) or 0,
            limit=parse_int(params.get("limit"), "limit", default=1000) or 1, as_agent=as_agent_param(params))
        return JSONBody(tree)


def routes(api: ApiContext) -> list[Route]:
    r, e = IdentityRoutes(api), api.endpoint
    return [
        Route(f"{V1}/identity/keys", e(r.register_key), methods=["POST"]),
        Route(f"{V1}/identity/keys", e(r.list_keys), methods=["GET"]),
        Route(f"{V1}/identity/keys/{{agent_id}}", e(r.revoke_key), methods=["DELETE"]),
        Route(f"{V1}/admin/as_agent_required", e(r.list_required), methods=["GET"]),
        Route(f"{V1}/admin/as_agent_required", e(r.set_required), methods=["POST"]),
        Route(f"{V1}/taxonomy", e(r.taxonomy), methods=["GET"]),
    ]
