"""The archive contract: one recorded log of archive events gives these answers on every read-model backend.

The log covers the awkward cases: an archive naming an id that is not live, a GC archive that skips a memory
whose expiry moved on, a restore of an id not in the archive, a restore whose title was taken meanwhile, and a
purge that keeps a memory archived at its cut-off. Subclasses provide a ``model`` fixture (fresh and empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from infra.log import LogRecord
from projectors import MemoryReadModel, Verdict
from schemas import VECTOR_DIM, Memory, encode_payload, encode_vector
from schemas.events import ArchivePurged, MemoriesArchived, MemoryEmbedded, MemoryRestored, MemoryStored
from tests.contract.recorded_log import unit_vector
from tests.factories import node_key, signed

T = "2026-05-{:02d}T08:00:00+00:00"


def _memory(mid: str, *, title: str | None = None, tier: str = "mid", expires: str | None = None,
            namespace: str = "proj") -> Memory:
    return Memory(id=mid, tier=cast(Any, tier), namespace=namespace, title=title or f"title {mid}",
                  content=f"content {mid}", tags=[mid, "arch"], priority=5, confidence=1.0, source="api",
                  access_count=2, created_at=T.format(1), updated_at=T.format(1), expires_at=expires,
                  metadata={"agent_id": f"agent-{mid}"})


A1 = _memory("a1", tier="long")
A2 = _memory("a2", tier="short", expires=T.format(28), namespace="other")


def _events() -> list[Any]:
    restored = Memory(**{**A1.to_payload(), "updated_at": T.format(5)})
    return [
        *(MemoryStored(m) for m in (A1, A2, _memory("a3", expires=T.format(2)), _memory("a4", expires=T.format(30)),
                                    _memory("a5"))),
        MemoryEmbedded("a1", "test-model", VECTOR_DIM, encode_vector(unit_vector(1))),   # 6
        MemoriesArchived(["a1", "a2", "ghost"], "archive", T.format(3)),                 # 7: ghost is skipped
        MemoriesArchived(["a3", "a4"], "ttl_expired", T.format(4), expired_only=True),   # 8: a4 not expired
        MemoryRestored(restored),                                                        # 9
        MemoryEmbedded("a1", "test-model", VECTOR_DIM, encode_vector(unit_vector(1))),   # 10
        MemoryRestored(restored),                                                        # 11: not in the archive
        MemoryStored(_memory("x", title="title a2", namespace="other")),                 # 12
        MemoryRestored(Memory(**{**A2.to_payload(), "updated_at": T.format(6)})),        # 13: title taken
        MemoriesArchived(["a5"], "archive", T.format(7)),                                # 14
        ArchivePurged(["a5", "a3"], before=T.format(7), older_than_days=1),              # 15: a5 is kept
        MemoriesArchived(["a1"], "consolidated", T.format(8)),                           # 16: with its vector
        MemoryRestored(_memory("a3", expires=T.format(2))),                               # 17: purged (15)
    ]


def archive_log(tmp: Path) -> list[LogRecord]:
    key = node_key(tmp, "archiver")
    return [LogRecord("p", offset, signed(key, event_type=e.TYPE, payload=encode_payload(e)))
            for offset, e in enumerate(_events(), start=1)]


class ArchiveContract:
    @pytest.fixture
    def loaded(self, model: MemoryReadModel, tmp_path: Path) -> MemoryReadModel:
        verdicts = [Verdict(r) for r in archive_log(tmp_path)]
        for start in range(0, len(verdicts), 3):  # batch boundaries must not matter
            model.apply_batch(verdicts[start:start + 3])
        return model

    def test_refusals(self, loaded: MemoryReadModel) -> None:
        rejected = {r["offset"]: str(r["reason"]) for r in loaded.rejected_events()}
        assert set(rejected) == {11, 13, 17}
        assert "not in the archive" in rejected[11] and "already exists" in rejected[13]
        assert "not in the archive" in rejected[17]  # one log: a restore after the purge finds nothing

    def test_listing_and_stats(self, loaded: MemoryReadModel) -> None:
        listed = loaded.archive.list_archived(limit=10)
        assert [(a.memory.id, a.archive_reason, a.archived_at) for a in listed] == [
            ("a1", "consolidated", T.format(8)), ("a5", "archive", T.format(7)), ("a2", "archive", T.format(3))]
        assert [a.memory.id for a in loaded.archive.list_archived(limit=1, offset=1)] == ["a5"]
        assert [a.memory.id for a in loaded.archive.list_archived(namespace="other")] == ["a2"]
        stats = loaded.archive.stats()
        assert stats.total == 3 and stats.by_namespace == [{"namespace": "proj", "count": 2},
                                                           {"namespace": "other", "count": 1}]

    def test_rows_keep_the_whole_memory(self, loaded: MemoryReadModel) -> None:
        a2 = loaded.archive.get("a2")
        assert a2 is not None and a2.memory == A2
        assert (a2.original_tier, a2.original_expires_at) == ("short", T.format(28))
        assert a2.to_api()["tags"] == '["a2","arch"]' and a2.to_api()["expires_at"] == T.format(28)
        a1 = loaded.archive.get("a1")
        assert a1 is not None and a1.memory.updated_at == T.format(5) and a1.original_tier == "long"
        assert loaded.archive.get("a3") is None and loaded.archive.get("ghost") is None

    def test_vectors_travel_with_the_memory(self, loaded: MemoryReadModel) -> None:
        vector = loaded.archive.vector("a1")
        assert vector is not None and (vector.model, vector.dim) == ("test-model", VECTOR_DIM)
        assert vector.vector == unit_vector(1)
        assert loaded.archive.vector("a2") is None
        assert loaded.queries.vectors(["a1"]) == {}  # the live vector went with the live row

    def test_live_set_and_purge_candidates(self, loaded: MemoryReadModel) -> None:
        assert [m.id for m in loaded.queries.get_many(["a1", "a2", "a3", "a4", "a5", "x"])] == ["a4", "x"]
        assert loaded.archive.archived_before(T.format(8)) == ["a2", "a5"]
        assert loaded.archive.archived_before(None) == ["a1", "a2", "a5"]
        assert loaded.archive.present(["zz", "a5", "a1"]) == ["a5", "a1"]
