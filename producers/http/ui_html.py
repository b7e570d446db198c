"""The memory browser's HTML: pure functions from what the service read to one self-contained page each.

No JavaScript and nothing fetched from elsewhere (it works on an air-gapped node). Every value that comes from
a memory, an event or a request goes through :func:`esc` (or :meth:`View.url`, which encodes and escapes), so
a title like ``<script>`` is shown, never run. The reader (``as_agent``) rides in every link and form.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from producers.governance import Approver
    from producers.memory.history import HistoryEvent, MemoryHistory
    from projectors import LinkRow, PendingRecord
    from schemas import Memory

__all__ = ["ROOT", "Hit", "View", "error_page", "esc", "list_page", "login_page", "memory_page", "namespaces_page",
           "pending_page", "search_page"]

ROOT = "/ui"
_SNIPPET = 160
_STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}"
    "header{background:#1f3b57;color:#fff;padding:10px 24px;display:flex;gap:22px;align-items:center}"
    "header a{color:#fff;text-decoration:none}header b{font-size:16px}"
    "header form{margin-left:auto}header input{width:170px}"
    "main{padding:14px 24px;max-width:1100px}a{color:#1f5fa8}"
    "table{border-collapse:collapse;background:#fff;margin:6px 0 16px;width:100%}"
    "td,th{padding:5px 9px;text-align:left;border-bottom:1px solid #e3e6ea;vertical-align:top}"
    "th{background:#eef1f4;font-weight:600}.facts th{width:1%;white-space:nowrap}"
    "h1{font-size:20px}h2{font-size:16px;margin-top:22px}"
    ".muted{color:#67717c}.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;"
    "background:#e3e6ea}.self_signed{background:#cdebd3}.peer_attested{background:#d6e4f7}"
    ".unsigned{background:#f2e3c9}.bad{background:#f7d4d4}.content{white-space:pre-wrap;background:#fff;"
    "padding:10px;border:1px solid #e3e6ea}.score{font-variant-numeric:tabular-nums}"
    "ul.tree{list-style:none;padding-left:18px}form.search input[name=q]{width:340px}"
    ".nw{white-space:nowrap}.error{background:#f7d4d4;padding:10px;border:1px solid #e0a8a8}"
)


def esc(value: Any) -> str:
    """Text for HTML: ``&``, ``<``, ``>`` and both quotes escaped (safe in element content and attributes)."""
    return escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class View:
    """Who is looking: the reader's ``as_agent``, carried in every link and form so each page reads alike."""

    as_agent: str | None = None

    def url(self, path: str, **params: Any) -> str:
        """``path`` under /ui with ``params`` (None left out) and the reader, encoded and escaped."""
        query = {k: v for k, v in params.items() if v is not None and v != ""}
        if self.as_agent:
            query["as_agent"] = self.as_agent
        return esc(ROOT + path + ("?" + urlencode(query) if query else ""))

    def hidden(self) -> str:
        """The reader as a hidden form field."""
        return f'<input type="hidden" name="as_agent" value="{esc(self.as_agent)}">' if self.as_agent else ""


@dataclass(frozen=True)
class Hit:
    """One search or recall result: the memory and its recall score (None for a keyword search)."""

    memory: Memory
    score: float | None = None


