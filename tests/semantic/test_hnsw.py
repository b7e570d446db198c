"""The HNSW read model: tracking, persistence with its offset, catch-up, corruption, filters inside the search."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from infra.embed import MiniLMEmbedder
from infra.log import LogRecord
from infra.log.embedded import EmbeddedLog
from projectors import HnswIndex, HnswReadModel, ProjectionRunner, ReadModel, VectorFilter, Verdict
from projectors.hnsw.index import Entry
from schemas import Keyring, Memory, NodeKey, encode_vector, now_ts
from tests.contract.tracking_contract import TrackingContract
from tests.factories import node_key, signed


class TestHnswTracking(TrackingContract):
    @pytest.fixture
    def model(self, tmp_path: Path) -> Iterator[HnswReadModel]:
        m = HnswReadModel.open(tmp_path / "hnsw")
        yield m
        m.close()

    def count_memories(self, model: ReadModel) -> int:
        assert isinstance(model, HnswReadModel)
        return len(model.pending) + len(model.index)


def unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def stored(memory_id: str, namespace: str = "global", scope: str | None = None) -> dict[str, object]:
    ts = now_ts()
    metadata = {"scope": scope} if scope else {}
    m = Memory(id=memory_id, tier="long", namespace=namespace, title=memory_id, content="c", tags=[], priority=5,
               confidence=1.0, source="api", access_count=0, created_at=ts, updated_at=ts, metadata=metadata)
    return {"memory": m.to_payload()}


def embedded(memory_id: str, vector: np.ndarray, dim: int | None = None) -> dict[str, object]:
    return {"id": memory_id, "model": "all-MiniLM-L6-v2", "dim": dim or int(vector.shape[0]),
            "vector": encode_vector(vector.astype("<f4").tobytes())}


class Feed:
    """Builds records at increasing offsets, as the log would deliver them."""

    def __init__(self, key: NodeKey) -> None:
        self.key = key
        self.offset = 0

    def __call__(self, event_type: str, payload: dict[str, object]) -> Verdict:
        self.offset += 1
        return Verdict(LogRecord("p", self.offset, signed(self.key, event_type=event_type, payload=payload)))

    def memory(self, memory_id: str, vector: np.ndarray, **kw: str) -> list[Verdict]:
        return [self("memory.stored", stored(memory_id, **kw)), self("memory.embedded", embedded(memory_id, vector))]


@pytest.fixture
def feed(tmp_path: Path) -> Feed:
    return Feed(node_key(tmp_path))


def test_updates_deletes_and_text_changes_are_applied(tmp_path: Path, feed: Feed) -> None:
    rng = np.random.default_rng(1)
    v = unit(rng, 3)
    model = HnswReadModel.open(tmp_path / "hnsw")
    model.apply_batch([*feed.memory("a", v[0]), *feed.memory("b", v[1]), *feed.memory("c", v[2])])
    assert [h.id for h in model.index.search(v[1], 1)] == ["b"]
    model.apply_batch([feed("memory.deleted", {"id": "b"}),
                       feed("memory.updated", {"id": "a", "changes": {"namespace": "moved"}, "updated_at": now_ts()}),
                       feed("memory.updated", {"id": "c", "changes": {"content": "new"}, "updated_at": now_ts()})])
    assert "b" not in model.index and "c" not in model.index and model.pending == {"c": ("global", "private")}
    assert [h.id for h in model.index.search(v[0], 3, VectorFilter(namespaces=frozenset({"moved"})))] == ["a"]
    model.apply_batch([feed("memory.embedded", embedded("c", v[2]))])
    assert [h.id for h in model.index.search(v[2], 1)] == ["c"] and model.pending == {}
    model.close()


def test_wrong_dimension_and_unknown_memories_are_refused_and_counted(tmp_path: Path, feed: Feed) -> None:
    model = HnswReadModel.open(tmp_path / "hnsw")
    short = np.ones(8, dtype=np.float32) / np.sqrt(8)
    result = model.apply_batch([feed("memory.stored", stored("a")), feed("memory.embedded", embedded("a", short)),
                                feed("memory.embedded", embedded("ghost", unit(np.random.default_rng(0), 1)[0]))])
    assert result.rejected == 2 and model.dim_violations == 1 and len(model.index) == 0
    model.close()


def test_a_restart_loads_the_snapshot_and_catches_up_from_its_offset(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    v = unit(rng, 5)
    key = node_key(tmp_path)

    async def scenario() -> None:
        log = EmbeddedLog(tmp_path / "log.db")
        keyring = Keyring.from_dirs(tmp_path / "keys")
        for i in range(3):
            await log.append([signed(key, event_type="memory.stored", payload=stored(f"m{i}")),
                              signed(key, event_type="memory.embedded", payload=embedded(f"m{i}", v[i]))])
        model = HnswReadModel.open(tmp_path / "hnsw")
        await ProjectionRunner(log, model, keyring).catch_up()
        model.close()  # saves generation 1 at offset 6
        for i in (3, 4):
            await log.append([signed(key, event_type="memory.stored", payload=stored(f"m{i}")),
                              signed(key, event_type="memory.embedded", payload=embedded(f"m{i}", v[i]))])
        again = HnswReadModel.open(tmp_path / "hnsw")
        assert again.loaded_from == "snapshot generation 1" and again.position() == {"ai-memory": 6}
        applied: list[int] = []
        runner = ProjectionRunner(log, again, keyring, on_applied=lambda r: applied.append(r.applied))
        await runner.catch_up()
        assert sum(applied) == 4, "only the events after the saved offset are applied"
        assert len(again.index) == 5 and [h.id for h in again.index.search(v[4], 1)] == ["m4"]
        again.close()
        await log.close()

    import asyncio

    asyncio.run(scenario())


@pytest.mark.parametrize("damage", ["corrupt", "missing-manifest", "truncated-labels"])
def test_a_damaged_snapshot_is_rebuilt_from_the_log_with_a_warning(tmp_path: Path, feed: Feed, damage: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    v = unit(np.random.default_rng(3), 2)
    model = HnswReadModel.open(tmp_path / "hnsw")
    model.apply_batch([*feed.memory("a", v[0]), *feed.memory("b", v[1])])
    model.close()
    directory = tmp_path / "hnsw"
    if damage == "corrupt":
        (graph,) = directory.glob("index-*.bin")
        raw = bytearray(graph.read_bytes())
        raw[100:200] = b"\xff" * 100
        graph.write_bytes(bytes(raw))
    elif damage == "missing-manifest":
        (directory / "manifest.json").unlink()
    else:
        (labels,) = directory.glob("labels-*.json")
        labels.write_text(labels.read_text()[:10])
    with caplog.at_level(logging.WARNING, logger="ai_memory.hnsw"):
        again = HnswReadModel.open(directory)
    assert "rebuilding it from the log" in caplog.text
    assert again.position() == {} and len(again.index) == 0 and again.loaded_from.startswith("rebuilt")
    again.apply_batch([*Feed(feed.key).memory("a", v[0]), *Feed(feed.key).memory("b", v[1])][:2])
    again.close()


def test_a_small_namespace_gets_its_hits_inside_the_search() -> None:
    rng = np.random.default_rng(4)
    big, small = unit(rng, 3000), unit(rng, 5)
    index = HnswIndex(384, capacity=16)
    index.upsert([(Entry(f"big{i}", "big", "private"), big[i].astype("<f4").tobytes()) for i in range(3000)])
    index.upsert([(Entry(f"small{i}", "small", "private"), small[i].astype("<f4").tobytes()) for i in range(5)])
    assert len(index) == 3005, "the index grew from 16 slots"
    query = big[0]
    top = index.search(query, 10)
    assert top[0].id == "big0" and all(h.id.startswith("big") for h in top)
    hits = index.search(query, 10, VectorFilter(namespaces=frozenset({"small"})))
    assert sorted(h.id for h in hits) == [f"small{i}" for i in range(5)]
    # visibility (all private): agent "small" sees only its own namespace, agent "other" sees nothing
    assert index.search(small[0], 1, VectorFilter(as_agent="small"))[0].id == "small0"
    assert index.search(small[0], 20, VectorFilter(as_agent="other")) == []
    # a filter so selective that the graph search comes back short still answers, exactly
    only = index.search(query, 10, VectorFilter(as_agent="small", exclude_ids=frozenset({"small1"})))
    assert {h.id for h in only} == {"small0", "small2", "small3", "small4"}


def test_hnsw_recall_against_exact_search_on_real_text(embedder: MiniLMEmbedder) -> None:
    words = ["deploy", "database", "migration", "cat", "dog", "lisbon", "coffee", "meeting", "budget", "kubernetes",
             "pod", "release", "sister", "risotto", "allergy", "vault", "rotation", "staging", "production", "tokio",
             "async", "runtime"]
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(words, size=6)) for _ in range(1500)]
    vectors = embedder.embed(texts)
    index = HnswIndex(384)
    index.upsert([(Entry(str(i), "g", "collective"), vectors[i].astype("<f4").tobytes()) for i in range(len(texts))])
    queries = embedder.embed([" ".join(rng.choice(words, size=3)) for _ in range(50)])
    found = 0
    for q in queries:
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        found += len(exact & {int(h.id) for h in index.search(q, 10)})
    assert found / (10 * len(queries)) >= 0.95
