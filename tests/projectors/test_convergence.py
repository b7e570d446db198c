"""Convergence whatever the interleaving (issue #16, item 2): events from two or three origin partitions, read by
nodes in different interleavings (each partition in its order), give read models that hash the same."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projectors import MemoryReadModel, Verdict
from projectors.merge_order import causal_ts
from projectors.sqlite import SQLiteReadModel
from schemas.events import (
    MemoryChanges,
    MemoryDeleted,
    MemoryStored,
    MemoryUpdated,
    StandardCleared,
    StandardSet,
)
from tests.projectors.convergence import Region, apply_interleaved, memory, model_digest

TITLES = ("plan", "notes", "todo")

# One operation of a region's writer: ("store", title, content, on_conflict) | ("update", target, change) |
# ("delete", target) | ("standard", id) | ("clear",) (a namespace's policy); a target is an index into every
# store of every region (so an update may name a memory another region stores later: it reaches some nodes
# before the store).
_store = st.tuples(st.just("store"), st.sampled_from(TITLES), st.sampled_from(("x", "y", "z")),
                   st.sampled_from(("merge", "version", "error")))
_change = st.one_of(st.builds(lambda c: MemoryChanges(content=c), st.sampled_from(("u", "v", "w"))),
                    st.builds(lambda t: MemoryChanges(title=t), st.sampled_from(TITLES)),
                    st.builds(lambda p: MemoryChanges(priority=p), st.integers(1, 9)))
_update = st.tuples(st.just("update"), st.integers(0, 20), _change)
_delete = st.tuples(st.just("delete"), st.integers(0, 20))
_policy = st.one_of(st.tuples(st.just("standard"), st.sampled_from(("std-a", "std-b"))), st.just(("clear",)))
_op = st.tuples(st.one_of(_store, _store, _update, _update, _delete, _policy), st.integers(0, 30))
_regions = st.lists(st.lists(_op, max_size=8), min_size=2, max_size=3)


def build(plans: list[list[tuple[Any, int]]]) -> tuple[list[Region], list[str]]:
    """The regions' logs from their plans; also every stored id."""
    regions = [Region(name) for name in ("eu", "us", "ap")[:len(plans)]]
    ids = [f"{r.name}-m{i}" for r, plan in zip(regions, plans, strict=True) for i in range(len(plan))
           if plan[i][0][0] == "store"]
    for region, plan in zip(regions, plans, strict=True):
        for i, (op, at) in enumerate(plan):
            if op[0] == "store":
                _, title, content, on_conflict = op
                m = memory(f"{region.name}-m{i}", title, content, at=at, agent=region.name)
                region.add(MemoryStored(m, on_conflict=on_conflict), at=at)
            elif op[0] == "standard":
                region.add(StandardSet("hive", op[1], f"2026-12-01T11:00:{at:02d}.000000+00:00"), at=at)
            elif op[0] == "clear":
                region.add(StandardCleared("hive"), at=at)
            elif ids and op[0] == "update":
                region.add(MemoryUpdated(ids[op[1] % len(ids)], op[2], f"2026-12-01T11:00:{at:02d}.000000+00:00"),
                           at=at)
            elif ids:
                region.add(MemoryDeleted(ids[op[1] % len(ids)]), at=at)
    return regions, ids


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=_regions, seed=st.integers(0, 2**32))
def test_every_interleaving_hashes_the_same(models: Callable[[], MemoryReadModel],
                                            plans: list[list[tuple[Any, int]]], seed: int) -> None:
    regions, ids = build(plans)
    rng = random.Random(seed)
    digests = set()
    for _ in range(3):
        model = models()
        apply_interleaved(model, regions, rng)
        digests.add(model_digest(model, ids))
    # Region by region, in both directions: every event of the second region arrives late.
    for order in (regions, regions[::-1]):
        model = models()
        for region in order:
            if region.records:
                model.apply_batch([Verdict(r) for r in region.records])
        digests.add(model_digest(model, ids))
    assert len(digests) == 1


