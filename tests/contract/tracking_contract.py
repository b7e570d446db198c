"""The tracking contract every read-model store passes: positions commit with changes; re-delivery is harmless."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.log import LogRecord
from projectors import ReadModel, Verdict
from schemas import Memory, NodeKey, now_ts
from tests.factories import node_key, signed


def stored(key: NodeKey, title: str) -> dict[str, object]:
    ts = now_ts()
    memory = Memory(id=f"id-{title}", tier="mid", namespace="global", title=title, content="c", tags=[],
                    priority=5, confidence=1.0, source="api", access_count=0, created_at=ts, updated_at=ts)
    return {"memory": memory.to_payload()}


def record(key: NodeKey, offset: int, title: str, *, event_id: str | None = None) -> LogRecord:
    return LogRecord("p", offset, signed(key, event_type="memory.stored", payload=stored(key, title),
                                          event_id=event_id))


class TrackingContract:
    """Subclasses provide a ``model`` fixture and ``count_memories(model)``."""

    @pytest.fixture
    def key(self, tmp_path: Path) -> NodeKey:
        return node_key(tmp_path)

    def count_memories(self, model: ReadModel) -> int:
        raise NotImplementedError

    def test_fresh_model_has_no_position(self, model: ReadModel) -> None:
        assert model.position() == {}

    def test_applying_an_offset_twice_changes_nothing(self, model: ReadModel, key: NodeKey) -> None:
        batch = [Verdict(record(key, 1, "a")), Verdict(record(key, 2, "b"))]
        first = model.apply_batch(batch)
        again = model.apply_batch(batch)
        assert (first.applied, again.applied, again.skipped) == (2, 0, 2)
        assert model.position() == {"p": 2}
        assert self.count_memories(model) == 2

    def test_same_event_id_at_a_new_offset_is_not_applied_again(self, model: ReadModel, key: NodeKey) -> None:
        model.apply_batch([Verdict(record(key, 1, "a", event_id="E"))])
        result = model.apply_batch([Verdict(record(key, 5, "a2", event_id="E"))])
        assert result.applied == 0 and model.position() == {"p": 5}
        assert self.count_memories(model) == 1

    def test_rejected_records_advance_the_position_but_change_nothing(self, model: ReadModel,
                                                                       key: NodeKey) -> None:
        result = model.apply_batch([Verdict(record(key, 1, "a"), rejected="bad signature")])
        assert result.rejected == 1 and model.position() == {"p": 1}
        assert self.count_memories(model) == 0

    def test_a_failing_batch_commits_neither_change_nor_position(self, model: ReadModel, key: NodeKey) -> None:
        class Exploding:
            rejected = None

            @property
            def record(self) -> LogRecord:
                raise RuntimeError("crash mid-batch")

        good = Verdict(record(key, 1, "a"))
        with pytest.raises(RuntimeError):
            model.apply_batch([good, Exploding()])  # type: ignore[list-item]
        assert model.position() == {}
        assert self.count_memories(model) == 0
