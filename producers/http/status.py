"""The node's status for people and for tools: ``GET /api/v1/health`` (the original's liveness answer),
``GET /metrics`` (Prometheus), ``GET /api/v1/status`` (JSON) and ``GET /status`` (an HTML page that refreshes
itself: log end, read-model lag as bars, peers' confirmed offsets, memories by tier and namespace).

No JavaScript and nothing fetched from elsewhere: the page is one self-contained HTML document with inline SVG, so
it works on an air-gapped node. Every value shown is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from producers.http.base import V1, VERSION, ApiContext, JSONBody
from producers.memory.model_hash import read_model_hash
from producers.memory.taxonomy import visible_stats
from producers.memory.wire import embedder_status
from producers.runtime.metrics import render
from producers.runtime.status import cluster_status
from schemas import now_ts

__all__ = ["StatusRoutes", "render_page", "routes"]

_REFRESH_SECS = 5
_BAR_W = 360
_TOP_NAMESPACES = 12


async def status_document(api: ApiContext, *, with_hash: bool = False) -> dict[str, Any]:
    stats = await visible_stats(api.node, None)
    doc = {**await cluster_status(api.node), "memories": {"total": stats["total"], "by_tier": stats["by_tier"],
                                                           "by_namespace": stats["by_namespace"]},
           "embedder": stats["embedder"], "vector_index": stats["vector_index"],
           "lexical_index": stats["lexical_index"]}
    if with_hash:  # on request only: it reads every memory
        doc["read_model_hash"] = read_model_hash(api.node.model, api.node.runner.position)
    return doc


def _bar(value: int, scale: int, *, color: str) -> str:
    width = 0 if scale <= 0 else max(1, round(_BAR_W * value / scale)) if value else 0
    return (f'<svg width="{_BAR_W + 2}" height="14" role="img" aria-label="{value}">'
            f'<rect x="0" y="1" width="{_BAR_W}" height="12" fill="#eee"/>'
            f'<rect x="0" y="1" width="{width}" height="12" fill="{color}"/></svg>')


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    # Cells are escaped by the callers (some hold SVG), so no cell reaches here unescaped.
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<h2>{escape(title)}</h2><table><tr>{head}</tr>{body or '<tr><td>none</td></tr>'}</table>"


def _lag_rows(end: dict[str, int], lags: dict[str, dict[str, int]], color: str) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, lag in lags.items():
        for partition, behind in sorted(lag.items()):
            rows.append((escape(name), escape(partition), str(end.get(partition, 0)), str(behind),
                         _bar(behind, max(1, end.get(partition, 0)), color=color)))
    return rows


def render_page(doc: dict[str, Any]) -> str:
    """The HTML page of a :func:`status_document`."""
    end: dict[str, int] = doc["end_offsets"]
    models = {name: model["lag"] for name, model in doc["read_models"].items()}
    peers = {peer: seen["lag"] for peer, seen in doc["peers"].items()}
    memories = doc["memories"]
    by_namespace = sorted(memories["by_namespace"], key=lambda r: -int(r["count"]))[:_TOP_NAMESPACES]
    most = max([int(r["count"]) for r in by_namespace] or [1])
    stream = doc.get("stream") or {}
    quorum = doc["quorum"]
    embedder = doc["embedder"]
    facts = [("node", doc["node_id"]), ("log", doc["log"]),
             ("stream leader", str(stream.get("leader", "-"))),
             ("quorum", f"W={quorum['writes']} of N={quorum['cluster_size']}, timeout {quorum['timeout_ms']} ms"),
             ("embedder", f"{embedder.get('model')} ({embedder.get('dim')} dims)" if embedder.get("embedder_ready")
              else f"off: {embedder.get('embedder_error', 'not loaded')}"),
             ("memories", str(memories["total"])),
             ("rejected events", str(doc["read_models"]["memories"]["rejected"])),
             ("log chain breaks", str(doc["log_chain"]["breaks"]))]
    sections = [
        "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts) + "</table>",
        _table("Read models behind the log", ("read model", "partition", "log end", "behind", ""),
               _lag_rows(end, models, "#c62828")),
        _table("Peers (last confirmed)", ("peer", "partition", "log end", "behind", ""),
               _lag_rows(end, peers, "#ef6c00")),
        _table("Memories by namespace", ("namespace", "count", ""),
               [(escape(str(r["namespace"])), str(r["count"]), _bar(int(r["count"]), most, color="#2f6db5"))
                for r in by_namespace]),
        _table("Memories by tier", ("tier", "count"),
               [(escape(str(r["tier"])), str(r["count"])) for r in memories["by_tier"]]),
    ]
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"refresh\" content=\"{_REFRESH_SECS}\"><title>ai-memory {escape(doc['node_id'])}"
            "</title><style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
            "table{border-collapse:collapse;margin-bottom:1em}td,th{padding:3px 10px;text-align:left;"
            "border-bottom:1px solid #ddd}h2{font-size:16px;margin-top:1.5em}</style></head><body>"
            f"<h1>ai-memory node {escape(doc['node_id'])}</h1>" + "".join(sections) +
            f"<p>Refreshes every {_REFRESH_SECS} s. JSON: <code>/api/v1/status</code>.</p></body></html>")


class StatusRoutes:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.node = api.node

    async def health(self, request: Request) -> Response:
        node = self.node
        quorum = node.config.quorum
        return JSONBody({"status": "ok", "service": "ai-memory", "version": VERSION, **embedder_status(node),
                         "federation_enabled": quorum.needed > 1, "node_id": node.key.key_id,
                         "clock": self.api.service.runner.position,
                         "cluster": {"quorum_writes": quorum.needed, "cluster_size": quorum.nodes,
                                     "peers": node.quorum.peers, "last_confirmation": node.confirmer.last_sent}})

    async def metrics(self, request: Request) -> Response:
        node = self.node
        samples = node.metrics.samples()
        stats = self.api.service.queries.stats(now_ts(), now_ts())
        samples["ai_memory_memories"] = {(): stats.total}
        samples["ai_memory_rejected_events"] = {(): node.model.rejected_count()}
        samples["ai_memory_log_chain_breaks"] = {(): node.runner.chain.status(limit=0)["breaks"]}
        end = await node.log.end_offsets()
        samples["ai_memory_log_end_offset"] = {(("partition", p),): o for p, o in end.items()}
        samples["ai_memory_projector_offset"] = {(("partition", p),): o for p, o in node.runner.position.items()}
        samples.update(await node.webhooks.samples())
        return PlainTextResponse(render(samples), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def status_json(self, request: Request) -> Response:
        return JSONBody(await status_document(self.api, with_hash=request.query_params.get("hash") == "1"))

    async def status_page(self, request: Request) -> Response:
        return HTMLResponse(render_page(await status_document(self.api)))


def routes(api: ApiContext) -> list[Route]:
    s, e = StatusRoutes(api), api.endpoint
    return [
        Route(f"{V1}/health", e(s.health), methods=["GET"]),
        Route("/metrics", e(s.metrics), methods=["GET"]),
        Route(f"{V1}/metrics", e(s.metrics), methods=["GET"]),
        Route(f"{V1}/status", e(s.status_json), methods=["GET"]),
        Route("/status", e(s.status_page), methods=["GET"]),
    ]
