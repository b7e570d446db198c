"""The knowledge-graph contract: a recorded log of memory, link and entity events gives these answers on every
read model, now and as of any earlier offset; random graphs agree with a brute-force reference.

Subclasses provide a ``model`` fixture (a fresh, empty :class:`MemoryReadModel`).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.log import LogRecord
from projectors import LinkRow, MemoryReadModel, Verdict, find_paths, hop_allowed, kg_query
from schemas import Memory, NodeKey, encode_payload
from schemas.events import (
    EntityAliased,
    Link,
    LinkCreated,
    LinkDeleted,
    LinkInvalidated,
    MemoryDeleted,
    MemoryStored,
    MemoryUpdated,
)
from schemas.events.memory import MemoryChanges
from tests.factories import node_key, signed

_T = "2026-05-{:02d}T08:00:00+00:00"


def memory(mid: str, *, title: str | None = None, namespace: str = "proj/a", scope: str = "collective",
           kind: str | None = None, day: int = 1) -> Memory:
    metadata: dict[str, Any] = {"agent_id": "alice", "scope": scope}
    if kind:
        metadata["kind"] = kind
    return Memory(id=mid, tier="long", namespace=namespace, title=title or f"title {mid}", content="c",
                  tags=[], priority=5, confidence=1.0, source="api", access_count=0, created_at=_T.format(day),
                  updated_at=_T.format(day), metadata=metadata)


def link(src: str, dst: str, relation: str = "related_to", *, day: int = 2, valid_from: str | None = "same",
         valid_until: str | None = None, observed_by: str | None = "alice") -> Link:
    at = _T.format(day) if day < 32 else f"2026-06-{day - 31:02d}T08:00:00+00:00"
    return Link(src, dst, relation, created_at=at, valid_from=at if valid_from == "same" else valid_from,
                valid_until=valid_until, observed_by=observed_by)


class Recorder:
    """Signed records with consecutive offsets, as the log would hand them to a projector."""

    def __init__(self, key: NodeKey, *, start: int = 0) -> None:
        self.key = key
        self.records: list[LogRecord] = []
        self.offset = start

    def add(self, *events: Any) -> int:
        for event in events:
            self.offset += 1
            self.records.append(LogRecord("p", self.offset, signed(self.key, event_type=event.TYPE,
                                                                   payload=encode_payload(event))))
        return self.offset


def load(model: MemoryReadModel, records: Sequence[LogRecord]) -> None:
    model.apply_batch([Verdict(r) for r in records])


def recorded_graph(tmp: Path) -> tuple[Recorder, dict[str, int]]:
    """a→b→c→d (related_to), a→c (derived_from), e private elsewhere, b→e; then time passes: a→c invalidated,
    c deleted, a→b deleted and re-created as supersedes, an entity with aliases."""
    rec = Recorder(node_key(tmp))
    marks: dict[str, int] = {}
    rec.add(*(MemoryStored(memory(m, day=i + 1)) for i, m in enumerate("abcd")),
            MemoryStored(memory("e", namespace="agents/bob", scope="private", day=5)))
    rec.add(LinkCreated(link("a", "b", day=6)), LinkCreated(link("b", "c", day=7)),
            LinkCreated(link("c", "d", day=8)), LinkCreated(link("a", "c", "derived_from", day=9, valid_from=None)),
            LinkCreated(link("b", "e", day=10, observed_by="bob")))
    marks["linked"] = rec.offset
    rec.add(LinkInvalidated("a", "c", "derived_from", _T.format(20)))
    marks["invalidated"] = rec.offset
    rec.add(MemoryUpdated("d", MemoryChanges(title="renamed d"), _T.format(21)))
    marks["renamed"] = rec.offset
    rec.add(MemoryDeleted("c"))
    marks["c_deleted"] = rec.offset
    rec.add(LinkDeleted("a", "b", "related_to"), LinkCreated(link("a", "b", "supersedes", day=23)))
    marks["relinked"] = rec.offset
    rec.add(MemoryStored(memory("ent", title="PostgreSQL", kind="entity", day=24)),
            EntityAliased("ent", ["pg", "postgres"], _T.format(24)))
    marks["entity"] = rec.offset
    rec.add(EntityAliased("ent", ["pg", "psql"], _T.format(25)))
    # Refused: a link to a memory that is gone, and one to itself, and aliases for a non-entity.
    rec.add(LinkCreated(link("a", "c", day=26)), LinkCreated(link("a", "a", day=26)),
            EntityAliased("a", ["x"], _T.format(26)))
    marks["end"] = rec.offset
    return rec, marks


def _edges(model: MemoryReadModel, at: int | None, ids: Sequence[str]) -> list[tuple[str, str]]:
    pairs = [(lk.source_id, lk.target_id) for lk in model.graph.out_links(ids, at=at)]
    return pairs + [(lk.target_id, lk.source_id) for lk in model.graph.in_links(ids, at=at)]


def query(model: MemoryReadModel, source: str, depth: int, *, at: int | None = None, limit: int = 200,
          **kw: Any) -> list[str]:
    rows = kg_query(lambda ids: model.graph.out_links(ids, at=at), lambda ids: model.graph.nodes(ids, at=at),
                    source, max_depth=depth, limit=limit, **kw)
    return ["->".join(r.path) + f":{r.link.relation}" for r in rows]


class GraphContract:
    @pytest.fixture
    def loaded(self, model: MemoryReadModel, tmp_path: Path) -> tuple[MemoryReadModel, dict[str, int]]:
        rec, marks = recorded_graph(tmp_path)
        load(model, rec.records)
        load(model, rec.records)  # re-delivery changes nothing
        return model, marks

    def test_refusals_and_current_links(self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        reasons = [r["reason"] for r in model.rejected_events()]
        assert reasons == ["target memory not found: c", "cannot link a memory to itself", "entity not found: a"]
        assert [(lk.source_id, lk.target_id, lk.relation) for lk in model.graph.all_links()] == [
            ("b", "e", "related_to"), ("a", "b", "supersedes")]
        assert model.graph.link_count() == 2
        assert model.graph.link_count(at=marks["linked"]) == 5

    def test_valid_from_is_backfilled_and_invalidation_keeps_history(
            self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        before = model.graph.link("a", "c", "derived_from", at=marks["linked"])
        assert before is not None and before.valid_from == _T.format(1) and before.valid_until is None
        after = model.graph.link("a", "c", "derived_from", at=marks["invalidated"])
        assert after is not None and after.valid_until == _T.format(20)
        assert model.graph.link("a", "c", "derived_from") is None  # c was deleted since

    def test_kg_query_now_and_as_of(self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        assert query(model, "a", 5) == ["a->b:supersedes", "a->b->e:related_to"]
        # a→c holds since a was created (day 1, backfilled): it sorts first.
        assert query(model, "a", 5, at=marks["linked"]) == [
            "a->c:derived_from", "a->b:related_to", "a->b->c:related_to", "a->c->d:related_to",
            "a->b->e:related_to", "a->b->c->d:related_to"]
        assert query(model, "a", 1, at=marks["linked"], valid_at=_T.format(3)) == ["a->c:derived_from"]
        assert query(model, "a", 2, at=marks["invalidated"], valid_at=_T.format(25)) == [
            "a->b:related_to", "a->b->c:related_to", "a->b->e:related_to"]
        assert query(model, "a", 3, at=marks["linked"], allowed_agents=["bob"]) == []
        assert query(model, "b", 1, at=marks["linked"], allowed_agents=["bob"]) == ["b->e:related_to"]
        assert query(model, "a", 3, at=marks["linked"], limit=3) == ["a->c:derived_from", "a->b:related_to",
                                                                     "a->b->c:related_to"]

    def test_nodes_as_of(self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        assert model.graph.nodes(["d"], at=marks["linked"])["d"].title == "title d"
        assert model.graph.nodes(["d"])["d"].title == "renamed d"
        assert "c" in model.graph.nodes(["c"], at=marks["renamed"]) and "c" not in model.graph.nodes(["c"])
        assert model.graph.nodes(["e"])["e"].scope == "private"

    def test_links_of_both_directions(self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        assert [(lk.source_id, lk.target_id) for lk in model.graph.links_of("b", at=marks["linked"])] == [
            ("a", "b"), ("b", "c"), ("b", "e")]
        assert [(lk.source_id, lk.target_id, lk.relation) for lk in model.graph.links_of("b")] == [
            ("b", "e", "related_to"), ("a", "b", "supersedes")]

    def test_timeline(self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        rows = model.graph.timeline("a", since=None, until=None, limit=10, at=marks["linked"])
        assert [(r.link.target_id, r.link.valid_from, r.node.title) for r in rows] == [
            ("c", _T.format(1), "title c"), ("b", _T.format(6), "title b")]
        assert [r.link.target_id for r in model.graph.timeline("a", since=_T.format(2), until=None, limit=10,
                                                               at=marks["linked"])] == ["b"]
        assert len(model.graph.timeline("a", since=None, until=None, limit=1, at=marks["linked"])) == 1

    def test_find_paths(self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        at = marks["linked"]
        assert find_paths(lambda ids: _edges(model, at, ids), "d", "a", max_depth=4, max_results=10) == [
            ["d", "c", "a"], ["d", "c", "b", "a"]]
        assert find_paths(lambda ids: _edges(model, None, ids), "d", "a", max_depth=7, max_results=10) == []
        assert find_paths(lambda ids: _edges(model, None, ids), "e", "a", max_depth=2, max_results=10) == [
            ["e", "b", "a"]]

    def test_entities(self, loaded: tuple[MemoryReadModel, dict[str, int]]) -> None:
        model, marks = loaded
        entity = model.graph.entity_by_alias("psql", namespace=None)
        assert entity is not None and entity.node.id == "ent" and entity.aliases == ["pg", "postgres", "psql"]
        assert model.graph.entity_by_alias("psql", namespace=None, at=marks["entity"]) is None
        assert model.graph.entity_by_alias("pg", namespace="other") is None
        named = model.graph.entity_named("PostgreSQL", "proj/a")
        assert named is not None and named.kind == "entity"

    # -- random graphs against a brute-force reference ------------------------------------------------------

    # One test body for every backend (a subclass each): Hypothesis sees several executors of one function,
    # and an example found on one backend is replayed on the others, which is what a contract wants. The
    # function-scoped model is shared by the examples on purpose: each example uses ids of its own.
    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors])
    @given(data=st.data())
    def test_random_graphs_match_brute_force(self, model: MemoryReadModel, tmp_path: Path, data: st.DataObject
                                             ) -> None:
        prefix = uuid.uuid4().hex[:6]  # the model is shared by every example: each one has its own ids
        n = data.draw(st.integers(2, 7))
        ids = [f"{prefix}-{i}" for i in range(n)]
        pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                             st.sampled_from(["related_to", "supersedes"]),
                                             st.sampled_from([None, "bob", "carol"]),
                                             st.sampled_from([None, 3, 12])), max_size=18))
        rec = Recorder(node_key(tmp_path), start=model.position().get("p", 0))
        rec.add(*(MemoryStored(memory(m, title=m)) for m in ids))
        links: list[Link] = []
        snapshots: list[tuple[int, list[Link]]] = [(rec.offset, [])]
        for day, (s, t, rel, who, until) in enumerate(pairs, start=1):
            if s == t:
                continue
            key = (ids[s], ids[t], rel)
            if who == "carol" and any((x.source_id, x.target_id, x.relation) == key for x in links):
                rec.add(LinkDeleted(*key))  # some draws delete the link instead of replacing it
                links = [x for x in links if (x.source_id, x.target_id, x.relation) != key]
            else:
                lk = link(ids[s], ids[t], rel, day=day, observed_by=who,
                          valid_until=None if until is None else _T.format(until))
                links = [x for x in links if (x.source_id, x.target_id, x.relation) != key] + [lk]
                rec.add(LinkCreated(lk))
            snapshots.append((rec.offset, list(links)))
        load(model, rec.records)
        # Now, or as of a random earlier offset: the graph then must be the links then.
        at, then = snapshots[data.draw(st.integers(0, len(snapshots) - 1))]
        rows = [LinkRow(x.source_id, x.target_id, x.relation, x.created_at, x.valid_from, x.valid_until,
                        x.observed_by) for x in then]
        source, target = ids[data.draw(st.integers(0, n - 1))], ids[data.draw(st.integers(0, n - 1))]
        depth = data.draw(st.integers(1, 5))
        limit = data.draw(st.integers(1, 30))
        valid_at = data.draw(st.sampled_from([None, _T.format(5)]))
        agents = data.draw(st.sampled_from([None, ["bob"], ["bob", "carol"]]))
        got = query(model, source, depth, at=at, limit=limit, valid_at=valid_at, allowed_agents=agents)
        assert got == brute_kg(rows, source, depth, limit, valid_at, agents)
        max_results = data.draw(st.integers(1, 12))
        path_depth = data.draw(st.integers(1, 7))
        found = find_paths(lambda q: _edges(model, at, q), source, target, max_depth=path_depth,
                           max_results=max_results)
        assert found == brute_paths(rows, source, target, path_depth, max_results)


def brute_kg(links: list[LinkRow], source: str, depth: int, limit: int, valid_at: str | None,
             agents: list[str] | None) -> list[str]:
    """Every simple directed path of 1..depth hops, one row per path, in the original's order."""
    if agents is not None and not agents:
        return []
    usable = [lk for lk in links if hop_allowed(lk, valid_at=valid_at, allowed_agents=agents)]
    rows: list[tuple[Any, ...]] = []

    def walk(path: list[str], hops: list[LinkRow]) -> None:
        if hops:
            last = hops[-1]
            rows.append((len(hops), last.valid_from or last.created_at, last.created_at, tuple(path),
                         "->".join(path) + f":{last.relation}"))
        if len(hops) == depth:
            return
        for lk in usable:
            if lk.source_id == path[-1] and lk.target_id not in path:
                walk([*path, lk.target_id], [*hops, lk])

    walk([source], [])
    return [r[-1] for r in sorted(rows)[:limit]]


def brute_paths(links: list[LinkRow], source: str, target: str, depth: int, limit: int) -> list[list[str]]:
    """Every simple undirected path from source to target of at most ``depth`` hops, shortest first, then by
    JSON text (the original's ORDER BY depth, path)."""
    if source == target:
        return [[source]]
    nodes = sorted({x for lk in links for x in (lk.source_id, lk.target_id)} | {source, target})
    neighbours = {(lk.source_id, lk.target_id) for lk in links} | {(lk.target_id, lk.source_id) for lk in links}
    found: list[list[str]] = []
    others = [x for x in nodes if x not in (source, target)]
    for middle_len in range(depth):
        for middle in itertools.permutations(others, middle_len):
            path = [source, *middle, target]
            if all((a, b) in neighbours for a, b in itertools.pairwise(path)):
                found.append(path)
    found.sort(key=lambda p: (len(p), json.dumps(p, separators=(",", ":"))))
    return found[:limit]
