"""The knowledge-graph commands and queries: links (signed when the caller's agent has a key here), temporal
validity, traversals, entities — and, beyond the original, every query "as of log offset N" (``as_of``).

Commands decide against the caught-up read model under the node's write lock and append ``link.*`` /
``entity.aliased`` events through the node's one :class:`~producers.write.writer.EventWriter`. Queries read
``model.graph`` (:class:`~projectors.GraphQueries`); traversals are :mod:`projectors.graph_walk`, shared with
every backend. Visibility: a memory the reader may not see (:mod:`producers.identity.visibility`: scope, mandatory
``as_agent``, owner) is neither returned nor crossed, and no link, title, namespace or id of it is shown.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from producers.errors import ConflictError, NotFoundError, QuotaExceededError, SourceNotFoundError, ValidationError
from producers.identity.visibility import Reader, Visibility
from producers.input.commands import MAX_INT64
from producers.input.validation import (
    check_agent_id,
    check_id,
    check_metadata,
    check_namespace,
    check_timestamp,
    check_title,
)
from producers.memory.semantic import Semantic
from producers.write.outcomes import refusal_error
from producers.write.writer import Decided, EventWriter, WriteResult
from projectors import (
    GraphQueries,
    IdentityQueries,
    KgNode,
    LinkRow,
    NodeRow,
    find_paths,
    kg_query,
)
from schemas import (
    Memory,
    SignableLink,
    decode_signature,
    encode_signature,
    link_id,
    now_ts,
    sign_link,
    verify_link,
)
from schemas.events import AttestLevel, EntityAliased, Link, LinkCreated, LinkDeleted, LinkInvalidated, MemoryStored

__all__ = ["KG_MAX_DEPTH", "MCP_RELATIONS", "DepthError", "GraphService", "KeyFiles", "LinkImport", "PublicKeys",
           "check_as_of", "invalidation_body", "kg_body", "link_json", "public_keys", "verify_stored"]

MCP_RELATIONS = ("related_to", "supersedes", "contradicts", "derived_from")
MAX_RELATION_BYTES = 64
KG_MAX_DEPTH = 5
KG_DEFAULT_LIMIT, KG_MAX_LIMIT = 200, 1000
PATHS_DEFAULT_DEPTH, PATHS_MAX_DEPTH = 4, 7
PATHS_DEFAULT_RESULTS, PATHS_MAX_RESULTS = 10, 50
ENTITY_KIND, ENTITY_TAG, ENTITY_PRIORITY = "entity", "entity", 7
_KEY_NAME = re.compile(r"^[A-Za-z0-9_\-:@.]{1,128}$")

#: Where a verifier finds an agent's Ed25519 public key (32 bytes), or None.
PublicKeys = Callable[[str], bytes | None]


class DepthError(ValidationError):
    """A traversal depth beyond what is supported (the original answers 422 on HTTP)."""

    status = 422


class KeyFiles:
    """Agents' key files in key directories (``<agent_id>.priv`` 32-byte seed, ``<agent_id>.pub``), as the
    node's own key is kept. Read on each use, so a key added while the node runs is seen."""

    def __init__(self, *dirs: Path) -> None:
        self.dirs = dirs

    def _file(self, agent_id: str, suffix: str) -> bytes | None:
        if not _KEY_NAME.match(agent_id):
            return None  # not a file name (e.g. an agent id with '/'): no key
        for directory in self.dirs:
            path = directory / f"{agent_id}{suffix}"
            if path.is_file():
                data = path.read_bytes()
                if len(data) == 32:
                    return data
        return None

    def signing_key(self, agent_id: str) -> SigningKey | None:
        seed = self._file(agent_id, ".priv")
        return SigningKey(seed) if seed is not None else None

    def public_key(self, agent_id: str) -> bytes | None:
        return self._file(agent_id, ".pub")


def public_keys(files: KeyFiles, identity: IdentityQueries) -> PublicKeys:
    """An agent's public key from the key directories, else the key it registered with the identity domain."""
    def lookup(agent_id: str) -> bytes | None:
        found = files.public_key(agent_id)
        if found is not None:
            return found
        registered = identity.agent_key(agent_id)
        return registered.raw if registered is not None else None
    return lookup


