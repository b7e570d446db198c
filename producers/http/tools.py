"""The routes v0.7.0 added to expose MCP tools over HTTP, as one bridge over the tool handlers (no second copy of
any tool's logic):

- ``POST /api/v1/memory_<name>``: the body is the tool's arguments, the answer the tool's JSON (200); a refusal
  is 400 ``{"error": …}`` as the original's ``route_1111`` wrappers answer every tool error (a feature this node
  lacks stays 501, a pending approval 202, an unavailable log 503);
- ``GET /api/v1/tools/list``: the serving profile's tools (``{"tools": [...]}``, trimmed as MCP ``tools/list``);
- the v0.7.0 routes with their own paths and shapes: ``/kg/find_paths`` (and ``/find_paths``), ``/links/verify``,
  ``/quota/status``, ``/share``, ``/capture_turn``, the ``/skill/...`` routes, and ``/auto_tag`` and
  ``/expand_query`` (503 ``LLM not configured`` without an LLM, as the original).

The caller is the HTTP caller (``X-Agent-Id``, the API's usual resolution), handed to the tool as its
``agent_id`` unless the body names one.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producers.errors import (
    ActionPendingError,
    CommandError,
    FeatureUnavailableError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from producers.http.base import V1, ApiContext, JSONBody, read_json
from producers.http.operator import ADMIN_TOKEN_ENV, ADMIN_TOKEN_HEADER, require_operator
from producers.http.params import json_object, named_agent
from producers.llm.client import LlmClient, LlmConfig
from producers.tools import HANDLERS, ToolContext
from producers.tools.calls import error_text
from producers.tools.client import ClientIdentity
from producers.tools.registry import Profile, tools_for_profile

__all__ = ["BRIDGED_TOOLS", "ToolRoutes", "routes"]

#: ``POST /api/v1/memory_<name>`` routes of the original (its ``route_1111.rs`` and ``load_family_handler``).
#: ``subscription_replay`` and ``subscription_dlq_list`` have theirs in ``producers.http.subscriptions``.
BRIDGED_TOOLS: tuple[str, ...] = (
    "load_family", "smart_load", "reflect", "recall_observations", "reflection_origin", "dependents_of_invalidated",
    "export_reflection", "atomise", "calibrate_confidence", "verify", "replay", "rule_list", "check_agent_action",
)


_TURN_FIELDS = ("host_session_id", "host_turn_index", "role", "content")
#: The original caps auto_tag's answer (``AUTO_TAG_MAX_TAGS``).
_AUTO_TAG_MAX_TAGS = 8


def _object(body: Any) -> dict[str, Any]:
    return json_object(body, empty_ok=True)


def operator(request: Request) -> None:
    """Routes that touch the node's file system (a skill folder read or an export written) need the operator's
    token, as ``/api/v1/admin`` routes do (the original gates them behind its admin role)."""
    require_operator(request, f"this route reads or writes the node's files: it needs {ADMIN_TOKEN_HEADER} "
                              f"(the server's {ADMIN_TOKEN_ENV})")


class _BadGatewayError(CommandError):
    status = 502


async def _llm_call(what: str, call: Any) -> list[str]:
    """An LLM answer; a failing endpoint is 502 ``LLM <what> failed: …`` as the original."""
    try:
        result: list[str] = await call
    except UnavailableError as exc:
        raise _BadGatewayError(f"LLM {what} failed: {exc}") from None
    return result


class ToolRoutes:
    """Runs MCP tool handlers for HTTP requests: the full catalog, the HTTP caller, the node's optional LLM."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self._llm: LlmClient | None = None
        self._llm_config = LlmConfig.from_env()

    @property
    def llm(self) -> LlmClient | None:
        # Opened on first use: most nodes never serve an LLM route.
        if self._llm is None and self._llm_config is not None:
            self._llm = LlmClient(self._llm_config)
        return self._llm

    # -- the bridge -------------------------------------------------------------------------------------

    async def _run(self, tool: str, request: Request, args: dict[str, Any]) -> Any:
        """The tool's answer; its errors are raised as they are (the caller picks the status)."""
        args = {**args, "agent_id": args.get("agent_id") or self.api.agent(request)}
        ctx = ToolContext(self.api.node, Profile.parse("full"), ClientIdentity(None), self.llm)
        return await HANDLERS[tool](ctx, args)

    async def _answer(self, tool: str, request: Request, args: dict[str, Any]) -> Response:
        """The original's wrapper: the tool's JSON, or 400 with the tool's message."""
        try:
            return JSONBody(await self._run(tool, request, args))
        except (ActionPendingError, FeatureUnavailableError, UnavailableError):
            raise  # 202 / 501 / 503 keep their meaning
        except CommandError as exc:
            if exc.status >= 500:
                raise
            return JSONBody({"error": error_text(exc)}, status_code=400)

    async def bridged(self, tool: str, request: Request) -> Response:
        """``POST /api/v1/<tool>``: the body is the tool's arguments (bound to ``tool`` in the route table)."""
        return await self._answer(tool, request, _object(await read_json(request)))

    # -- the v0.7.0 routes with their own paths and shapes ----------------------------------------------

    async def tools_list(self, request: Request) -> Response:
        return JSONBody({"tools": tools_for_profile(self.api.profile)})

    async def find_paths(self, request: Request) -> Response:
        body = _object(await read_json(request))
        # The original's #934 aliases: from_id / to_id for source_id / target_id.
        args = {**body, "source_id": body.get("source_id") if body.get("source_id") is not None
                else body.get("from_id"),
                "target_id": body.get("target_id") if body.get("target_id") is not None else body.get("to_id")}
        # Errors keep their status (400, and 422 past the depth ceiling, as the original's handler).
        return JSONBody(await self._run("memory_find_paths", request, args))

    async def verify_link(self, request: Request) -> Response:
        body = _object(await read_json(request))
        if body.get("source_id") is None and body.get("link_id") is None:
            return JSONBody({"error": "verify_link requires either source_id or link_id",
                             "fields": ["source_id", "link_id"]}, status_code=400)
        return await self._answer("memory_verify", request, body)

    async def quota_status(self, request: Request) -> Response:
        body = _object(await read_json(request))
        claimed = body.get("agent_id")
        governance = self.api.node.governance
        if claimed is None:
            return JSONBody(await governance.quota_status(None))
        named_agent(claimed)
        if claimed != self.api.agent(request):
            raise ForbiddenError("agent_id body parameter does not match authenticated caller")
        status = await governance.quota_status(claimed)
        return JSONBody(status["quota"])

    async def share(self, request: Request) -> Response:
        return await self._answer("memory_share", request, _object(await read_json(request)))

    async def capture_turn(self, request: Request) -> Response:
        body = _object(await read_json(request))
        for name in _TURN_FIELDS:  # the original's JsonOrBadRequest answer for a missing field
            if body.get(name) is None:
                return JSONBody({"error": f"missing required field: {name}", "fields": [name]}, status_code=400)
        # The caller is the header's agent only (the original ignores a body agent_id here).
        answer = await self._run("memory_capture_turn", request, {**body, "agent_id": self.api.agent(request)})
        answer.pop("elapsed_ms", None)
        return JSONBody(answer, status_code=200 if answer["dedup_hit"] else 201)

    def _llm_or_503(self) -> LlmClient:
        if (llm := self.llm) is None:
            raise UnavailableError("LLM not configured")
        return llm

    async def auto_tag(self, request: Request) -> Response:
        llm = self._llm_or_503()
        body = _object(await read_json(request))
        memory_id = body.get("memory_id")
        if memory_id is None and not (isinstance(body.get("title"), str) and isinstance(body.get("content"), str)):
            raise ValidationError("auto_tag requires memory_id (preferred) or title+content")
        if memory_id is not None:
            memory = await self.api.service.get(memory_id)
            title, content = memory.title, memory.content
        else:
            title, content = body["title"], body["content"]
        tags = await _llm_call("auto_tag", llm.auto_tag(title, content))
        return JSONBody({"tags": tags[:_AUTO_TAG_MAX_TAGS], "memory_id": memory_id})

    async def expand_query(self, request: Request) -> Response:
        llm = self._llm_or_503()
        body = _object(await read_json(request))
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ValidationError("query is required")
        terms = await _llm_call("expand_query", llm.expand_query(query.strip()))
        return JSONBody({"original": query.strip(), "expanded_terms": terms})

    # -- skills -----------------------------------------------------------------------------------------

    async def _skill(self, tool: str, request: Request, args: dict[str, Any]) -> Response:
        """The original's skills routes: the tool's JSON; "not found" is 404, other refusals 400."""
        try:
            return JSONBody(await self._run(tool, request, args))
        except NotFoundError as exc:
            return JSONBody({"error": str(exc)}, status_code=404)
        except CommandError as exc:
            if exc.status >= 500 or isinstance(exc, ActionPendingError):
                raise
            return JSONBody({"error": error_text(exc)}, status_code=400)

    async def skill_register(self, request: Request) -> Response:
        body = _object(await read_json(request))
        if body.get("folder_path") is not None:
            operator(request)  # reads the node's own files
        return await self._skill("memory_skill_register", request, body)

    async def skill_list(self, request: Request) -> Response:
        q = request.query_params
        args = {k: q[k] for k in ("namespace", "filter") if q.get(k)}
        return await self._skill("memory_skill_list", request, args)

    async def skill_get(self, request: Request) -> Response:
        return await self._skill("memory_skill_get", request, {"skill_id": request.path_params["id"]})

    async def skill_resource(self, request: Request) -> Response:
        path = request.query_params.get("path")
        if not path:
            raise ValidationError("Failed to deserialize query string: missing field `path`")
        return await self._skill("memory_skill_resource", request, {"skill_id": request.path_params["id"],
                                                                    "resource_path": path})

    async def skill_export(self, request: Request) -> Response:
        operator(request)  # writes the node's own files
        body = _object(await read_json(request))
        return await self._skill("memory_skill_export", request, {"skill_id": request.path_params["id"],
                                                                  "target_folder": body.get("target_folder")})

    async def skill_promote(self, request: Request) -> Response:
        body = _object(await read_json(request))
        args = {"reflection_id": request.path_params["id"], "skill_name": body.get("name"),
                "skill_description": body.get("description"), "parameters_schema": body.get("parameters_schema")}
        return await self._skill("memory_skill_promote_from_reflection", request, args)

    async def skill_compose(self, request: Request) -> Response:
        body = _object(await read_json(request))
        args: dict[str, Any] = {"skill_id": request.path_params["id"]}
        if body.get("budget_tokens") is not None:
            args["budget_tokens"] = body["budget_tokens"]
        return await self._skill("memory_skill_compositional_context", request, args)