def _layout(view: View, title: str, body: str) -> str:
    reader = (f'<form method="get" action="{esc(ROOT)}">reading as '
              f'<input name="as_agent" value="{esc(view.as_agent)}" placeholder="as_agent (all)">'
              '<button>apply</button></form>')
    nav = (f'<b><a href="{view.url("")}">ai-memory</a></b><a href="{view.url("")}">Search</a>'
           f'<a href="{view.url("/namespaces")}">Namespaces</a><a href="{view.url("/pending")}">Pending</a>'
           f'{reader}<a href="{esc(ROOT)}/logout">log out</a>')
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>" + esc(title) + " · ai-memory</title>"
            f"<style>{_STYLE}</style></head><body><header>{nav}</header><main>{body}</main></body></html>")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "none") -> str:
    """Cells are HTML already (escaped by the callers, some hold links); headers are escaped here."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or f'<tr><td class=muted>{esc(empty)}</td></tr>'}</table>"


def _facts(pairs: Sequence[tuple[str, str]], *, per_row: int = 3) -> str:
    """Name/value pairs, ``per_row`` to a row (values are HTML already, escaped by the caller)."""
    cells = [f"<th>{esc(name)}</th><td>{value}</td>" for name, value in pairs]
    rows = ["".join(cells[i:i + per_row]) for i in range(0, len(cells), per_row)]
    return '<table class="facts">' + "".join(f"<tr>{row}</tr>" for row in rows) + "</table>"


def _badge(level: str) -> str:
    return f'<span class="badge {esc(level)}">{esc(level)}</span>'


def _when(ts: str | None, *, empty: str = "") -> str:
    """A timestamp to the second, in UTC as stored; the full value in the tooltip."""
    if not ts:
        return esc(empty)
    return f'<time class="nw" title="{esc(ts)}">{esc(ts[:19].replace("T", " "))}</time>'


def _position(event: HistoryEvent) -> str:
    return f'<span class="nw">{esc(event.partition)}:{event.offset}</span>'


def _snippet(text: str) -> str:
    return esc(text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…")


def _memory_link(view: View, memory: Memory) -> str:
    # An id may hold "/", "?" or "#" (imports keep the original's ids): one encoded path segment.
    return f'<a href="{view.url("/memories/" + quote(memory.id, safe=""))}">{esc(memory.title)}</a>'


def _namespace_link(view: View, namespace: str) -> str:
    return f'<a href="{view.url("/memories", namespace=namespace)}">{esc(namespace)}</a>'


def _memory_rows(view: View, hits: Sequence[Hit]) -> list[list[str]]:
    return [[_memory_link(view, h.memory) + f'<div class="muted">{_snippet(h.memory.content)}</div>',
             _namespace_link(view, h.memory.namespace), esc(h.memory.tier),
             esc(h.memory.metadata.get("scope", "private")), _badge(h.memory.to_api()["attest_level"]),
             "" if h.score is None else f'<span class="score">{h.score:.3f}</span>'] for h in hits]


_MEMORY_HEADER = ("memory", "namespace", "tier", "scope", "attested", "score")


def search_page(view: View, *, q: str, kind: str, namespace: str, hits: Sequence[Hit] | None, note: str = "",
                recent: Sequence[Memory] = ()) -> str:
    """The search form; with ``hits``, the results of a search (rank order) or a recall (with scores)."""
    options = "".join(f'<option value="{k}"{" selected" if k == kind else ""}>{label}</option>'
                      for k, label in (("search", "search (keyword)"), ("recall", "recall (scored; touches)")))
    form = (f'<form class="search" method="get" action="{esc(ROOT)}/search"><input name="q" value="{esc(q)}" '
            'placeholder="what are you looking for?" autofocus> '
            f'<select name="kind">{options}</select> in <input name="namespace" value="{esc(namespace)}" '
            f'placeholder="any namespace"> {view.hidden()}<button>Go</button></form>')
    parts = ["<h1>Search memories</h1>", form]
    if hits is not None:
        what = "recall (scored, best first)" if kind == "recall" else "keyword search (best first)"
        parts.append(f"<h2>{len(hits)} found by {esc(what)}</h2>")
        if note:
            parts.append(f'<p class="muted">{esc(note)}</p>')
        parts.append(_table(_MEMORY_HEADER, _memory_rows(view, hits), empty="nothing found"))
    if recent:
        parts.append("<h2>Memories (highest priority, then latest)</h2>")
        parts.append(_table(_MEMORY_HEADER, _memory_rows(view, [Hit(m) for m in recent])))
    return _layout(view, "Search", "".join(parts))


def list_page(view: View, namespace: str | None, memories: Sequence[Memory], *, offset: int, limit: int) -> str:
    """One page of a namespace's memories (or all), highest priority first; a link to the next when full."""
    title = f"Memories in {namespace}" if namespace else "Memories"
    more = (f'<p><a href="{view.url("/memories", namespace=namespace, offset=offset + limit)}">next {limit}</a></p>'
            if len(memories) == limit else "")
    return _layout(view, title, f"<h1>{esc(title)}</h1>"
                   + _table(_MEMORY_HEADER, _memory_rows(view, [Hit(m) for m in memories])) + more)