def link_json(link: LinkRow) -> dict[str, Any]:
    """A link as get_links, GET /memories/{id} and export show it (absent optional fields omitted)."""
    out: dict[str, Any] = {"source_id": link.source_id, "target_id": link.target_id, "relation": link.relation,
                           "created_at": link.created_at, "attest_level": link.attest_level}
    for name in ("valid_from", "valid_until", "observed_by", "signature"):
        value = getattr(link, name)
        if value is not None:
            out[name] = value
    return out


def _strict_id(value: Any, name: str) -> str:
    """A memory id as the original's v0.7.0 ``validate_id`` (#1051): only ``[A-Za-z0-9_:.@-]``, no ``..``;
    errors named after the field (``invalid source_id: …``)."""
    try:
        memory_id = check_id(value)
    except ValidationError as exc:
        raise ValidationError(f"invalid {name}: {exc}") from None
    if ".." in memory_id:
        raise ValidationError(f"invalid {name}: id may not contain '..' (path-traversal guard)")
    if not _KEY_NAME.match(memory_id):
        raise ValidationError(f"invalid {name}: id contains characters outside the allowed set [A-Za-z0-9_:.@-] "
                              "(path-traversal guard)")
    return memory_id


def kg_body(source_id: Any, depth: int, rows: Sequence[KgNode], *, to: str | None = None) -> dict[str, Any]:
    """The original's kg_query answer (HTTP and MCP). With ``to`` (its S82 ``{from, to}`` shape), ``paths`` holds
    the first traversal path ending at ``to`` as a list of ids (the original's Postgres answer) instead of
    every path as ``"a->b"`` text."""
    nodes = [r.to_json() for r in rows]
    paths: list[Any] = [n["path"] for n in nodes]
    if to is not None:
        paths = [list(r.path) for r in rows if r.link.target_id == to][:1]
    return {"source_id": source_id, "max_depth": depth, "memories": nodes, "paths": paths, "count": len(nodes)}


def invalidation_body(args: dict[str, Any], result: Invalidation) -> dict[str, Any]:
    """The original's kg_invalidate answer (HTTP and MCP)."""
    out: dict[str, Any] = {"found": result.found, "source_id": args.get("source_id"),
                           "target_id": args.get("target_id"), "relation": args.get("relation")}
    if result.found:
        out.update(valid_until=result.valid_until, previous_valid_until=result.previous_valid_until)
    return out


def check_relation(relation: Any, *, any_name: bool) -> str:
    """The MCP tools take the original's four relations; HTTP takes any name of at most 64 bytes."""
    if not isinstance(relation, str) or not relation.strip():
        raise ValidationError("relation cannot be empty")
    if len(relation.encode("utf-8")) > MAX_RELATION_BYTES:
        raise ValidationError(f"relation exceeds max length of {MAX_RELATION_BYTES} bytes")
    if not any_name and relation not in MCP_RELATIONS:
        raise ValidationError(f"invalid relation '{relation}' \u2014 must be one of: {', '.join(MCP_RELATIONS)}")
    return relation


def check_link(source_id: Any, target_id: Any, relation: Any, *, any_relation: bool) -> tuple[str, str, str]:
    src, dst = check_id(source_id), check_id(target_id)
    rel = check_relation(relation, any_name=any_relation)
    if src == dst:
        raise ValidationError("cannot link a memory to itself")
    return src, dst, rel


def check_as_of(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():  # "²" is a digit too
        value = int(value) if len(value.strip()) <= 19 else -1  # past 19 digits: past 2^63, and int() may refuse
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT64:
        raise ValidationError("as_of must be a log offset (an integer from 0 to 2^63-1)")
    return value


def _bounded(value: int | None, default: int, low: int, high: int) -> int:
    return max(low, min(default if value is None else value, high))


def _wire_signature(value: Any) -> bytes | None:
    """The original's signature (a JSON array of 64 bytes) or ours (base64 text)."""
    if value is None:
        return None
    raw: bytes | None = None
    if isinstance(value, list) and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256
                                       for b in value):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = decode_signature(value)
    if raw is None or len(raw) != 64:
        raise ValidationError("signature must be 64 bytes (a byte array or base64)")
    return raw


