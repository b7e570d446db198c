"""The memory history is bounded (docs/regions.md, "Convergence"): events older than the horizon are folded into
settled copies of their memories and dropped, and a node that settles ends in the same state as one that keeps
everything, whatever the interleaving, late events included."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from infra.log import LogRecord
from projectors import MemoryReadModel, Verdict
from projectors.postgres import PostgresReadModel
from projectors.sqlite import SQLiteReadModel
from schemas import VECTOR_DIM, encode_vector
from schemas.events import MemoryChanges, MemoryEmbedded, MemoryStored, MemoryUpdated
from tests.projectors.convergence import Region, apply_interleaved, memory, model_digest
from tests.projectors.test_convergence import _regions, build


def _settling(model: MemoryReadModel) -> MemoryReadModel:
    """A model that settles as soon as it can: the horizon is the oldest region's last stamp (no margin beyond
    it, which no late event of a region read can precede), after every batch."""
    model.history_horizon_s, model.history_settle_least = 1e9, 1
    return model


def _apply(model: MemoryReadModel, regions: list[Region], rng: random.Random) -> None:
    """One interleaving, settling after each batch once every region has been read (a region a node has not
    read yet is not in the horizon: in production the margin, ``history_horizon_s``, covers it)."""
    seen: set[str] = set()
    horizon = model.history_horizon_s

    def settle_once_all_read(batch: list[LogRecord]) -> None:
        seen.update(r.partition for r in batch)
        model.history_horizon_s = horizon if len(seen) == sum(1 for r in regions if r.records) else None

    apply_interleaved(model, regions, rng, before_batch=settle_once_all_read)


def _history(model: MemoryReadModel) -> int:
    """How many memory events the model keeps."""
    count = "SELECT count(*) FROM memory_history"
    if isinstance(model, PostgresReadModel):
        with model.engine.connect() as conn:
            return int(conn.execute(text(count)).scalar_one())
    assert isinstance(model, SQLiteReadModel)
    return int(model._db.execute(count).fetchone()[0])


def test_settled_history_is_dropped_and_the_state_kept(models: Callable[[], MemoryReadModel]) -> None:
    eu, us = Region("eu"), Region("us")
    for i in range(6):
        eu.add(MemoryStored(memory(f"eu-{i}", f"t{i}", "x", at=i)), at=i)
        us.add(MemoryUpdated(f"eu-{i}", MemoryChanges(priority=i + 1), f"2026-12-01T10:00:{i + 20:02d}.000000+00:00"),
               at=i + 20)
    eu.add(MemoryEmbedded("eu-4", "m", VECTOR_DIM, encode_vector([0.5] * VECTOR_DIM)), at=6)
    # Late: us changed eu-4 after it (at 24): eu-4 is replayed, from its settled copy (vector included).
    eu.add(MemoryUpdated("eu-4", MemoryChanges(priority=9), "2026-12-01T10:00:22.000000+00:00"), at=22)
    eu.add(MemoryUpdated("eu-0", MemoryChanges(content="late"), "2026-12-01T10:00:40.000000+00:00"), at=40)
    kept, settling = models(), _settling(models())
    for model in (kept, settling):
        model.apply_batch([Verdict(r) for r in eu.records[:8]])
        model.apply_batch([Verdict(r) for r in us.records])
        model.apply_batch([Verdict(r) for r in eu.records[8:]])
    ids = [f"eu-{i}" for i in range(6)]
    assert model_digest(kept, ids) == model_digest(settling, ids)
    # Every event before us's last stamp is settled: us's last update and eu's late update of eu-0 remain.
    assert (_history(kept), _history(settling)) == (15, 2)
    m, late = settling.queries.get("eu-0"), settling.queries.get("eu-4")
    assert m is not None and (m.content, m.priority) == ("late", 1)
    assert late is not None and late.priority == 5  # us's update (24) is later than eu's (22) in merge order
    assert settling.queries.vectors(["eu-4"]) == kept.queries.vectors(["eu-4"]) != {}


# Found by the search: a memory came back from its settled copy, when replayed, under a title that a memory
# outside the replay showed by then (the settled events that had tied the two together were gone), and the
# unique (title, namespace) index refused it.
_M, _PLAN = MemoryChanges(content="u"), ("store", "plan", "x", "merge")
_SETTLED_TITLE_SHOWN = [[(("update", 0, _M), 0), (("clear",), 0), (_PLAN, 0), (_PLAN, 0)],
                        [(_PLAN, 0), (("update", 0, _M), 0)],
                        [(_PLAN, 0), (_PLAN, 0), (("delete", 13), 0)]]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=_regions, seed=st.integers(0, 2**32))
@example(plans=_SETTLED_TITLE_SHOWN, seed=0)
def test_a_settling_node_ends_where_a_keeping_one_does(models: Callable[[], MemoryReadModel],
                                                       plans: list[list[tuple[Any, int]]], seed: int) -> None:
    regions, ids = build(plans)
    rng = random.Random(seed)
    kept = models()
    kept.history_horizon_s = None
    _apply(kept, regions, rng)
    digests = {model_digest(kept, ids)}
    for _ in range(2):
        settling = _settling(models())
        _apply(settling, regions, rng)
        digests.add(model_digest(settling, ids))
        assert _history(settling) <= _history(kept)
    assert len(digests) == 1