def _tree(view: View, node: dict[str, Any]) -> str:
    children = "".join(_tree(view, c) for c in node.get("children", []))
    label = (_namespace_link(view, node["namespace"]) if node.get("count") else esc(node.get("name") or "(root)"))
    counts = f' <span class="muted">{int(node["count"])} here · {int(node["subtree_count"])} in the subtree</span>'
    return f"<li>{label}{counts}" + (f'<ul class="tree">{children}</ul>' if children else "") + "</li>"


def namespaces_page(view: View, taxonomy: dict[str, Any]) -> str:
    """The namespace tree (the taxonomy the reader may see), each namespace linked to its memories."""
    truncated = '<p class="muted">Only the densest namespaces are shown.</p>' if taxonomy["truncated"] else ""
    body = (f"<h1>Namespaces</h1><p>{int(taxonomy['total_count'])} memories.</p>{truncated}"
            f'<ul class="tree">{_tree(view, taxonomy["tree"])}</ul>')
    return _layout(view, "Namespaces", body)


def _link_rows(view: View, memory_id: str, links: Sequence[LinkRow], titles: dict[str, Memory]) -> list[list[str]]:
    rows = []
    for link in links:
        other = link.target_id if link.source_id == memory_id else link.source_id
        direction = "→" if link.source_id == memory_id else "←"
        target = _memory_link(view, titles[other]) if other in titles else esc(other)
        rows.append([esc(direction + " " + link.relation), target, esc(link.observed_by), _badge(link.attest_level),
                     _when(link.created_at), _when(link.valid_until)])
    return rows


def _signer(event: HistoryEvent) -> str:
    state = "self_signed" if event.signature == "verified" else "bad"
    node = f'node key <code>{esc(event.key_id)}</code> <span class="badge {state}">{esc(event.signature)}</span>'
    if event.attested_by is None:
        return node
    agent, key = event.attested_by
    return node + f"<br>agent {esc(agent)} key <code>{esc(key)}</code>"


def _event_rows(view: View, events: Sequence[HistoryEvent], titles: dict[str, Memory]) -> list[list[str]]:
    rows = []
    for e in events:
        about = ""
        if e.other_id is not None:
            about = (" with " + _memory_link(view, titles[e.other_id])) if e.other_id in titles else ""
        rows.append([_position(e), _when(e.ts), esc(e.type) + about, esc(e.actor),
                     f"<span class=nw>{esc(e.origin)}</span>", _signer(e)])
    return rows


def _version_rows(history: MemoryHistory) -> list[list[str]]:
    rows = []
    for number, v in enumerate(history.versions, start=1):
        if v.memory is None:
            shown = '<span class="muted">not visible to this reader</span>'
        else:
            fields = {"title": v.memory.title, "content": v.memory.content, "tier": v.memory.tier,
                      "namespace": v.memory.namespace, "tags": ", ".join(v.memory.tags),
                      "priority": v.memory.priority, "confidence": v.memory.confidence, "source": v.memory.source,
                      "expires_at": v.memory.expires_at, "metadata": json.dumps(v.memory.metadata, sort_keys=True)}
            shown = "<br>".join(f"<b>{esc(k)}</b>: {_snippet(str(fields.get(k)))}" for k in v.changed if k in fields)
        rows.append([str(number), _position(v.event), _when(v.event.ts),
                     esc(v.event.type), esc(v.event.actor), shown])
    return rows