def test_a_title_claimed_in_two_regions_keeps_both_and_shows_the_conflict(
        models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    eu.add(MemoryStored(memory("eu-1", "plan", "from eu", at=5), on_conflict="error"), at=5)
    us.add(MemoryStored(memory("us-1", "plan", "from us", at=3), on_conflict="error"), at=3)
    for order in ((eu, us), (us, eu)):
        model = models()
        for region in order:
            model.apply_batch([Verdict(r) for r in region.records])
        us_memory, eu_memory = model.queries.get("us-1"), model.queries.get("eu-1")
        assert us_memory is not None and us_memory.title == "plan", "the earlier claim (merge order) shows the title"
        assert eu_memory is not None and eu_memory.title == "plan (conflict eu-1)" and eu_memory.content == "from eu"
        assert model.title_conflicts() == [{"id": "eu-1", "namespace": "hive", "claimed_title": "plan",
                                            "partition": "eu", "title": "plan (conflict eu-1)", "held_by": "us-1"}]
    # The winner deleted: the other region's memory takes its title back.
    us.add(MemoryDeleted("us-1"), at=9)
    model.apply_batch([Verdict(us.records[-1])])
    eu_memory = model.queries.get("eu-1")
    assert eu_memory is not None and eu_memory.title == "plan" and model.title_conflicts() == []


def test_last_writer_wins_per_field_and_an_early_update_waits_for_its_store(
        models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    eu.add(MemoryStored(memory("eu-1", "plan", "v1", at=1)), at=1)
    eu.add(MemoryUpdated("eu-1", MemoryChanges(content="eu later"), "2026-12-01T10:00:09.000000+00:00"), at=9)
    us.add(MemoryUpdated("eu-1", MemoryChanges(content="us earlier", priority=8),
                         "2026-12-01T10:00:05.000000+00:00"), at=5)
    for order in ((eu, us), (us, eu)):
        model = models()
        for region in order:
            model.apply_batch([Verdict(r) for r in region.records])
        m = model.queries.get("eu-1")
        assert m is not None and (m.content, m.priority) == ("eu later", 8)


def test_a_writer_stamps_past_what_its_node_has_seen() -> None:
    seen = "2026-12-01T10:00:05.000000+00:00"
    assert causal_ts("2026-12-01T10:00:00.000000+00:00", seen) == "2026-12-01T10:00:05.000001+00:00"
    assert causal_ts("2026-12-01T10:00:09.000000+00:00", seen) == "2026-12-01T10:00:09.000000+00:00"
    assert causal_ts("2026-12-01T10:00:00.000000+00:00", None) == "2026-12-01T10:00:00.000000+00:00"


def test_a_log_of_one_partition_keeps_no_history_and_the_same_state(tmp_path: Path) -> None:
    """A node whose log has one partition (every deployment but regions and multi-partition Kafka) keeps no
    memory history: nothing can arrive late there. Its state is what a converging model reaches."""
    eu = Region("eu")
    for i, at in enumerate((1, 2, 3)):
        eu.add(MemoryStored(memory(f"eu-m{i}", TITLES[i], "x", at=at), on_conflict="error"), at=at)
    eu.add(MemoryUpdated("eu-m0", MemoryChanges(content="y"), "2026-12-01T11:00:04.000000+00:00"), at=4)
    eu.add(MemoryDeleted("eu-m1"), at=5)
    single, converging = SQLiteReadModel(tmp_path / "single.db"), SQLiteReadModel(tmp_path / "converging.db")
    single.partitioned = False
    try:
        for model in (single, converging):
            model.apply_batch([Verdict(r) for r in eu.records])
        history = "SELECT COUNT(*) FROM memory_history"
        assert single._db.execute(history).fetchone()[0] == 0
        assert converging._db.execute(history).fetchone()[0] == len(eu.records)
        ids = [f"eu-m{i}" for i in range(3)]
        assert model_digest(single, ids) == model_digest(converging, ids)
    finally:
        single.close()
        converging.close()