def routes(api: ApiContext) -> list[Route]:
    t, e = ToolRoutes(api), api.endpoint
    return [
        *[Route(f"{V1}/memory_{name}", e(partial(t.bridged, f"memory_{name}")), methods=["POST"])
          for name in BRIDGED_TOOLS],
        Route(f"{V1}/skill/register", e(t.skill_register), methods=["POST"]),
        Route(f"{V1}/skill/list", e(t.skill_list), methods=["GET"]),
        Route(f"{V1}/skill/{{id}}", e(t.skill_get), methods=["GET"]),
        Route(f"{V1}/skill/{{id}}/resource", e(t.skill_resource), methods=["GET"]),
        Route(f"{V1}/skill/{{id}}/export", e(t.skill_export), methods=["POST"]),
        Route(f"{V1}/skill/{{id}}/promote", e(t.skill_promote), methods=["POST"]),
        Route(f"{V1}/skill/{{id}}/compose", e(t.skill_compose), methods=["POST"]),
        Route(f"{V1}/tools/list", e(t.tools_list), methods=["GET"]),
        Route(f"{V1}/kg/find_paths", e(t.find_paths), methods=["POST"]),
        Route(f"{V1}/find_paths", e(t.find_paths), methods=["POST"]),
        Route(f"{V1}/links/verify", e(t.verify_link), methods=["POST"]),
        Route(f"{V1}/quota/status", e(t.quota_status), methods=["POST"]),
        Route(f"{V1}/share", e(t.share), methods=["POST"]),
        Route(f"{V1}/capture_turn", e(t.capture_turn), methods=["POST"]),
        Route(f"{V1}/auto_tag", e(t.auto_tag), methods=["POST"]),
        Route(f"{V1}/expand_query", e(t.expand_query), methods=["POST"]),
    ]
