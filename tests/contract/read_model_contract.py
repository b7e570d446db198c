"""The read-model contract: one recorded log applied to a backend gives these answers, on every backend.

Subclasses provide a ``model`` fixture (a fresh, empty :class:`MemoryReadModel`). Where Postgres and SQLite
legitimately differ (keyword relevance: bm25 vs ts_rank) the contract asserts what both promise, and the
backend's own test file pins the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from infra.log import LogRecord
from projectors import MemoryFilter, MemoryReadModel, Verdict
from tests.contract.recorded_log import NOW, SOON, recorded_log, rejected_offsets, revivals, unit_vector


def load(model: MemoryReadModel, records: list[LogRecord], *, batch: int = 4) -> None:
    """Apply the recorded log in small batches (batch boundaries must not matter), twice (re-delivery)."""
    refused = rejected_offsets()
    verdicts = [Verdict(r, rejected=refused.get(r.offset)) for r in records]
    for _ in range(2):
        for start in range(0, len(verdicts), batch):
            model.apply_batch(verdicts[start:start + batch])


def flt(**kw: object) -> MemoryFilter:
    return MemoryFilter(now=NOW, **kw)  # type: ignore[arg-type]


class ReadModelContract:
    @pytest.fixture
    def loaded(self, model: MemoryReadModel, tmp_path: Path) -> MemoryReadModel:
        load(model, recorded_log(tmp_path))
        return model

    def test_position_dedup_and_refusals(self, loaded: MemoryReadModel) -> None:
        assert loaded.position() == {"p": 25}
        rejected = {r["offset"]: r["reason"] for r in loaded.rejected_events()}
        assert set(rejected) == {13, 14, 19, 24}
        assert "already exists" in str(rejected[13]) and "does not exist" in str(rejected[14])
        assert str(rejected[24]) == "signature does not verify"
        assert loaded.rejected_count() == 4 and loaded.dim_violations() == 1
        # 23 events tried (24 refused by signature, 25 re-sends 23's id), each id recorded once.
        assert loaded.applied_count() == 23

    def test_get_by_id_and_prefix(self, loaded: MemoryReadModel) -> None:
        q = loaded.queries
        m02 = q.get("m02")
        assert m02 is not None and m02.content == "run migrations, then deploy" and m02.tier == "long"
        assert m02.priority == 7 and m02.metadata["agent_id"] == "agent-m02", "upsert keeps id, author, max priority"
        assert m02.access_count == 1 and m02.expires_at is None
        assert q.get("m10") == q.get("M1")  # unique prefix, case-insensitive like SQLite's LIKE
        assert q.get("zzz") is None and q.get("m09") is None and q.get("m07") is None and q.get("m06") is None
        m01 = q.get("m01")
        assert m01 is not None and m01.access_count == 1 and m01.last_accessed_at == "2026-05-12T08:00:00+00:00"
        m03 = q.get("m03")
        assert m03 is not None and m03.tier == "mid" and m03.expires_at is None
        assert q.find_by_title("team plan v2", "org/team") is not None
        assert [m.id for m in q.get_many(["m10", "nope", "m01"])] == ["m10", "m01"]

    def test_list_orders_by_priority_then_recency(self, loaded: MemoryReadModel) -> None:
        listed = [m.id for m in loaded.queries.list_memories(flt(), limit=50, offset=0)]
        assert listed == ["m01", "m10", "m02", "m05", "m08", "m04", "m03"]
        assert [m.id for m in loaded.queries.list_memories(flt(), limit=2, offset=2)] == ["m02", "m05"]
        assert [m.id for m in loaded.queries.list_memories(flt(namespace="proj/a"), limit=9, offset=0)] == [
            "m01", "m02"]
        assert [m.id for m in loaded.queries.list_memories(flt(tag="ops"), limit=9, offset=0)] == ["m01", "m02"]
        assert [m.id for m in loaded.queries.list_memories(flt(agent_id="agent-m05"), limit=9, offset=0)] == ["m05"]

    def test_visibility(self, loaded: MemoryReadModel) -> None:
        def visible(agent: str) -> set[str]:
            return {m.id for m in loaded.queries.list_memories(flt(as_agent=agent), limit=50, offset=0)}

        public = {"m01", "m02", "m03", "m08", "m10"}
        assert visible("agents/alice") == public | {"m04"}
        assert visible("org/team/bob") == public | {"m05"}
        assert visible("other/bob") == public

    def test_search_matches_every_token(self, loaded: MemoryReadModel) -> None:
        q = loaded.queries
        assert {m.id for m in q.search("deploy", flt(), limit=10)} == {"m01", "m02", "m04", "m05", "m10"}
        assert {m.id for m in q.search("deploy friday", flt(), limit=10)} == {"m05"}
        assert {m.id for m in q.search("ops", flt(), limit=10)} == {"m01", "m02"}  # tags are indexed
        assert {m.id for m in q.search("CAFE", flt(), limit=10)} == {"m03"}  # case and accents folded
        assert q.search("AND OR", flt(), limit=10) == []
        assert {m.id for m in q.search("deploy", flt(as_agent="other/x"), limit=10)} == {"m01", "m02", "m10"}

    def test_recall_matches_any_token_best_first(self, loaded: MemoryReadModel) -> None:
        hits = loaded.queries.recall_keyword("espresso hnsw", flt(), limit=10)
        assert {h.memory.id for h in hits} == {"m01", "m03"}
        # m01: long tier (+3), priority 9, touched once; m03: mid, priority 3. The keyword term cannot close that.
        assert [h.memory.id for h in hits] == ["m01", "m03"]
        assert hits[0].score > hits[1].score > 0
        assert loaded.queries.recall_keyword("   ", flt(), limit=10) == []

    def test_recall_applies_filters(self, loaded: MemoryReadModel) -> None:
        hits = loaded.queries.recall_keyword("deploy", flt(namespace="proj/a"), limit=1)
        assert [h.memory.id for h in hits] == ["m01"]

    def test_similar_titles_and_forget_ids(self, loaded: MemoryReadModel) -> None:
        q = loaded.queries
        assert set(q.similar_titles("deploy checklist", "proj/a")) == {"m01", "m02"}
        assert q.similar_titles("deploy checklist", "proj/b") == []
        assert q.forget_ids(namespace=None, pattern="deploy", tier="long") == ["m01", "m02", "m10"]
        assert q.forget_ids(namespace="ties", pattern=None, tier=None) == ["m08"]
        assert q.forget_ids(namespace=None, pattern="***", tier=None) == []

    def test_namespaces_stats_export(self, loaded: MemoryReadModel) -> None:
        q = loaded.queries
        assert [(n.namespace, n.count) for n in q.namespaces(NOW)] == [
            ("proj/a", 2), ("agents/alice", 1), ("org/team", 1), ("proj/b", 1), ("proj/c", 1), ("ties", 1)]
        stats = q.stats(NOW, SOON)
        assert stats.total == 7 and stats.expiring_soon == 0 and stats.db_size_bytes > 0
        assert stats.by_tier == [{"tier": "mid", "count": 4}, {"tier": "long", "count": 3}]
        assert [m.id for m in q.export(NOW)] == ["m01", "m02", "m03", "m04", "m05", "m08", "m10"]
        assert q.expired_ids("2026-12-01T00:00:00+00:00") == []
        assert q.expiring_ids(NOW) == []

    def test_vectors_round_trip_bit_for_bit(self, loaded: MemoryReadModel) -> None:
        q = loaded.queries
        assert q.vector_count() == 1, "m01's vector went with its content change; m02's had the wrong dimension"
        stored = q.vectors(["m10", "m01", "nope"])
        assert set(stored) == {"m10"} and stored["m10"] == unit_vector(10)
        assert np.frombuffer(stored["m10"], dtype="<f4").shape == (384,)
        # Readers ask for their own model's vectors: another model's are never compared with a query.
        assert q.vectors(["m10", "m01"], model="test-model") == stored
        assert q.vectors(["m10", "m01"], model="another-model") == {}

    def test_get_filtered_and_embedding_sources(self, loaded: MemoryReadModel) -> None:
        q = loaded.queries
        got = q.get_filtered(["m10", "m04", "m09", "m01", "nope"], flt(as_agent="other/x"))
        assert got == q.get_many(["m10", "m01"]) and [m.id for m in got] == ["m10", "m01"]
        assert [i for i, _, _ in q.embedding_sources(after_id="m04", limit=3)] == ["m05", "m08", "m10"]

    def test_deleted_memories_never_come_back(self, loaded: MemoryReadModel, tmp_path: Path) -> None:
        q = loaded.queries
        assert q.tombstoned(["m06", "m07", "m09", "m01", "nope"]) == {"m09"}, "forget and expiry leave none"
        late = revivals(tmp_path, start=26)
        result = loaded.apply_batch([Verdict(r) for r in late])
        assert result.rejected == 1
        rejected = {r["offset"]: str(r["reason"]) for r in loaded.rejected_events()}
        assert "tombstone" in rejected[26] and 27 not in rejected and 28 not in rejected
        assert q.get("m09") is None
        assert q.get("m07") is not None and q.get("m06") is not None, "a forgotten or expired memory may return"