def _optional_timestamp(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value in (None, "") else check_timestamp(value, name)


def _missing_endpoint(src: str, dst: str, known: Collection[str]) -> str | None:
    """Why a link between ``src`` and ``dst`` cannot be made here (the link path's and the import's message)."""
    if src not in known:
        return f"source memory not found: {src}"
    if dst not in known:
        return f"target memory not found: {dst}"
    return None


@dataclass
class LinkImport:
    """What a peer's links did here (the original's ``links_applied``, ``noop`` and ``skipped``)."""

    applied: int = 0
    noop: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    write: WriteResult = field(default_factory=lambda: WriteResult([]))


@dataclass(frozen=True)
class Invalidation:
    found: bool
    valid_until: str | None = None
    previous_valid_until: str | None = None
    write: WriteResult | None = None


@dataclass(frozen=True)
class Registration:
    entity_id: str
    canonical_name: str
    namespace: str
    aliases: list[str]
    created: bool
    write: WriteResult


class GraphService:
    def __init__(self, writer: EventWriter, graph: GraphQueries, *, keys: KeyFiles,
                 public_keys: PublicKeys | None = None, semantic: Semantic | None = None,
                 link_quota: Callable[[str], int] | None = None, visibility: Visibility | None = None) -> None:
        """``link_quota(agent_id)`` raises when the agent may not make another link today (governance's
        per-agent quota), as the caught-up state shows, and returns the quota: the link carries it, and the
        projectors decide it again in log order (exact across nodes)."""
        self.writer = writer
        self.link_quota = link_quota
        self.graph = graph
        self.keys = keys
        self.public_keys: PublicKeys = public_keys or keys.public_key
        self.semantic = semantic
        #: The read rule (scope, mandatory as_agent, owner) for every graph read (None: everything is visible).
        self.visibility = visibility

    # -- visibility -----------------------------------------------------------------------------------------

    def reader(self, as_agent: str | None) -> Reader:
        """This request's reader. A graph read names memories, not namespaces: one under a mandatory subtree is
        not refused but hidden, as if it did not exist."""
        return self.visibility.reader(as_agent) if self.visibility is not None else Reader(as_agent)

    def _nodes(self, at: int | None, reader: Reader) -> Callable[[Sequence[str]], dict[str, NodeRow]]:
        """The graph's nodes the reader may see: a traversal neither returns nor crosses the others."""
        def nodes(ids: Sequence[str]) -> dict[str, NodeRow]:
            found = self.graph.nodes(ids, at=at)
            if reader.unfiltered:
                return found
            return {k: n for k, n in found.items() if reader.sees_node(n)}
        return nodes

    def _require(self, memory_id: str, at: int | None, reader: Reader) -> NodeRow:
        node = self._nodes(at, reader)([memory_id]).get(memory_id)
        if node is None:
            raise NotFoundError(f"memory not found: {memory_id}")
        return node

    # -- links ----------------------------------------------------------------------------------------------

    def _signed(self, src: str, dst: str, relation: str, agent_id: str, now: str) -> Link:
        """The link, signed with the agent's key when this node holds one (the original's rule)."""
        key = self.keys.signing_key(agent_id)
        if key is None:
            return Link(src, dst, relation, created_at=now, valid_from=now, observed_by=agent_id)
        signature = sign_link(key, SignableLink(src, dst, relation, agent_id, now, None))
        return Link(src, dst, relation, created_at=now, valid_from=now, observed_by=agent_id,
                    signature=encode_signature(signature), attest_level="self_signed")

    async def link(self, source_id: Any, target_id: Any, relation: Any = "related_to", *, agent_id: str,
                   any_relation: bool = False) -> tuple[Link, WriteResult]:
        src, dst, rel = check_link(source_id, target_id, relation, any_relation=any_relation)
        made: list[Link] = []
        # An end the caller may not read is "not found", as its GET would be: a 201 would tell that it
        # exists.
        visible = self._nodes(None, self.reader(None))

        async def decide() -> list[Decided]:
            known = visible([src, dst])
            if (missing := _missing_endpoint(src, dst, known)) is not None:
                raise NotFoundError(missing)
            quota = self.link_quota(agent_id) if self.link_quota is not None else None
            made[:] = [self._signed(src, dst, rel, agent_id, now_ts())]
            return [(LinkCreated(made[0], max_per_day=quota), known[src].namespace)]

        write = await self.writer.decide_and_append(decide, actor=agent_id)
        if (reason := write.refusal(0)) is not None:  # the quota used up, or an end deleted, first in log order
            error = refusal_error(reason, agent_id=agent_id)
            raise error if isinstance(error, QuotaExceededError) else NotFoundError(reason)
        return made[0], await self.writer.with_quorum(write)

    def inbound_link(self, item: Any) -> Link:
        """A peer's link (the original's MemoryLink) as this node keeps it: ``created_at`` (now when empty),
        ``valid_from``, ``valid_until``, ``observed_by`` and the signature as sent. The attest level is this
        node's own finding: ``peer_attested`` when the signature verifies with the observer's public key here,
        ``unsigned`` without a signature, an observer or a key.

        Raises:
            ValidationError: a malformed link, or a signature that does not verify with the observer's key
                (the original rejects such a link).
        """
        if not isinstance(item, dict):
            raise ValidationError("a link must be an object")
        src, dst, rel = check_link(item.get("source_id"), item.get("target_id"), item.get("relation"),
                                   any_relation=True)
        observer = item.get("observed_by")
        if observer is not None and (not isinstance(observer, str) or not observer.strip()):
            raise ValidationError("observed_by must be an agent id")
        created_at = _optional_timestamp(item, "created_at") or now_ts()
        valid_from, valid_until = _optional_timestamp(item, "valid_from"), _optional_timestamp(item, "valid_until")
        signature = _wire_signature(item.get("signature"))
        level: AttestLevel = "unsigned"
        key = self.public_keys(observer) if signature is not None and observer is not None else None
        if key is not None and signature is not None:
            if not verify_link(key, SignableLink(src, dst, rel, observer, valid_from, valid_until), signature):
                raise ValidationError(f"link {link_id(src, rel, dst)}: the signature does not verify with "
                                      f"{observer}'s public key")
            level = "peer_attested"
        return Link(src, dst, rel, created_at=created_at, valid_from=valid_from, valid_until=valid_until,
                    observed_by=observer, signature=encode_signature(signature) if signature is not None else None,
                    attest_level=level)

    async def import_links(self, items: Sequence[Any], *, agent_id: str, dry_run: bool = False,
                           arriving: Collection[str] = ()) -> LinkImport:
        """A peer's links (sync/push), in one append. A link this node already has is a no-op, unless the peer's
        copy ends it (``valid_until`` where ours is open): an invalidation travelling, which replaces ours. A link
        to a memory this node lacks is skipped. ``dry_run`` counts without writing; ``arriving`` are memories the
        same push would add (so a dry run counts their links as a real run would). Not checked against the
        links/day quota: the links were made, under their own node's quota, where they were observed."""
        parsed: dict[tuple[str, str, str], Link] = {}
        result = LinkImport()
        for item in items:
            try:
                link = self.inbound_link(item)
            except ValidationError as exc:
                result.skipped += 1
                result.errors.append(f"link: {exc}")
                continue
            if (link.source_id, link.target_id, link.relation) in parsed:
                result.noop += 1  # the same link twice in one push
            else:
                parsed[link.source_id, link.target_id, link.relation] = link
        invalid = (result.skipped, result.noop, list(result.errors))

        async def decide() -> list[Decided]:
            result.skipped, result.noop, result.errors = invalid[0], invalid[1], list(invalid[2])
            result.applied = 0
            ids = sorted({x for key in parsed for x in key[:2]})
            known = self.graph.nodes(ids)
            present = set(known) | set(arriving)
            events: list[Decided] = []
            for (src, dst, rel), link in parsed.items():
                if (missing := _missing_endpoint(src, dst, present)) is not None:
                    result.skipped += 1
                    result.errors.append(f"link {link_id(src, rel, dst)}: {missing}")
                    continue
                current = self.graph.link(src, dst, rel)
                if current is not None and not (current.valid_until is None and link.valid_until is not None):
                    result.noop += 1
                    continue
                result.applied += 1
                events.append((LinkCreated(link), known[src].namespace if src in known else "global"))
            return events

        if dry_run:
            await self.writer.caught_up()
            await decide()
            return result
        result.write = await self.writer.with_quorum(await self.writer.decide_and_append(decide, actor=agent_id))
        return result

    async def unlink(self, source_id: Any, target_id: Any, relation: Any | None, *, agent_id: str
                     ) -> tuple[bool, WriteResult]:
        """Delete the link (every relation between the two when ``relation`` is None: the original's HTTP
        DELETE). False when there was none."""
        src, dst = check_id(source_id), check_id(target_id)
        rel = None if relation is None else check_relation(relation, any_name=True)

        async def decide() -> list[Decided]:
            links = [lk for lk in self.graph.out_links([src]) if lk.target_id == dst
                     and (rel is None or lk.relation == rel)]
            namespace = self._namespace_of(src)
            return [(LinkDeleted(lk.source_id, lk.target_id, lk.relation), namespace) for lk in links]

        write = await self.writer.decide_and_append(decide, actor=agent_id)
        return _applied(write), await self.writer.with_quorum(write)

    def _namespace_of(self, memory_id: str) -> str:
        node = self.graph.nodes([memory_id]).get(memory_id)
        return node.namespace if node is not None else "global"

    async def invalidate(self, source_id: Any, target_id: Any, relation: Any, valid_until: Any = None, *,
                         agent_id: str) -> Invalidation:
        src, dst, rel = check_link(source_id, target_id, relation, any_relation=True)
        stamp = check_timestamp(valid_until, "valid_until") if valid_until not in (None, "") else None
        outcome: list[Invalidation] = []

        async def decide() -> list[Decided]:
            current = self.graph.link(src, dst, rel)
            if current is None:
                outcome[:] = [Invalidation(False)]
                return []
            until = stamp or now_ts()
            outcome[:] = [Invalidation(True, until, current.valid_until)]
            return [(LinkInvalidated(src, dst, rel, until), self._namespace_of(src))]

        write = await self.writer.decide_and_append(decide, actor=agent_id)
        if not outcome[0].found or not _applied(write):  # none, or removed elsewhere first in log order
            return Invalidation(False)
        return Invalidation(True, outcome[0].valid_until, outcome[0].previous_valid_until,
                            await self.writer.with_quorum(write))

    async def get_links(self, memory_id: Any, *, as_of: int | None = None, as_agent: str | None = None
                        ) -> list[LinkRow]:
        """Both directions, only links whose two ends the reader may see."""
        mid = check_id(memory_id)
        reader = self.reader(as_agent)
        await self.writer.caught_up()
        links = self.graph.links_of(mid, at=as_of)
        if reader.unfiltered:
            return links
        visible = self._nodes(as_of, reader)([mid, *{x for lk in links for x in (lk.source_id, lk.target_id)}])
        if mid not in visible:
            return []
        return [lk for lk in links if lk.source_id in visible and lk.target_id in visible]

    async def verify(self, source_id: Any, target_id: Any, relation: Any, *, as_of: int | None = None
                     ) -> dict[str, Any]:
        """The original's memory_verify: re-check a stored link's signature against the observer's public key."""
        src, dst, rel = check_link(source_id, target_id, relation, any_relation=True)
        await self.writer.caught_up()
        link = self.graph.link(src, dst, rel, at=as_of)
        if link is None:
            raise NotFoundError(f"link not found: ({src}, {rel}, {dst})")
        return verify_stored(link, self.public_keys)

    # -- traversals -----------------------------------------------------------------------------------------

    async def kg_query(self, source_id: Any, *, max_depth: int | None = None, valid_at: Any = None,
                       allowed_agents: Sequence[str] | None = None, limit: int | None = None,
                       as_of: int | None = None, as_agent: str | None = None) -> tuple[int, list[KgNode]]:
        # The original's order: the source id, valid_at and allowed_agents are checked (400) before the depth
        # (422, raised by its storage layer), so a request wrong in both answers 400.
        src = _strict_id(source_id, "source_id")
        at_time = check_timestamp(valid_at, "valid_at") if valid_at not in (None, "") else None
        agents = None if allowed_agents is None else [check_agent_id(a.strip()) for a in allowed_agents
                                                       if isinstance(a, str) and a.strip()]
        depth = 1 if max_depth is None else max_depth
        if depth < 1:
            raise DepthError("max_depth must be >= 1")
        if depth > KG_MAX_DEPTH:
            raise DepthError(f"max_depth={depth} exceeds supported depth={KG_MAX_DEPTH}")
        reader = self.reader(as_agent)
        await self.writer.caught_up()
        if src not in self._nodes(as_of, reader)([src]):
            return depth, []
        rows = kg_query(lambda ids: self.graph.out_links(ids, at=as_of), self._nodes(as_of, reader), src,
                        max_depth=depth, limit=_bounded(limit, KG_DEFAULT_LIMIT, 1, KG_MAX_LIMIT),
                        valid_at=at_time, allowed_agents=agents)
        return depth, rows

    async def lineage(self, memory_id: Any, *, max_depth: int | None = None, as_of: int | None = None,
                      as_agent: str | None = None) -> tuple[NodeRow, list[KgNode]]:
        """Where a memory came from: its ``derived_from`` and ``supersedes`` links, followed outward."""
        mid = check_id(memory_id)
        reader = self.reader(as_agent)
        await self.writer.caught_up()
        node = self._require(mid, as_of, reader)
        depth = _bounded(max_depth, KG_MAX_DEPTH, 1, KG_MAX_DEPTH)

        def provenance(ids: Sequence[str]) -> list[LinkRow]:
            return [lk for lk in self.graph.out_links(ids, at=as_of) if lk.relation in ("derived_from", "supersedes")]

        return node, kg_query(provenance, self._nodes(as_of, reader), mid, max_depth=depth, limit=KG_MAX_LIMIT)

    async def timeline(self, source_id: Any, *, since: Any = None, until: Any = None, limit: int | None = None,
                       as_of: int | None = None, as_agent: str | None = None) -> list[dict[str, Any]]:
        src = check_id(source_id)
        lo = check_timestamp(since, "since") if since not in (None, "") else None
        hi = check_timestamp(until, "until") if until not in (None, "") else None
        reader = self.reader(as_agent)
        await self.writer.caught_up()
        if src not in self._nodes(as_of, reader)([src]):
            raise SourceNotFoundError(src)
        rows = self.graph.timeline(src, since=lo, until=hi, limit=_bounded(limit, KG_DEFAULT_LIMIT, 1, KG_MAX_LIMIT),
                                   at=as_of)
        return [{"target_id": r.link.target_id, "relation": r.link.relation, "valid_from": r.link.valid_from,
                 "valid_until": r.link.valid_until, "observed_by": r.link.observed_by, "title": r.node.title,
                 "target_namespace": r.node.namespace}
                for r in rows if reader.sees_node(r.node)]

    async def find_paths(self, source_id: Any, target_id: Any, *, max_depth: int | None = None,
                         max_results: int | None = None, as_of: int | None = None, as_agent: str | None = None
                         ) -> list[list[str]]:
        src, dst = check_id(source_id), check_id(target_id)
        depth = PATHS_DEFAULT_DEPTH if max_depth is None else max_depth
        if depth < 1:
            raise DepthError("max_depth must be >= 1")
        if depth > PATHS_MAX_DEPTH:
            raise DepthError(f"max_depth={depth} exceeds supported depth={PATHS_MAX_DEPTH}")
        reader = self.reader(as_agent)
        await self.writer.caught_up()
        nodes = self._nodes(as_of, reader)
        if not reader.unfiltered and len(nodes([src, dst])) < len({src, dst}):
            return []

        def neighbours(ids: Sequence[str]) -> list[tuple[str, str]]:
            pairs = [(lk.source_id, lk.target_id) for lk in self.graph.out_links(ids, at=as_of)]
            pairs += [(lk.target_id, lk.source_id) for lk in self.graph.in_links(ids, at=as_of)]
            if reader.unfiltered:
                return pairs
            seen = nodes(sorted({other for _, other in pairs}))
            return [(a, b) for a, b in pairs if b in seen]

        return find_paths(neighbours, src, dst, max_depth=depth,
                          max_results=_bounded(max_results, PATHS_DEFAULT_RESULTS, 1, PATHS_MAX_RESULTS))

    async def all_links(self, *, as_of: int | None = None) -> list[LinkRow]:
        return self.graph.all_links(at=as_of)

    async def links_among(self, ids: Sequence[str]) -> list[LinkRow]:
        """The current links whose two ends are both among ``ids`` (export: the memories the reader sees)."""
        await self.writer.caught_up()
        wanted = set(ids)
        return [lk for lk in self.graph.out_links(sorted(wanted)) if lk.target_id in wanted]

    # -- entities -------------------------------------------------------------------------------------------

    async def entity_register(self, canonical_name: Any, namespace: Any, aliases: Sequence[Any] = (),
                              metadata: Any = None, *, agent_id: str) -> Registration:
        name, ns = check_title(canonical_name), check_namespace(namespace)
        extra = check_metadata(metadata) if isinstance(metadata, dict) else {}
        wanted = [a.strip() for a in aliases if isinstance(a, str) and a.strip()]
        draft = self._entity_memory(name, ns, extra, agent_id)
        vectors = await self.semantic.embed_memories([draft]) if self.semantic is not None else {}
        state: dict[str, Any] = {}

        async def decide() -> list[Decided]:
            existing = self.graph.entity_named(name, ns)
            if existing is not None and existing.kind != ENTITY_KIND:
                msg = (f"entity_register: title '{name}' in namespace '{ns}' is already used by a non-entity "
                       "memory")
                raise ConflictError(msg, existing_id=existing.id)
            events: list[Decided] = []
            entity_id = existing.id if existing is not None else draft.id
            if existing is None:
                events.append((MemoryStored(draft), ns))
                if self.semantic is not None and draft.id in vectors:
                    events.append((self.semantic.event(draft.id, vectors[draft.id]), ns))
            new = [a for a in wanted if a not in set(self.graph.aliases(entity_id))]
            if new:
                events.append((EntityAliased(entity_id, new, now_ts()), ns))
            state.update(entity_id=entity_id, created=existing is None)
            return events

        write = await self.writer.decide_and_append(decide, actor=agent_id)
        return Registration(state["entity_id"], name, ns, self.graph.aliases(state["entity_id"]), state["created"],
                            await self.writer.with_quorum(write))

    @staticmethod
    def _entity_memory(name: str, namespace: str, extra: dict[str, Any], agent_id: str) -> Memory:
        """The original's entity: a long-tier memory titled and worded by its canonical name, tagged entity."""
        now = now_ts()
        metadata = {**extra, "kind": ENTITY_KIND}
        metadata.setdefault("agent_id", agent_id)
        return Memory(id=str(uuid.uuid4()), tier="long", namespace=namespace, title=name, content=name,
                      tags=[ENTITY_TAG], priority=ENTITY_PRIORITY, confidence=1.0, source="api", access_count=0,
                      created_at=now, updated_at=now, metadata=metadata)

    async def entity_by_alias(self, alias: Any, namespace: Any = None, *, as_of: int | None = None,
                              as_agent: str | None = None) -> dict[str, Any]:
        if not isinstance(alias, str) or not alias.strip():
            raise ValidationError("alias is required")
        ns = namespace.strip() if isinstance(namespace, str) and namespace.strip() else None
        if ns is not None:
            check_namespace(ns)
        reader = self.reader(as_agent)
        await self.writer.caught_up()
        entity = self.graph.entity_by_alias(alias.strip(), namespace=ns, at=as_of)
        if entity is None or not reader.sees_node(entity.node):
            return {"found": False, "entity_id": None, "canonical_name": None, "namespace": None, "aliases": []}
        return {"found": True, "entity_id": entity.node.id, "canonical_name": entity.node.title,
                "namespace": entity.node.namespace, "aliases": entity.aliases}


def verify_stored(link: LinkRow, public_keys: PublicKeys) -> dict[str, Any]:
    """The original's memory_verify answer for a stored link, with any source of public keys.

    No signature or no observer: unsigned, not verified. A key for the observer: verified or not (a bad
    signature reports unsigned). No key: not verified, the stored level reported as it is.
    """
    signature = decode_signature(link.signature) if link.signature is not None else None
    verified, level = False, "unsigned"
    if signature is not None and link.observed_by is not None:
        key = public_keys(link.observed_by)
        if key is None:
            level = link.attest_level
        else:
            signable = SignableLink(link.source_id, link.target_id, link.relation, link.observed_by,
                                    link.valid_from, link.valid_until)
            verified = verify_link(key, signable, signature)
            level = (link.attest_level if link.attest_level != "unsigned" else "peer_attested") if verified \
                else "unsigned"
    return {"signature_verified": verified, "attest_level": level,
            "signed_by": link.observed_by if verified else None, "signed_at": link.valid_from if verified else None}


def _applied(write: WriteResult) -> bool:
    """Whether the projector applied any of a write's events in log order (a link removed elsewhere first
    leaves this one's removal refused: nothing was removed by it)."""
    return any(write.refusal(i) is None for i in range(len(write.positions)))