def memory_page(view: View, memory: Memory, links: Sequence[LinkRow], titles: dict[str, Memory],
                history: MemoryHistory) -> str:
    """One memory: its fields and attestation level, its links, its versions and the events that made it."""
    api = memory.to_api()
    facts = [("id", f"<code>{esc(memory.id)}</code>"), ("namespace", _namespace_link(view, memory.namespace)),
             ("tier", esc(memory.tier)), ("scope", esc(memory.metadata.get("scope", "private"))),
             ("author", esc(memory.metadata.get("agent_id"))), ("attestation", _badge(api["attest_level"])),
             ("tags", esc(", ".join(memory.tags))), ("priority", esc(memory.priority)),
             ("confidence", esc(memory.confidence)), ("source", esc(memory.source)),
             ("access count", esc(memory.access_count)), ("created", _when(memory.created_at)),
             ("updated", _when(memory.updated_at)), ("last accessed", _when(memory.last_accessed_at, empty="never")),
             ("expires", _when(memory.expires_at, empty="never")),
             ("metadata", f"<code>{esc(json.dumps(memory.metadata, sort_keys=True))}</code>")]
    scanned = (f"The last {history.scanned} events of the log were read"
               + ("; older events are not shown." if history.truncated else " (the whole log)."))
    body = (f"<h1>{esc(memory.title)}</h1><div class=\"content\">{esc(memory.content)}</div>"
            + _facts(facts)
            + "<h2>Links</h2>"
            + _table(("relation", "memory", "observed by", "attested", "created", "valid until"),
                     _link_rows(view, memory.id, links, titles))
            + "<h2>Versions</h2>"
            + _table(("#", "log offset", "when", "event", "by", "what it set"), _version_rows(history))
            + f'<h2>Events from the log</h2><p class="muted">{esc(scanned)}</p>'
            + _table(("log offset", "when", "event", "actor", "origin node", "signed by"),
                     _event_rows(view, history.events, titles)))
    return _layout(view, memory.title, body)


def _votes(p: PendingRecord, approver: Approver | None) -> str:
    """The votes cast, and (while pending) who decides under the namespace's current policy."""
    votes = "<br>".join(f"{esc(a.get('agent_id'))} <span class=\"muted\">{_when(a.get('approved_at'))}</span>"
                        for a in p.approvals) or '<span class="muted">no votes yet</span>'
    if approver is None or p.status != "pending":
        return votes
    if approver.kind == "consensus":
        needs = f"{len(p.approvals)} of {approver.quorum} votes of registered agents"
    elif approver.kind == "agent":
        needs = f"decided by agent {approver.agent_id}"
    else:
        needs = "decided by any one approver (human)"
    return f'{votes}<div class="muted">{esc(needs)}</div>'


def _pending_what(view: View, p: PendingRecord, titles: dict[str, Memory]) -> str:
    if p.memory_id and p.memory_id in titles:
        return _memory_link(view, titles[p.memory_id])
    title = p.payload.get("title")
    return esc(title) if title else f"<code>{_snippet(json.dumps(p.payload, sort_keys=True))}</code>"


def pending_page(view: View, status: str, pendings: Sequence[tuple[PendingRecord, Approver | None]],
                 titles: dict[str, Memory]) -> str:
    """Pending approvals (or decided ones, by ``status``) with their votes and who decides them; ``titles``: the
    memories they are about that the reader may see."""
    tabs = " · ".join(f'<a href="{view.url("/pending", status=s)}">{s}</a>' if s != status else f"<b>{s}</b>"
                      for s in ("pending", "approved", "rejected", "expired"))
    rows = [[f'<code title="{esc(p.id)}">{esc(p.id[:8])}</code>', esc(p.action_type), _pending_what(view, p, titles),
             _namespace_link(view, p.namespace), esc(p.requested_by),
             _when(p.requested_at), esc(p.status) + (f"<br>by {esc(p.decided_by)}" if p.decided_by else ""),
             _votes(p, approver), _when(p.expires_at)] for p, approver in pendings]
    body = (f"<h1>Approvals</h1><p>{tabs}</p>"
            + _table(("id", "action", "what", "namespace", "requested by", "requested", "status", "votes", "expires"),
                     rows, empty=f"no {status} actions"))
    return _layout(view, "Approvals", body)


def login_page(*, error: str = "", next_url: str = ROOT) -> str:
    """The API key form (the node was started with one); the key is kept in an HttpOnly cookie for /ui."""
    problem = f'<p class="error">{esc(error)}</p>' if error else ""
    body = (f"<h1>API key</h1>{problem}<p>This node needs its API key (the one the API takes in "
            f"<code>X-API-Key</code>).</p><form method=\"post\" action=\"{esc(ROOT)}/login\">"
            f'<input type="password" name="api_key" autofocus> <input type="hidden" name="next" '
            f'value="{esc(next_url)}"><button>Log in</button></form>')
    return _layout(View(), "Log in", body)


def error_page(view: View, status: int, message: str) -> str:
    return _layout(view, "Error", f'<h1>{status}</h1><p class="error">{esc(message)}</p>'
                   f'<p><a href="{view.url("")}">Back to search</a></p>')
