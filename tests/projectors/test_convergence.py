"""Convergence whatever the interleaving (issue #16, item 2): events from two or three origin partitions, read by
nodes in different interleavings (each partition in its order), give read models that hash the same."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from projectors import MemoryReadModel, Verdict
from projectors.merge_order import causal_ts
from projectors.postgres import PostgresReadModel
from projectors.sqlite import SQLiteReadModel
from schemas.events import (
    Approval,
    MemoryChanges,
    MemoryDeleted,
    MemoryStored,
    MemoryUpdated,
    PendingAction,
    PendingDecided,
    PendingExpired,
    PendingRequested,
    PendingVoted,
    StandardCleared,
    StandardSet,
)
from tests.projectors.convergence import Region, assert_converges, both_orders, memory, model_digest, read_orders

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
    assert_converges(models, regions, random.Random(seed), lambda model: model_digest(model, ids))


def test_a_title_claimed_in_two_regions_keeps_both_and_shows_the_conflict(
        models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    eu.add(MemoryStored(memory("eu-1", "plan", "from eu", at=5), on_conflict="error"), at=5)
    us.add(MemoryStored(memory("us-1", "plan", "from us", at=3), on_conflict="error"), at=3)
    for model in both_orders(models, [eu, us]):
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
    for model in both_orders(models, [eu, us]):
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


# Pending actions decided in two regions (issue #16, item 2): requested in eu; votes, approvals (each with the
# store it runs, naming it as cause), rejections and the sweeper's expiries from either region.
PENDING = ("p1", "p2")
_pending_op = st.tuples(st.sampled_from(("vote", "approve", "approve", "reject", "expire")), st.sampled_from(PENDING),
                        st.sampled_from(("v1", "v2")), st.integers(1, 30))
_pending_plans = st.tuples(st.lists(_pending_op, max_size=6), st.lists(_pending_op, max_size=6))


def _ts(at: int) -> str:
    return f"2026-12-01T10:00:{at:02d}.000000+00:00"


def build_pending(plans: tuple[list[Any], list[Any]]) -> tuple[list[Region], dict[str, list[str]]]:
    """The two regions' logs; also each action's would-be results (the ids its approvals store)."""
    eu, us = Region("eu"), Region("us")
    for pid in PENDING:
        eu.add(PendingRequested(PendingAction(pid, "store", "hive", {"title": pid}, "bob", _ts(0), 20)), at=0)
    results: dict[str, list[str]] = {pid: [] for pid in PENDING}
    for region, plan in ((eu, plans[0]), (us, plans[1])):
        for op, pid, agent, at in plan:
            if op == "vote":
                region.add(PendingVoted(pid, Approval(agent, _ts(at)), 2), at=at)
            elif op == "expire":
                region.add(PendingExpired([pid], _ts(at)), at=at)
            elif op == "reject":
                region.add(PendingDecided(pid, "rejected", agent, _ts(at), [Approval(agent, _ts(at))]), at=at)
            else:
                result = f"{region.name}-r{len(region.records)}"
                decided = region.add(PendingDecided(pid, "approved", agent, _ts(at), [Approval(agent, _ts(at))],
                                                    True, result), at=at)
                region.add(MemoryStored(memory(result, f"result {result}", pid, at=at)), at=at,
                           cause=decided.event.envelope.event_id)
                results[pid].append(result)
    return [eu, us], results


def _executions(model: MemoryReadModel, results: dict[str, list[str]]) -> dict[str, tuple[str, int]]:
    """Each action's status and how many of its approvals' stores the model holds."""
    out = {}
    for pid, ids in results.items():
        pending = model.governance.pending(pid)
        assert pending is not None
        out[pid] = (pending.status, sum(model.queries.get(i) is not None for i in ids))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=_pending_plans, seed=st.integers(0, 2**32))
def test_pending_actions_decide_and_execute_once_whatever_the_interleaving(
        models: Callable[[], MemoryReadModel], plans: tuple[list[Any], list[Any]], seed: int) -> None:
    regions, results = build_pending(plans)
    ids = [i for found in results.values() for i in found]
    states = set()
    for model in read_orders(models, regions, random.Random(seed), mixed=2):
        executions = _executions(model, results)
        for status, executed in executions.values():
            assert executed == (1 if status == "approved" else 0), executions
        states.add((model_digest(model, ids), tuple(sorted(executions.items()))))
    assert len(states) == 1


def test_a_late_earlier_approval_displaces_the_one_applied_and_undoes_what_it_ran(
        models: Callable[[], MemoryReadModel]) -> None:
    plans = ([("approve", "p1", "v1", 5)], [("approve", "p1", "v2", 3)])
    (eu, us), results = build_pending(plans)
    model = models()
    model.apply_batch([Verdict(r) for r in eu.records])  # eu's approval (at 5) applied, its store run
    assert model.queries.get(results["p1"][0]) is not None
    model.apply_batch([Verdict(r) for r in us.records])  # us approved first in merge order (at 3)
    pending = model.governance.pending("p1")
    assert pending is not None and (pending.status, pending.decided_by) == ("approved", "v2")
    assert model.queries.get(results["p1"][0]) is None and model.queries.get(results["p1"][1]) is not None
    refused = {str(r["event_id"]): str(r["reason"]) for r in model.rejected_events()}
    assert "decided earlier in merge order" in refused[eu.records[2].event.envelope.event_id]


def test_votes_read_before_their_request_count(models: Callable[[], MemoryReadModel]) -> None:
    (eu, us), _ = build_pending(([], [("vote", "p2", "v1", 4), ("vote", "p2", "v2", 6), ("vote", "p2", "v1", 7)]))
    model = models()
    model.apply_batch([Verdict(r) for r in us.records])
    model.apply_batch([Verdict(r) for r in eu.records])
    pending = model.governance.pending("p2")
    assert pending is not None and pending.status == "pending"
    assert pending.approvals == [{"agent_id": "v1", "approved_at": _ts(4)}, {"agent_id": "v2", "approved_at": _ts(6)}]
    assert [str(r["reason"]) for r in model.rejected_events()] == ["v1 already voted on p2"]


def _forget_pending_history(model: MemoryReadModel) -> None:
    """The model as an earlier version left it: pending rows without their history."""
    if isinstance(model, PostgresReadModel):
        with model.engine.begin() as conn:
            conn.execute(text("DELETE FROM pending_history"))
    else:
        assert isinstance(model, SQLiteReadModel)
        model._db.execute("DELETE FROM pending_history")
        model._db.commit()


def test_rows_decided_before_history_was_kept_stay_decided(models: Callable[[], MemoryReadModel]) -> None:
    (eu, us), _ = build_pending(([("vote", "p2", "v1", 2), ("reject", "p1", "v2", 3)],
                                 [("vote", "p2", "v1", 4), ("vote", "p2", "v2", 5), ("approve", "p1", "v1", 1)]))
    model = models()
    model.apply_batch([Verdict(r) for r in eu.records])
    _forget_pending_history(model)
    model.apply_batch([Verdict(r) for r in us.records])
    p1, p2 = model.governance.pending("p1"), model.governance.pending("p2")
    # The history starts from the rows: p1's rejection and p2's first vote stand, whatever merge order says.
    assert p1 is not None and (p1.status, p1.decided_by) == ("rejected", "v2")
    assert p2 is not None and [a["agent_id"] for a in p2.approvals] == ["v1", "v2"]
    assert sorted(str(r["reason"]) for r in model.rejected_events()) == [
        "follows decision us-3, which was refused: pending action p1 is already rejected",
        "pending action p1 is already rejected", "v1 already voted on p2"]
