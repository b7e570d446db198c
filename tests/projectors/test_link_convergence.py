"""Links converge whatever the interleaving (issue #16, item 2): concurrent creations, invalidations and deletions
of one link from several regions, and links racing the store or the deletion of one of their memories, end in
the same graph on every node, on SQLite and Postgres alike."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projectors import MemoryReadModel
from projectors.sqlite import SQLiteReadModel
from schemas import format_ts
from schemas.events import Link, LinkCreated, LinkDeleted, LinkInvalidated, MemoryDeleted, MemoryStored
from tests.contract.graph_contract import load, recorded_graph
from tests.projectors.convergence import T0, Region, assert_converges, both_orders, hash_state, memory

REGIONS = ("eu", "us", "ap")
RELATIONS = ("related_to", "supersedes")


def _ts(at: int) -> str:
    return format_ts(T0.replace(second=at))


def _link(source: str, target: str, relation: str, at: int, *, by: str = "alice") -> Link:
    return Link(source, target, relation, created_at=_ts(at), observed_by=by)


def graph_digest(model: MemoryReadModel) -> str:
    """SHA-256 of what every node must agree on: its current links (every field), the graph's memories and the
    link conflicts an operator sees."""
    state: dict[str, Any] = {
        "links": sorted((dataclasses.asdict(lk) for lk in model.graph.all_links()), key=json.dumps),
        "memories": sorted(m.id for m in model.queries.all_memories()),
        "conflicts": model.link_conflicts(),
    }
    return hash_state(state)


def _keys(model: MemoryReadModel) -> list[tuple[str, str, str, str | None]]:
    return [(lk.source_id, lk.target_id, lk.relation, lk.valid_until) for lk in model.graph.all_links()]


def test_a_delete_later_in_merge_order_wins_over_a_create_and_the_other_way(
        models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    for i, name in enumerate("ab"):
        eu.add(MemoryStored(memory(name, name, "x", at=i)), at=i)
    eu.add(LinkCreated(_link("a", "b", "related_to", 5)), at=5)
    us.add(LinkDeleted("a", "b", "related_to"), at=8)  # us deleted it after it saw the link
    eu.add(LinkCreated(_link("a", "b", "supersedes", 9)), at=9)
    us.add(LinkDeleted("a", "b", "supersedes"), at=7)  # concurrent, earlier: finds nothing, changes nothing
    for model in both_orders(models, [eu, us]):
        assert _keys(model) == [("a", "b", "supersedes", None)]
        assert model.link_conflicts() == [
            {"source_id": "a", "target_id": "b", "relation": "related_to", "regions": ["eu", "us"],
             "held_by": {"region": "us", "type": "link.deleted"}},
            {"source_id": "a", "target_id": "b", "relation": "supersedes", "regions": ["eu", "us"],
             "held_by": {"region": "eu", "type": "link.created"}}]


def test_an_invalidation_applies_to_the_creation_before_it_in_merge_order(
        models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    for i, name in enumerate("ab"):
        eu.add(MemoryStored(memory(name, name, "x", at=i)), at=i)
    eu.add(LinkCreated(_link("a", "b", "related_to", 5, by="eu-agent")), at=5)
    us.add(LinkInvalidated("a", "b", "related_to", _ts(20)), at=6)
    eu.add(LinkCreated(_link("a", "b", "related_to", 7, by="eu-again")), at=7)  # re-created: valid again
    for model in both_orders(models, [eu, us]):
        links = model.graph.all_links()
        assert [(lk.observed_by, lk.valid_until) for lk in links] == [("eu-again", None)]


def test_a_link_racing_the_deletion_of_its_memory_never_shows(models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    for i, name in enumerate("ab"):
        eu.add(MemoryStored(memory(name, name, "x", at=i)), at=i)
    eu.add(MemoryDeleted("b"), at=5)
    us.add(LinkCreated(_link("a", "b", "related_to", 6)), at=6)  # us had not seen the deletion
    us.add(LinkCreated(_link("b", "a", "related_to", 4)), at=4)  # earlier than it: closed by it
    for model in both_orders(models, [eu, us]):
        assert _keys(model) == [] and model.queries.tombstoned(["b"]) == {"b"}


def test_a_link_that_arrives_before_its_memory_waits_for_it(models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    eu.add(MemoryStored(memory("a", "a", "x", at=0)), at=0)
    us.add(MemoryStored(memory("b", "b", "x", at=1)), at=1)
    eu.add(LinkCreated(_link("a", "b", "related_to", 5)), at=5)  # eu had seen b
    for model in both_orders(models, [eu, us]):
        links = model.graph.all_links()
        assert _keys(model) == [("a", "b", "related_to", None)]
        assert links[0].valid_from == memory("a", "a", "x", at=0).created_at  # backfilled from its source


def test_the_links_per_day_quota_is_counted_per_region(models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    for i, name in enumerate("abcd"):
        eu.add(MemoryStored(memory(name, name, "x", at=i)), at=i)
    eu.add(LinkCreated(_link("a", "b", "related_to", 5), max_per_day=1), at=5)
    eu.add(LinkCreated(_link("a", "c", "related_to", 6), max_per_day=1), at=6)  # over the quota in eu
    us.add(LinkCreated(_link("a", "d", "related_to", 7), max_per_day=1), at=7)  # the first in us
    for model in both_orders(models, [eu, us]):
        assert [k[:2] for k in _keys(model)] == [("a", "b"), ("a", "d")]
        # (Read us first, the link to memories not seen yet is also reported, and shows once they arrive.)
        assert [r["reason"] for r in model.rejected_events() if "quota" in str(r["reason"])] == [
            "daily link quota: agent 'agent' has linked 1 of 1 today"]


def test_one_partition_keeps_exact_time_travel(tmp_path: Path) -> None:
    """On a log of one partition, merge order is log order: the graph's versions, current links and refusals
    are those of the arrival-order rules, at every offset."""
    rec, _ = recorded_graph(tmp_path)
    merged, arrival = SQLiteReadModel(tmp_path / "merged.db"), SQLiteReadModel(tmp_path / "arrival.db")
    arrival.partitioned = False
    try:
        for model in (merged, arrival):
            load(model, rec.records)
        assert merged.rejected_events() == arrival.rejected_events()
        for at in range(rec.records[-1].offset + 1):
            assert merged.graph.all_links(at=at) == arrival.graph.all_links(at=at), at
            assert merged.graph.link_count(at=at) == arrival.graph.link_count(at=at), at
    finally:
        merged.close()
        arrival.close()


# One operation of a region: ("store", slot) its own memory; ("link" | "invalidate" | "unlink", a, b, relation,
# metered) on memories of any region (indexes into every memory id); ("forget", a) deletes a memory.
_ends = (st.integers(0, 5), st.integers(0, 5), st.sampled_from(RELATIONS))
_op = st.one_of(st.tuples(st.just("store"), st.integers(0, 1)),
                st.tuples(st.just("link"), *_ends, st.booleans()),
                st.tuples(st.just("link"), *_ends, st.booleans()),
                st.tuples(st.just("invalidate"), *_ends),
                st.tuples(st.just("unlink"), *_ends),
                st.tuples(st.just("forget"), st.integers(0, 5)))
_plans = st.lists(st.lists(st.tuples(_op, st.integers(0, 50)), max_size=10), min_size=2, max_size=3)
IDS = [f"{r}-m{i}" for r in REGIONS[:3] for i in range(2)]


def build(plans: list[list[tuple[Any, int]]]) -> list[Region]:
    regions = [Region(name) for name in REGIONS[:len(plans)]]
    for region, plan in zip(regions, plans, strict=True):
        for op, at in plan:
            kind = op[0]
            if kind == "store":
                m = f"{region.name}-m{op[1]}"
                region.add(MemoryStored(memory(m, m, "x", at=at)), at=at)
            elif kind == "forget":
                region.add(MemoryDeleted(IDS[op[1]]), at=at)
            else:
                source, target, relation = IDS[op[1]], IDS[op[2]], op[3]
                if kind == "link":
                    region.add(LinkCreated(_link(source, target, relation, at, by=region.name),
                                           max_per_day=2 if op[4] else None), at=at)
                elif kind == "invalidate":
                    region.add(LinkInvalidated(source, target, relation, _ts(at)), at=at)
                else:
                    region.add(LinkDeleted(source, target, relation), at=at)
    return regions


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=_plans, seed=st.integers(0, 2**32))
def test_every_interleaving_gives_the_same_graph(models: Callable[[], MemoryReadModel],
                                                 plans: list[list[tuple[Any, int]]], seed: int) -> None:
    assert_converges(models, build(plans), random.Random(seed), graph_digest)
