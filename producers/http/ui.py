"""The memory browser at ``/ui``: search and recall with scores, the namespace tree, one memory with its links,
versions and the events that made it, and pending approvals with their votes. Read-only (a recall touches what
it returns, as the API's does).

It reads through the same service methods as ``/api/v1``, with the same rules: the node's API key (the
``X-API-Key`` header, the ``api_key`` query parameter, or the cookie the login form sets), the scope rules of
``as_agent`` (a query parameter carried in every link) and the operator's mandatory-``as_agent`` namespaces.
Errors are the API's (same status, same message), as a page for a browser and ``{"error": ...}`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from producers.errors import AuthError, PayloadTooLargeError, ValidationError, reply_for
from producers.http import ui_html as pages
from producers.http.base import ApiContext, JSONBody, read_body, supplied_api_key
from producers.http.ui_html import ROOT, Hit, View
from producers.identity.attestation import attested
from producers.input.commands import parse_list_query, parse_recall
from producers.memory.history import memory_history
from producers.memory.service import round_score
from producers.memory.taxonomy import as_agent_param, visible_taxonomy
from projectors import under_any, visible_to

if TYPE_CHECKING:
    from projectors import PendingRecord
    from schemas import Memory

__all__ = ["COOKIE", "UiRoutes", "routes"]

log = logging.getLogger("ai_memory.http")

#: The cookie that carries the API key for /ui only (HttpOnly: no script reads it; SameSite=Strict: no other
#: site's page can make the browser send it).
COOKIE = "ai_memory_ui_key"
#: No script may run and no page may frame these (defence in depth beside the escaping).
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                       "frame-ancestors 'none'",
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_RECENT, _RESULTS, _LIST, _TREE = 15, 25, 100, 1000
#: "search" reads only; "recall" is the API's recall, a write: it touches what it returns (access counts, TTL).
_KINDS = ("search", "recall")
_STATUSES = ("pending", "approved", "rejected", "expired")
Page = Callable[[Request, View], Awaitable[str]]


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _html(page: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status, headers=_HEADERS)


def _next_url(value: str | None) -> str:
    """Where to go after logging in: a /ui page of this node, never another site (``//evil`` included)."""
    if value and value.startswith(ROOT) and not value.startswith("//") and "\\" not in value:
        return value
    return ROOT


class UiRoutes:
    """The /ui pages over one node's :class:`ApiContext` (its service, key check and agent rules). A page is
    ``async def name(self, request, view) -> str`` (its HTML), served through :meth:`serve`."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.node = api.node

    # -- the boundary every page goes through -------------------------------------------------------------

    async def serve(self, handler: Page, request: Request) -> Response:
        """``handler``'s page for ``request`` (bound to its page in the route table), behind the key check."""
        from_query = supplied_api_key(request)
        try:
            self.api.check_api_key(from_query or request.cookies.get(COOKIE))
        except AuthError as exc:
            response = self._login_needed(request, exc)
        else:
            response = await self._render(request, handler)
            if from_query is not None and response.status_code == 200:
                self._remember(request, response, from_query)  # the next click carries no key in its URL
        self.node.metrics.inc("ai_memory_http_requests_total", code=f"{response.status_code // 100}xx")
        return response

    async def _render(self, request: Request, handler: Page) -> Response:
        view = View()
        try:
            view = View(as_agent_param(request.query_params))
            with attested(await self.api.attest(request)):
                return _html(await handler(request, view))
        except Exception as exc:
            reply = reply_for(exc)
            if reply.status >= 500:
                log.error("%s %s failed: %r", request.method, request.url.path, exc)
            if not _wants_html(request):
                return JSONBody(reply.body, status_code=reply.status, headers=reply.headers)
            return _html(pages.error_page(view, reply.status, str(reply.body.get("error", ""))), reply.status)

    @staticmethod
    def _login_needed(request: Request, exc: AuthError) -> Response:
        """The login form for a browser (it comes back to this page), the API's 401 for anything else."""
        reply = reply_for(exc)
        if not _wants_html(request):
            return JSONBody(reply.body, status_code=reply.status, headers=reply.headers)
        # Back to this page after logging in, without a (wrong) key from the query string.
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "api_key"])
        target = request.url.path + (f"?{query}" if query else "")
        return _html(pages.login_page(next_url=_next_url(target)), reply.status)

    @staticmethod
    def _remember(request: Request, response: Response, key: str) -> None:
        response.set_cookie(COOKIE, key, path=ROOT, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")

    # -- login ----------------------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        try:
            self.api.check_api_key(None)
        except AuthError:
            pass
        else:
            return RedirectResponse(ROOT, status_code=303, headers=_HEADERS)  # this node has no key to ask for
        if request.method == "GET":
            return _html(pages.login_page(next_url=_next_url(request.query_params.get("next"))))
        try:
            form = parse_qs((await read_body(request)).decode("utf-8", "replace"))
        except PayloadTooLargeError as exc:
            return _html(pages.login_page(error=str(exc)), reply_for(exc).status)
        key, target = form.get("api_key", [""])[0], _next_url(form.get("next", [ROOT])[0])
        try:
            self.api.check_api_key(key)
        except AuthError:
            return _html(pages.login_page(error="That is not this node's API key.", next_url=target), 401)
        response = RedirectResponse(target, status_code=303, headers=_HEADERS)
        self._remember(request, response, key)
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse(ROOT, status_code=303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path=ROOT)
        return response

    # -- pages ------------------------------------------------------------------------------------------------

    def _visible(self, memories: Iterable[Memory], as_agent: str | None) -> dict[str, Memory]:
        """The given memories the reader may see, by id (for titles of links and events)."""
        return {m.id: m for m in self.node.identity.visibility.reader(as_agent).visible(memories)}

    async def home(self, request: Request, view: View) -> str:
        recent = await self.node.service.list_memories(parse_list_query(
            {"as_agent": view.as_agent, "limit": _RECENT}))
        return pages.search_page(view, q="", kind="search", namespace="", hits=None, recent=recent)

    async def search(self, request: Request, view: View) -> str:
        params = dict(request.query_params)
        q, kind, namespace = params.get("q", ""), params.get("kind") or "search", params.get("namespace", "")
        if kind not in _KINDS:
            raise ValidationError(f"kind must be one of {', '.join(_KINDS)} (got {kind!r})")
        if not q.strip():
            return pages.search_page(view, q=q, kind=kind, namespace=namespace, hits=None)
        query = {"namespace": namespace, "as_agent": view.as_agent, "limit": _RESULTS}
        if kind == "search":
            found = await self.node.service.search(q, parse_list_query(query))
            return pages.search_page(view, q=q, kind=kind, namespace=namespace, hits=[Hit(m) for m in found])
        result = await self.node.service.recall(parse_recall({**query, "context": q}),
                                                agent_id=self.api.agent(request))
        note = f"mode {result.mode}" + (f"; semantic off: {result.fallback}" if result.fallback else "")
        hits = [Hit(h.memory, round_score(h.score)) for h in result.memories]
        return pages.search_page(view, q=q, kind=kind, namespace=namespace, hits=hits, note=note)

    async def namespaces(self, request: Request, view: View) -> str:
        tree = await visible_taxonomy(self.node, prefix=request.query_params.get("prefix", ""), depth=8,
                                      limit=_TREE, as_agent=view.as_agent)
        return pages.namespaces_page(view, tree)

    async def memories(self, request: Request, view: View) -> str:
        namespace = request.query_params.get("namespace") or None
        query = parse_list_query({"namespace": namespace, "as_agent": view.as_agent, "limit": _LIST,
                                  "offset": request.query_params.get("offset")})
        found = await self.node.service.list_memories(query)
        return pages.list_page(view, namespace, found, offset=query.offset, limit=query.limit)

    async def memory(self, request: Request, view: View) -> str:
        memory = await self.node.service.get(request.path_params["id"], as_agent=view.as_agent)
        links = await self.node.graph.get_links(memory.id, as_agent=view.as_agent)
        history = await memory_history(self.node, memory, as_agent=view.as_agent)
        ends = {lk.source_id for lk in links} | {lk.target_id for lk in links}
        ends |= {e.other_id for e in history.events if e.other_id is not None}
        titles = self._visible(self.node.service.queries.get_many(sorted(ends)), view.as_agent)
        return pages.memory_page(view, memory, links, titles, history)

    async def pending(self, request: Request, view: View) -> str:
        status = request.query_params.get("status") or "pending"
        if status not in _STATUSES:
            raise ValidationError(f"status must be one of {', '.join(_STATUSES)} (got {status!r})")
        found = await self.node.governance.list_pending(status=status, limit=200)
        targets = self._visible(self.node.service.queries.get_many(
            sorted({p.memory_id for p in found if p.memory_id})), view.as_agent)
        shown = self._visible_pending(found, targets, view.as_agent)
        gov = self.node.governance
        return pages.pending_page(view, status, [(p, gov.approver(p) if p.status == "pending" else None)
                                                 for p in shown], targets)

    def _visible_pending(self, found: list[PendingRecord], targets: dict[str, Memory], as_agent: str | None
                         ) -> list[PendingRecord]:
        """Pending actions about what the reader may see: the memory it would change (in ``targets``), or for
        a store the would-be memory (its namespace and scope); none in a mandatory-as_agent subtree without
        as_agent."""
        hidden = self.node.identity.visibility.check_namespace(None, as_agent)
        out = []
        for p in found:
            if under_any(p.namespace, hidden):
                continue
            if as_agent is not None:
                metadata = p.payload.get("metadata")
                scope = metadata.get("scope") if isinstance(metadata, dict) else p.payload.get("scope")
                seen = (p.memory_id in targets if p.memory_id
                        else visible_to(scope if isinstance(scope, str) else "private", p.namespace, as_agent))
                if not seen:
                    continue
            out.append(p)
        return out


def routes(api: ApiContext) -> list[Route]:
    ui = UiRoutes(api)
    return [Route(ROOT, partial(ui.serve, ui.home), methods=["GET"]),
            Route(f"{ROOT}/search", partial(ui.serve, ui.search), methods=["GET"]),
            Route(f"{ROOT}/namespaces", partial(ui.serve, ui.namespaces), methods=["GET"]),
            Route(f"{ROOT}/memories", partial(ui.serve, ui.memories), methods=["GET"]),
            Route(f"{ROOT}/memories/{{id:path}}", partial(ui.serve, ui.memory), methods=["GET"]),
            Route(f"{ROOT}/pending", partial(ui.serve, ui.pending), methods=["GET"]),
            Route(f"{ROOT}/login", ui.login, methods=["GET", "POST"]),
            Route(f"{ROOT}/logout", ui.logout, methods=["GET"])]
